/* test_fence.c - the self-fencing keeper: its pure decision (fence_plan.c)
 * at every edge, and the thread (agent_fence.c) killing a real child
 * process when the lease it was given lapses, reporting it on the loop,
 * and leaving alone a process whose lease is renewed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_fence.h"
#include "agent/fence_plan.h"
#include "lib/job.h"
#include "lib/util.h"

static void test_plan_no_lease_waits(void **s)
{
    (void)s;
    struct fence_plan p;
    fence_plan_init(&p, 500);
    assert_int_equal(fence_plan_deadline(&p), FENCE_NEVER);
    assert_int_equal(fence_plan_check(&p, 1000000), FENCE_WAIT);
}

static void test_plan_edges(void **s)
{
    (void)s;
    struct fence_plan p;
    fence_plan_init(&p, 500);
    assert_true(fence_plan_renewed(&p, 10000, 3000)); /* lease ends at 13000 */
    assert_int_equal(fence_plan_deadline(&p), 12500);
    assert_int_equal(fence_plan_check(&p, 12499), FENCE_WAIT);
    assert_int_equal(fence_plan_check(&p, 12500), FENCE_KILL);
    assert_int_equal(fence_plan_check(&p, 12501), FENCE_DONE);
    assert_int_equal(fence_plan_check(&p, 99999), FENCE_DONE);
    assert_int_equal(fence_plan_deadline(&p), FENCE_NEVER);
    assert_int_equal(p.lapses, 1);
}

static void test_plan_renewal_moves_forward_only(void **s)
{
    (void)s;
    struct fence_plan p;
    fence_plan_init(&p, 200);
    assert_true(fence_plan_renewed(&p, 5000, 3000));
    assert_true(fence_plan_renewed(&p, 4000, 3000)); /* an older answer, late */
    assert_int_equal(fence_plan_deadline(&p), 7800);
    assert_true(fence_plan_renewed(&p, 6000, 3000));
    assert_int_equal(fence_plan_deadline(&p), 8800);
    assert_int_equal(fence_plan_check(&p, 8000), FENCE_WAIT);
}

static void test_plan_rearms_after_fence(void **s)
{
    (void)s;
    struct fence_plan p;
    fence_plan_init(&p, 200);
    assert_true(fence_plan_renewed(&p, 0, 1000));
    assert_int_equal(fence_plan_check(&p, 900), FENCE_KILL);
    /* an answer to a heartbeat sent before the lapse does not re-arm */
    assert_true(fence_plan_renewed(&p, 0, 1000));
    assert_int_equal(fence_plan_check(&p, 950), FENCE_DONE);
    /* the host is back: a new lease, a new lapse fences again */
    assert_true(fence_plan_renewed(&p, 5000, 1000));
    assert_int_equal(fence_plan_check(&p, 5700), FENCE_WAIT);
    assert_int_equal(fence_plan_check(&p, 5800), FENCE_KILL);
    assert_int_equal(p.lapses, 2);
}

static void test_plan_refuses_impossible(void **s)
{
    (void)s;
    struct fence_plan p;
    fence_plan_init(&p, -5); /* a negative margin is none */
    assert_int_equal(p.margin, 0);
    assert_false(fence_plan_renewed(&p, 0, 0));
    assert_false(fence_plan_renewed(&p, 0, -1));
    assert_false(fence_plan_renewed(&p, 0, 25LL * 3600 * 1000));
    assert_false(fence_plan_renewed(&p, -1, 1000));
    assert_int_equal(fence_plan_deadline(&p), FENCE_NEVER);
    /* a margin longer than the lease fences at once */
    fence_plan_init(&p, 5000);
    assert_true(fence_plan_renewed(&p, 1000, 1000));
    assert_int_equal(fence_plan_check(&p, 1000), FENCE_KILL);
}

/* ---- the thread ---- */

struct seen {
    int n;
    char vm[37];
    pid_t pid;
    int killed;
    int64_t at, lease_end;
    struct event_base *base;
};

static void on_fenced(void *ctx, const char *vm, pid_t pid, int64_t at, int64_t lease_end,
                      int killed)
{
    struct seen *s = ctx;
    s->n++;
    snprintf(s->vm, sizeof s->vm, "%s", vm);
    s->pid = pid;
    s->killed = killed;
    s->at = at;
    s->lease_end = lease_end;
    event_base_loopbreak(s->base);
}

static pid_t child(uint64_t *start)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    for (int i = 0; i < 1000 && job_proc_start_time(pid, start) < 0; i++)
        usleep(1000);
    return pid;
}

static void test_thread_kills_on_lapse(void **s)
{
    (void)s;
    struct event_base *base = event_base_new();
    struct seen seen = {.base = base};
    struct agent_fence *f = agent_fence_new(base, 100, on_fenced, &seen);
    assert_non_null(f);
    uint64_t st_a = 0, st_b = 0;
    pid_t a = child(&st_a), b = child(&st_b);
    assert_int_equal(agent_fence_watch(f, "vm-a", a, st_a), 0);
    assert_int_equal(agent_fence_watch(f, "vm-b", b, st_b), 0);
    agent_fence_unwatch(f, "vm-b"); /* b is not HA any more: left alone */
    agent_fence_renewed(f, monotonic_ms(), 400);
    /* the loop is NOT run while the keeper acts: the kill does not need it */
    int status = 0;
    assert_int_equal(waitpid(a, &status, 0), a);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_int_equal(agent_fence_lapses(f), 1);
    /* the report comes on the loop */
    struct timeval tv = {10, 0};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.vm, "vm-a");
    assert_int_equal(seen.pid, a);
    assert_int_equal(seen.killed, 1);
    assert_true(seen.at >= seen.lease_end - 100 - 50); /* not before expiry - margin (clock skew) */
    /* b still runs */
    assert_int_equal(waitpid(b, &status, WNOHANG), 0);
    kill(b, SIGKILL);
    waitpid(b, &status, 0);
    agent_fence_free(f);
    event_base_free(base);
}

static void test_thread_renewals_keep_it(void **s)
{
    (void)s;
    struct event_base *base = event_base_new();
    struct seen seen = {.base = base};
    struct agent_fence *f = agent_fence_new(base, 50, on_fenced, &seen);
    assert_non_null(f);
    uint64_t st = 0;
    pid_t a = child(&st);
    assert_int_equal(agent_fence_watch(f, "vm-a", a, st), 0);
    /* renewed ahead of time, 20 times: never fenced however slow the machine
     * (each renewal is a fresh 10 s lease) */
    for (int i = 0; i < 20; i++) {
        agent_fence_renewed(f, monotonic_ms(), 10000);
        usleep(5000);
    }
    int status = 0;
    assert_int_equal(waitpid(a, &status, WNOHANG), 0);
    assert_int_equal(agent_fence_lapses(f), 0);
    /* a pid whose start time is not the one watched (another process now
     * holds it) is reported, never killed */
    assert_int_equal(agent_fence_watch(f, "vm-a", a, st + 1), 0);
    agent_fence_renewed(f, monotonic_ms() - 20000, 20010); /* a lease that ends now */
    struct timeval tv = {10, 0};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.killed, 0);
    assert_int_equal(waitpid(a, &status, WNOHANG), 0);
    kill(a, SIGKILL);
    waitpid(a, &status, 0);
    agent_fence_free(f);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_no_lease_waits),
        cmocka_unit_test(test_plan_edges),
        cmocka_unit_test(test_plan_renewal_moves_forward_only),
        cmocka_unit_test(test_plan_rearms_after_fence),
        cmocka_unit_test(test_plan_refuses_impossible),
        cmocka_unit_test(test_thread_kills_on_lapse),
        cmocka_unit_test(test_thread_renewals_keep_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
