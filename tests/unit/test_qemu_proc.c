/*
 * test_qemu_proc.c - finding QEMUs in the process table: "cannot tell" is
 * never "dead" (descriptor exhaustion), zombies and reaped pids are gone,
 * and a command line matches only the VM id under our own VM directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compute/qemu_proc.h"
#include "lib/util.h"

static void test_pid_states(void **state)
{
    assert_int_equal(pid_state(getpid()), PID_LIVE);
    assert_int_equal(pid_state(0), PID_GONE);
    pid_t c = fork();
    if (c == 0)
        _exit(0);
    /* a zombie answers kill(0) but is gone */
    for (int i = 0; i < 200; i++) {
        char path[64], *st;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)c);
        if ((st = read_file(path, 4096, NULL)) && strstr(st, ") Z")) {
            free(st);
            break;
        }
        free(st);
        usleep(5000);
    }
    assert_int_equal(pid_state(c), PID_GONE);
    waitpid(c, NULL, 0);
    assert_int_equal(pid_state(c), PID_GONE);
    assert_int_equal(pid_state_of(getpid(), "test_qemu_proc"), PID_LIVE);
    assert_int_equal(pid_state_of(getpid(), "no-such-needle-xyz"), PID_GONE);
}

/* Uses up every descriptor, so any open() fails with EMFILE. */
static int exhaust(int *fds, int max)
{
    int n = 0;
    while (n < max) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0)
            break;
        fds[n++] = fd;
    }
    return n;
}

static void test_no_descriptors_is_unknown(void **state)
{
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[64];
    int n = exhaust(fds, 64);
    assert_true(open("/dev/null", O_RDONLY) < 0 && errno == EMFILE);
    /* before: a failed read of /proc/PID/stat was taken for death */
    enum pid_state live = pid_state(getpid());
    enum pid_state of = pid_state_of(getpid(), "test_qemu_proc");
    struct qemu_scan scan;
    int scan_rc = qemu_scan_run("/nonexistent/vms", &scan);
    pid_t pid;
    enum qemu_seen seen =
        qemu_seek("/nonexistent/vms", "0d3f6c1e-0000-4000-8000-000000000001", 0, &scan, &pid);
    qemu_scan_free(&scan);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    setrlimit(RLIMIT_NOFILE, &old);
    assert_int_equal(live, PID_UNKNOWN);
    assert_int_equal(of, PID_UNKNOWN);
    assert_int_equal(scan_rc, -1);
    assert_int_equal(seen, QEMU_UNSURE);
}

#define ID "0d3f6c1e-1111-4222-8333-444455556666"

static void test_cmdline_matches(void **state)
{
    static const char good[] = "qemu-system-x86_64\0-name\0guest=a\0-uuid\0" ID
                               "\0-pidfile\0/var/lib/yun/vms/" ID "/qemu.pid\0";
    assert_true(qemu_cmdline_matches(good, sizeof(good) - 1, "/var/lib/yun/vms", ID));
    /* another yund's VM directory, even with the same id */
    assert_false(qemu_cmdline_matches(good, sizeof(good) - 1, "/srv/yun/vms", ID));
    /* a prefix of our directory is not our directory */
    assert_false(qemu_cmdline_matches(good, sizeof(good) - 1, "/var/lib/yun/v", ID));
    /* another id */
    assert_false(qemu_cmdline_matches(good, sizeof(good) - 1, "/var/lib/yun/vms",
                                      "0d3f6c1e-1111-4222-8333-444455556667"));
    /* an id that only appears in a path, not after -uuid */
    static const char nouuid[] = "qemu\0-pidfile\0/var/lib/yun/vms/" ID "/qemu.pid\0";
    assert_false(qemu_cmdline_matches(nouuid, sizeof(nouuid) - 1, "/var/lib/yun/vms", ID));
    /* -uuid as the last word, and a truncated (unterminated) line */
    static const char last[] = "qemu\0-uuid\0";
    assert_false(qemu_cmdline_matches(last, sizeof(last) - 1, "/var/lib/yun/vms", ID));
    assert_false(qemu_cmdline_matches(good, sizeof(good) - 2, "/var/lib/yun/vms", ID));
}

static void test_scan_finds_a_process_by_uuid(void **state)
{
    char dir[] = "/tmp/yun-qp-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char vms[128], vmdir[256], arg[300];
    snprintf(vms, sizeof(vms), "%s/vms", dir);
    snprintf(vmdir, sizeof(vmdir), "%s/%s", vms, ID);
    assert_int_equal(mkdir_p(vmdir, 0700), 0);
    snprintf(arg, sizeof(arg), "%s/qemu.pid", vmdir);
    /* a shell blocked in a builtin read: it never forks (a forked child,
     * before its exec, has the same command line and would count twice) */
    int hold[2];
    assert_int_equal(pipe(hold), 0);
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        dup2(hold[0], 0);
        close(hold[0]);
        close(hold[1]);
        execl("/bin/sh", "sh", "-c", "read x", "-uuid", ID, arg, (char *)NULL);
        _exit(127);
    }
    close(hold[0]);
    struct qemu_scan scan;
    pid_t got = 0, pids[4];
    size_t n = 0;
    for (int i = 0; i < 200 && n == 0; i++) {
        qemu_scan_run(vms, &scan);
        n = qemu_scan_pids(&scan, ID, 0, pids, 4);
        if (n)
            break;
        qemu_scan_free(&scan);
        usleep(5000);
    }
    assert_int_equal(n, 1);
    assert_int_equal(pids[0], c);
    /* young and without a pidfile: on its way, not settled */
    assert_int_equal(qemu_seek(vms, ID, 0, &scan, &got), QEMU_COMING);
    assert_int_equal(got, c);
    qemu_scan_free(&scan);
    /* with a pidfile naming it: up, by the fast path */
    char pf[32];
    int len = snprintf(pf, sizeof(pf), "%d\n", (int)c);
    assert_int_equal(write_file_atomic(arg, pf, (size_t)len, 0600), 0);
    assert_int_equal(qemu_seek(vms, ID, 0, NULL, &got), QEMU_UP);
    kill(-c, SIGKILL);
    waitpid(c, NULL, 0);
    close(hold[1]);
    assert_int_equal(qemu_seek(vms, ID, 0, NULL, &got), QEMU_GONE);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pid_states),
        cmocka_unit_test(test_no_descriptors_is_unknown),
        cmocka_unit_test(test_cmdline_matches),
        cmocka_unit_test(test_scan_finds_a_process_by_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
