/* test_migrate_model.c - the pre-copy prediction (sched/migrate_model.c):
 * an idle guest is one round and a short stop, a guest dirtying slower
 * than the link converges in a few rounds, one dirtying faster never does
 * without auto-converge and does with it, bad input has no answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sched/migrate_model.h"

#define MIB (1024.0 * 1024.0)

static void test_idle(void **st)
{
    struct mig_model_in in = {.ram_bytes = 256 * (uint64_t)MIB,
                              .dirty_bps = 0,
                              .bandwidth_bps = 100 * MIB,
                              .max_downtime_ms = 300};
    struct mig_model_out o;
    assert_int_equal(mig_model_predict(&in, &o), 0);
    assert_true(o.converges);
    assert_int_equal(o.rounds, 1);
    assert_true(o.total_ms > 2550 && o.total_ms < 2570); /* 256 MiB at 100 MiB/s */
    assert_true(o.downtime_ms == 0);
    in.setup_ms = 100;
    assert_int_equal(mig_model_predict(&in, &o), 0);
    assert_true(o.total_ms > 2650 && o.total_ms < 2670);
    /* small enough to stop at once */
    in.ram_bytes = 16 * (uint64_t)MIB;
    assert_int_equal(mig_model_predict(&in, &o), 0);
    assert_int_equal(o.rounds, 0);
    assert_true(o.downtime_ms > 150 && o.downtime_ms < 170);
}

static void test_converges_geometric(void **st)
{
    /* dirtying at half the link: each round half the last */
    struct mig_model_in in = {.ram_bytes = 1024 * (uint64_t)MIB,
                              .dirty_bps = 50 * MIB,
                              .bandwidth_bps = 100 * MIB,
                              .max_downtime_ms = 300};
    struct mig_model_out o;
    assert_int_equal(mig_model_predict(&in, &o), 0);
    assert_true(o.converges);
    /* 1024 -> 512 -> 256 -> 128 -> 64 -> 32 (<= 30 MiB in 300 ms? no) -> 16 */
    assert_true(o.rounds >= 5 && o.rounds <= 6);
    assert_true(o.downtime_ms <= 300);
    assert_true(o.bytes > 1024 * MIB * 1.9 && o.bytes < 1024 * MIB * 2.0);
    assert_true(o.ratio > 0.49 && o.ratio < 0.51);
}

static void test_diverges_then_auto_converge(void **st)
{
    struct mig_model_in in = {.ram_bytes = 256 * (uint64_t)MIB,
                              .dirty_bps = 40 * MIB,
                              .bandwidth_bps = 20 * MIB,
                              .max_downtime_ms = 100};
    struct mig_model_out o;
    assert_int_equal(mig_model_predict(&in, &o), 0);
    assert_false(o.converges);
    assert_int_equal(o.rounds, MIG_MODEL_MAX_ROUNDS);
    assert_true(o.downtime_ms > 100);
    assert_true(o.ratio > 1.9);
    in.auto_converge = true;
    assert_int_equal(mig_model_predict(&in, &o), 0);
    assert_true(o.converges);
    assert_true(o.throttle_pct >= 50 && o.throttle_pct <= 99);
    assert_true(o.downtime_ms <= 100);
    /* a rate just under the link still converges, slowly, without throttle */
    in.auto_converge = false;
    in.dirty_bps = 10 * MIB;
    assert_int_equal(mig_model_predict(&in, &o), 0);
    assert_true(o.converges);
    assert_true(o.throttle_pct == 0);
}

static void test_bad_input(void **st)
{
    struct mig_model_in in = {.ram_bytes = 1, .bandwidth_bps = 0};
    struct mig_model_out o;
    assert_int_equal(mig_model_predict(&in, &o), -1);
    in.bandwidth_bps = 1;
    in.dirty_bps = -1;
    assert_int_equal(mig_model_predict(&in, &o), -1);
    in.dirty_bps = 0;
    in.max_downtime_ms = -5;
    assert_int_equal(mig_model_predict(&in, &o), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_converges_geometric),
        cmocka_unit_test(test_diverges_then_auto_converge),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
