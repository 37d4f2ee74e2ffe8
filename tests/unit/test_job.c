/* test_job.c - the job facility: output lines and capture, exit codes,
 * signals, timeouts, many jobs at once, a child that closes stdout but keeps
 * running, detach, and that other children of the process are not reaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/job.h"

struct seen {
    int done;
    int status, exit_code, sig;
    bool timed_out;
    char out[4096], err[4096];
    char lines[16][256];
    int nlines;
    int nerrlines;
};

static void on_line(void *ctx, enum job_stream s, const char *line)
{
    struct seen *v = ctx;
    if (s == JOB_STDERR) {
        v->nerrlines++;
        return;
    }
    if (v->nlines < 16)
        snprintf(v->lines[v->nlines], sizeof v->lines[0], "%s", line);
    v->nlines++;
}

static void on_done(void *ctx, const struct job_result *r)
{
    struct seen *v = ctx;
    v->done++;
    v->status = r->status;
    v->exit_code = r->exit_code;
    v->sig = r->signal;
    v->timed_out = r->timed_out;
    snprintf(v->out, sizeof v->out, "%s", r->out);
    snprintf(v->err, sizeof v->err, "%s", r->err);
}

static struct job *run(struct event_base *b, const char *script, struct seen *v, int timeout_ms)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    struct job_spec sp = {.argv = argv,
                          .timeout_ms = timeout_ms,
                          .kill_grace_ms = 200,
                          .on_line = on_line,
                          .on_done = on_done,
                          .ctx = v};
    char err[128];
    struct job *j = job_start(b, &sp, err, sizeof err);
    assert_non_null(j);
    return j;
}

static void loop_until(struct event_base *b, int *flag, int want)
{
    for (int i = 0; i < 2000 && *flag < want; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(b, &tv);
        event_base_dispatch(b);
    }
}

static void test_lines_and_exit(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    struct seen v = {0};
    run(b, "printf 'one\\ntwo\\r three\\rfour'; echo oops >&2; exit 3", &v, 0);
    loop_until(b, &v.done, 1);
    assert_int_equal(v.done, 1);
    assert_int_equal(v.status, 3);
    assert_int_equal(v.exit_code, 3);
    assert_int_equal(v.nlines, 4);
    assert_string_equal(v.lines[0], "one");
    assert_string_equal(v.lines[1], "two");
    assert_string_equal(v.lines[2], " three");
    assert_string_equal(v.lines[3], "four"); /* the unterminated last line too */
    assert_string_equal(v.err, "oops\n");
    assert_int_equal(v.nerrlines, 1);
    assert_int_equal(job_count(), 0);
    event_base_free(b);
}

static void test_signal_and_kill(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    struct seen v = {0}, w = {0};
    run(b, "kill -USR1 $$", &v, 0);
    struct job *j = run(b, "echo started; exec sleep 30", &w, 0);
    loop_until(b, &v.done, 1);
    assert_int_equal(v.sig, SIGUSR1);
    assert_int_equal(v.status, 128 + SIGUSR1);
    assert_int_equal(v.exit_code, -1);
    loop_until(b, &w.nlines, 1); /* it is running */
    assert_int_equal(w.done, 0);
    job_kill(j, SIGTERM);
    loop_until(b, &w.done, 1);
    assert_int_equal(w.sig, SIGTERM);
    assert_string_equal(w.out, "started\n");
    event_base_free(b);
}

static void test_timeout(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    struct seen v = {0}, w = {0};
    run(b, "exec sleep 30", &v, 100);
    /* ignores SIGTERM: the grace period ends in SIGKILL */
    run(b, "trap '' TERM; sleep 30 & wait; wait", &w, 100);
    loop_until(b, &v.done, 1);
    loop_until(b, &w.done, 1);
    assert_true(v.timed_out);
    assert_int_equal(v.sig, SIGTERM);
    assert_true(w.timed_out);
    assert_int_equal(w.sig, SIGKILL);
    event_base_free(b);
}

static void test_many(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    enum { N = 40 };
    struct seen v[N];
    memset(v, 0, sizeof v);
    char scripts[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(scripts[i], sizeof scripts[i], "echo job%d; exit %d", i, i % 7);
        run(b, scripts[i], &v[i], 0);
    }
    int total = 0;
    for (int k = 0; k < 2000 && total < N; k++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(b, &tv);
        event_base_dispatch(b);
        total = 0;
        for (int i = 0; i < N; i++)
            total += v[i].done;
    }
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "job%d\n", i);
        assert_int_equal(v[i].done, 1);
        assert_int_equal(v[i].status, i % 7);
        assert_string_equal(v[i].out, want);
    }
    event_base_free(b);
}

static void test_closes_stdout_keeps_running(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    struct seen v = {0};
    int64_t t0 = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    run(b, "echo a; exec >&-; sleep 0.3; echo late >&2; exit 5", &v, 0);
    loop_until(b, &v.done, 1);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t el = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - t0;
    assert_int_equal(v.done, 1);
    assert_true(el >= 250); /* done waited for the exit, not the EOF */
    assert_int_equal(v.status, 5);
    assert_string_equal(v.out, "a\n");
    assert_string_equal(v.err, "late\n");
    event_base_free(b);
}

static void test_exec_fails_and_setup(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    struct seen v = {0};
    char *argv[] = {"/no/such/program", NULL};
    struct job_spec sp = {.argv = argv, .on_done = on_done, .ctx = &v};
    char err[128];
    assert_non_null(job_start(b, &sp, err, sizeof err));
    loop_until(b, &v.done, 1);
    assert_int_equal(v.status, 127);
    assert_non_null(strstr(v.err, "/no/such/program"));
    event_base_free(b);
}

static int setup_fail(void *arg)
{
    (void)arg;
    return -1;
}

static void test_setup_and_cwd(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    struct seen v = {0}, w = {0};
    char *argv[] = {"pwd", NULL};
    struct job_spec sp = {.argv = argv, .cwd = "/tmp", .on_done = on_done, .ctx = &v};
    char err[128];
    assert_non_null(job_start(b, &sp, err, sizeof err));
    struct job_spec sp2 = {.argv = argv, .setup = setup_fail, .on_done = on_done, .ctx = &w};
    assert_non_null(job_start(b, &sp2, err, sizeof err));
    loop_until(b, &v.done, 1);
    loop_until(b, &w.done, 1);
    assert_string_equal(v.out, "/tmp\n");
    assert_int_equal(w.status, 126);
    event_base_free(b);
}

static void test_capture_bounded(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    struct seen v = {0};
    char *argv[] = {"sh", "-c", "seq 1 100000", NULL};
    struct job_spec sp = {
        .argv = argv, .capture_max = 16, .capture_tail = true, .on_done = on_done, .ctx = &v};
    char err[128];
    assert_non_null(job_start(b, &sp, err, sizeof err));
    loop_until(b, &v.done, 1);
    assert_int_equal(strlen(v.out), 16);
    assert_string_equal(v.out + 16 - 7, "100000\n");
    event_base_free(b);
}

static void test_not_stealing_and_detach(void **st)
{
    (void)st;
    struct event_base *b = event_base_new();
    /* a child of someone else in this process: the job facility leaves it */
    pid_t other = fork();
    if (other == 0)
        _exit(9);
    struct seen v = {0}, w = {0};
    run(b, "exit 0", &v, 0);
    struct job *j = run(b, "exec sleep 30", &w, 0);
    job_detach(j, true);
    loop_until(b, &v.done, 1);
    for (int i = 0; i < 200 && job_count() > 0; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(b, &tv);
        event_base_dispatch(b);
    }
    assert_int_equal(job_count(), 0);
    assert_int_equal(w.done, 0); /* detached: no callback */
    int status;
    assert_int_equal(waitpid(other, &status, 0), other);
    assert_int_equal(WEXITSTATUS(status), 9);
    uint64_t t;
    assert_int_equal(job_proc_start_time(getpid(), &t), 0);
    assert_true(t > 0);
    event_base_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_exit),
        cmocka_unit_test(test_signal_and_kill),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_closes_stdout_keeps_running),
        cmocka_unit_test(test_exec_fails_and_setup),
        cmocka_unit_test(test_setup_and_cwd),
        cmocka_unit_test(test_capture_bounded),
        cmocka_unit_test(test_not_stealing_and_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
