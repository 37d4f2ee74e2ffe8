/* test_erlang.c - the queueing models of CPU contention (sched/erlang.c)
 * against values worked by hand and from published Erlang C tables, the
 * monitor's wait prediction over cpusets (monitor_wait.c), and the
 * schedstat parser the sampler reads vCPU wait with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "lib/procfs.h"
#include "monitor/monitor_int.h"
#include "sched/sched.h"

static void near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.6f, want %.6f (+-%g)", got, want, tol);
}

static void test_erlang_c_known_values(void **st)
{
    (void)st;
    /* M/M/1: P(wait) = rho */
    near(sched_erlang_c(1, 0.5), 0.5, 1e-12);
    /* c = 2, a = 1: 1/3 by hand (a^2/2 / (1 + a + a^2/2 * 2/(2-a)) ... ) */
    near(sched_erlang_c(2, 1.0), 1.0 / 3.0, 1e-12);
    /* the textbook call-centre case: 10 agents, 8 Erlangs -> 0.409 */
    near(sched_erlang_c(10, 8.0), 0.4092, 5e-4);
    near(sched_erlang_c(4, 2.0), 0.1739, 5e-4);
    assert_true(sched_erlang_c(2, 2.0) == 1.0);
    assert_true(sched_erlang_c(2, 0) == 0.0);
    /* the wait ratio Wq / (Wq + S): M/M/1 at rho = 0.5 waits as long as it runs */
    near(sched_mmc_wait_ratio(1, 0.5), 0.5, 1e-12);
    /* c = 2, a = 1: Wq = (1/3) / 1, ratio = (1/3) / (4/3) */
    near(sched_mmc_wait_ratio(2, 1.0), 0.25, 1e-12);
    assert_true(sched_mmc_wait_ratio(1, 1.0) == 1.0);
}

static void test_closed_model(void **st)
{
    (void)st;
    /* always runnable: the CPUs are shared out, 1 - c/N */
    near(sched_mmcn_wait_ratio(1, 2, 1.0), 0.5, 1e-9);
    near(sched_mmcn_wait_ratio(2, 3, 1.0), 1.0 / 3.0, 1e-9);
    near(sched_mmcn_wait_ratio(2, 4, 1.0), 0.5, 1e-9);
    assert_true(sched_mmcn_wait_ratio(2, 2, 1.0) == 0.0);
    assert_true(sched_mmcn_wait_ratio(2, 1, 0.7) == 0.0);
    assert_true(sched_mmcn_wait_ratio(1, 3, 0.0) == 0.0);
    /* continuous up to saturation (no cliff just below f = 1) */
    near(sched_mmcn_wait_ratio(1, 2, 0.999), 0.5, 0.01);
    /* N = 2, c = 1, by hand: r = 1 gives p = (1, 2, 2)/5, L = 6/5, Lq = 2/5,
     * so f = L/N = 0.6 and the ratio Lq/L = 1/3 */
    near(sched_mmcn_wait_ratio(1, 2, 0.6), 1.0 / 3.0, 1e-6);
    /* more CPUs, less wait; more demand, more wait */
    assert_true(sched_mmcn_wait_ratio(2, 4, 0.6) < sched_mmcn_wait_ratio(1, 4, 0.6));
    assert_true(sched_mmcn_wait_ratio(2, 4, 0.8) > sched_mmcn_wait_ratio(2, 4, 0.5));
}

static void test_predict_over_cpusets(void **st)
{
    (void)st;
    /* two burners pinned to CPU 0, one on CPU 1, one idle VM with no cpuset */
    struct wait_vm w[] = {
        {.cpuset = "0", .nvcpu = 1, .runnable = 1.0},
        {.cpuset = "0", .nvcpu = 1, .runnable = 1.0},
        {.cpuset = "1", .nvcpu = 1, .runnable = 1.0},
        {.cpuset = "", .nvcpu = 1, .runnable = 0.0},
    };
    mon_wait_predict(w, 4, 2);
    /* the idle VM (f of its pool = 3/4) overlaps them all but waits nothing */
    near(w[0].predicted, 50.0, 1e-6);
    near(w[1].predicted, 50.0, 1e-6);
    near(w[2].predicted, 0.0, 1e-6);
    near(w[3].predicted, 0.0, 1e-6);
    /* a VM with no vCPU figures predicts nothing */
    struct wait_vm one = {.cpuset = "0-1", .nvcpu = 0, .runnable = 0};
    mon_wait_predict(&one, 1, 2);
    assert_true(one.predicted == 0.0);
}

static void test_schedstat(void **st)
{
    (void)st;
    uint64_t run = 0, wait = 0;
    assert_int_equal(procfs_schedstat("123456789012 987654321 4242\n", &run, &wait), 0);
    assert_true(run == 123456789012ULL && wait == 987654321ULL);
    assert_int_equal(procfs_schedstat("12\n", &run, &wait), -1);
    assert_int_equal(procfs_schedstat(NULL, &run, &wait), -1);
    assert_int_equal(procfs_schedstat("x y z", &run, &wait), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_erlang_c_known_values),
        cmocka_unit_test(test_closed_model),
        cmocka_unit_test(test_predict_over_cpusets),
        cmocka_unit_test(test_schedstat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
