/*
 * test_cgroup.c - unit tests for src/compute/cgroup.c: hierarchy detection
 * from fixture mountinfo files (pure v2, the v1/v2 hybrid layout, v1 with
 * co-mounted cpu,cpuacct), limit validation messages, the v2 file mapping on
 * a fake directory tree, and one real round trip on the host's cgroup fs
 * (create, limit, attach a child, read back, destroy).
 *
 * The real test needs root and a writable cgroup fs. It fails, never skips,
 * when they are missing: a silent pass would hide that resource limits do not
 * work on the machine the suite runs on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compute/cgroup.h"

static char fixtures[PATH_MAX]; /* absolute path of tests/unit/fixtures/cgroup */

/* Fixtures live next to this file; __FILE__ is relative to the directory the
 * compiler ran in, which is the repo root for both the Makefile and the
 * one-line cc command, so resolve it now that the test runs from there. */
static int find_fixtures(void **state)
{
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s", __FILE__);
    char *slash = strrchr(src, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(src, sizeof(src), ".");
    char rel[PATH_MAX + 32];
    snprintf(rel, sizeof(rel), "%s/fixtures/cgroup", src);
    if (realpath(rel, fixtures) == NULL) {
        fprintf(stderr, "cannot find fixtures at %s: %s (run from the repo root)\n", rel,
                strerror(errno));
        return -1;
    }
    return 0;
}

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("open %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
}

static void put(const char *path, const char *val)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        fail_msg("create %s: %s", path, strerror(errno));
    fputs(val, f);
    fclose(f);
}

/* Copies fixture <name> to a temp file with @FIXTURES@ replaced by the real
 * fixture directory, escaped the way the kernel escapes mountinfo (so a
 * checkout path with a space also exercises the decoder). */
static void instantiate(const char *name, char *out, size_t outlen)
{
    char src[PATH_MAX + 64], text[8192], esc[PATH_MAX * 4];
    snprintf(src, sizeof(src), "%s/%s", fixtures, name);
    slurp(src, text, sizeof(text));
    size_t e = 0;
    for (const char *p = fixtures; *p && e + 5 < sizeof(esc); p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
            e += (size_t)snprintf(esc + e, sizeof(esc) - e, "\\%03o", (unsigned char)*p);
        else
            esc[e++] = *p;
    }
    esc[e] = '\0';

    snprintf(out, outlen, "/tmp/yun-test-mountinfo-XXXXXX");
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    const char *p = text, *hit;
    while ((hit = strstr(p, "@FIXTURES@")) != NULL) {
        fwrite(p, 1, (size_t)(hit - p), f);
        fputs(esc, f);
        p = hit + strlen("@FIXTURES@");
    }
    fputs(p, f);
    fputc('\n', f);
    fclose(f);
}

static int detect_fixture(const char *name, struct cg_layout *lay)
{
    char tmp[64];
    instantiate(name, tmp, sizeof(tmp));
    int rc = cg_detect_at(tmp, lay);
    unlink(tmp);
    return rc;
}

/* ---- detection ---------------------------------------------------------- */

static void test_detect_v2(void **state)
{
    struct cg_layout lay;
    char want[PATH_MAX + 32];
    assert_int_equal(detect_fixture("mountinfo-v2", &lay), 0);
    assert_int_equal(lay.mode, CG_V2);
    snprintf(want, sizeof(want), "%s/v2/sys/fs/cgroup", fixtures);
    assert_string_equal(lay.root, want);
    assert_string_equal(lay.cpu, "");
    assert_string_equal(lay.memory, "");
}

static void test_detect_hybrid(void **state)
{
    /* This machine's layout: cgroup2 mounted but with no cpu/memory in its
     * cgroup.controllers, so the v1 hierarchies must be used. */
    struct cg_layout lay;
    assert_int_equal(detect_fixture("mountinfo-hybrid", &lay), 0);
    assert_int_equal(lay.mode, CG_V1);
    assert_string_equal(lay.root, "/sys/fs/cgroup");
    assert_string_equal(lay.cpu, "/sys/fs/cgroup/cpu");
    assert_string_equal(lay.cpuacct, "/sys/fs/cgroup/cpuacct");
    assert_string_equal(lay.cpuset, "/sys/fs/cgroup/cpuset");
    assert_string_equal(lay.memory, "/sys/fs/cgroup/memory");
}

static void test_detect_v1_comount(void **state)
{
    struct cg_layout lay;
    assert_int_equal(detect_fixture("mountinfo-v1-comount", &lay), 0);
    assert_int_equal(lay.mode, CG_V1);
    assert_string_equal(lay.cpu, "/sys/fs/cgroup/cpu,cpuacct");
    assert_string_equal(lay.cpuacct, "/sys/fs/cgroup/cpu,cpuacct");
    assert_string_equal(lay.cpuset, "/sys/fs/cgroup/cpuset");
    assert_string_equal(lay.memory, "/sys/fs/cgroup/memory");
}

static void test_detect_none(void **state)
{
    struct cg_layout lay;
    assert_int_equal(detect_fixture("mountinfo-none", &lay), -1);
    assert_int_equal(lay.mode, CG_NONE);
    /* cgroup2 without cpu/memory and no v1 hierarchy: nothing usable. */
    assert_int_equal(detect_fixture("mountinfo-v2-nocpu", &lay), -1);
    assert_int_equal(lay.mode, CG_NONE);
    assert_int_equal(cg_detect_at("/nonexistent/mountinfo", &lay), -1);
    assert_int_equal(lay.mode, CG_NONE);
    /* Every call is a no-op in CG_NONE mode. */
    struct cg_limits l = {.cpu_weight = 200};
    char err[256] = "";
    assert_int_equal(cg_vm_setup(&lay, "vm1", &l, err, sizeof(err)), 0);
    assert_int_equal(cg_vm_attach(&lay, "vm1", getpid(), err, sizeof(err)), 0);
    assert_int_equal(cg_vm_destroy(&lay, "vm1"), 0);
    assert_true(cg_vm_cpu_ns(&lay, "vm1") < 0);
    assert_true(cg_vm_memory_bytes(&lay, "vm1") < 0);
}

/* ---- validation --------------------------------------------------------- */

static void check_bad(struct cg_limits l, int ncpus, const char *want)
{
    char err[256] = "";
    if (cg_limits_validate(&l, ncpus, CG_SWAP_UNKNOWN, err, sizeof(err)) != -1)
        fail_msg("expected failure \"%s\", got success", want);
    assert_string_equal(err, want);
}

static void check_good(struct cg_limits l, int ncpus)
{
    char err[256] = "";
    if (cg_limits_validate(&l, ncpus, CG_SWAP_UNKNOWN, err, sizeof(err)) != 0)
        fail_msg("cpuset \"%s\": unexpected failure: %s", l.cpuset, err);
}

static void test_validate_good(void **state)
{
    check_good((struct cg_limits){0}, 2);
    check_good((struct cg_limits){.cpu_weight = 1, .cpu_quota_us = 1000, .cpu_period_us = 1000}, 2);
    check_good((struct cg_limits){.cpu_weight = 10000,
                                  .cpu_quota_us = 400000,
                                  .cpu_period_us = 1000000,
                                  .memory_bytes = 64ull << 20,
                                  .cpuset = "0-1"},
               2);
    check_good((struct cg_limits){.cpuset = "0"}, 1);
    check_good((struct cg_limits){.cpuset = "1,0"}, 2);
    check_good((struct cg_limits){.cpuset = "0-3,5,7-7"}, 8);
    check_good((struct cg_limits){.cpuset = "12-15"}, 16);
    check_good((struct cg_limits){.cpu_quota_us = 250000}, 2); /* quota > period: 2.5 CPUs */
}

static void test_validate_bad(void **state)
{
    check_bad((struct cg_limits){.cpu_weight = 20000}, 2, "cpu-weight 20000 out of range 1..10000");
    check_bad((struct cg_limits){.cpu_weight = 10001}, 2, "cpu-weight 10001 out of range 1..10000");
    check_bad((struct cg_limits){.cpu_quota_us = 999}, 2, "cpu-quota 999us below minimum 1000us");
    check_bad((struct cg_limits){.cpu_period_us = 999}, 2,
              "cpu-period 999us out of range 1000..1000000");
    check_bad((struct cg_limits){.cpu_period_us = 1000001}, 2,
              "cpu-period 1000001us out of range 1000..1000000");
    check_bad((struct cg_limits){.cpuset = "2"}, 2,
              "cpuset \"2\": CPU 2 does not exist (host has 2 CPUs: 0-1)");
    check_bad((struct cg_limits){.cpuset = "0-2"}, 2,
              "cpuset \"0-2\": CPU 2 does not exist (host has 2 CPUs: 0-1)");
    check_bad((struct cg_limits){.cpuset = "1-0"}, 2, "cpuset \"1-0\": range 1-0 is reversed");
    check_bad((struct cg_limits){.cpuset = "0,"}, 2,
              "cpuset \"0,\": unexpected end (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = "0-"}, 2,
              "cpuset \"0-\": bad syntax at \"-\" (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = "0x"}, 2,
              "cpuset \"0x\": bad syntax at \"x\" (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = "0 "}, 2,
              "cpuset \"0 \": bad syntax at \" \" (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = " 0"}, 2,
              "cpuset \" 0\": bad syntax at \" 0\" (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = "-1"}, 2,
              "cpuset \"-1\": bad syntax at \"-1\" (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = "a"}, 2,
              "cpuset \"a\": bad syntax at \"a\" (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = "0,,1"}, 2,
              "cpuset \"0,,1\": bad syntax at \",1\" (want e.g. \"0-1,3\")");
    check_bad((struct cg_limits){.cpuset = "0;1"}, 2,
              "cpuset \"0;1\": bad syntax at \";1\" (want e.g. \"0-1,3\")");

    struct cg_limits unterminated;
    memset(&unterminated, 0, sizeof(unterminated));
    memset(unterminated.cpuset, '1', sizeof(unterminated.cpuset));
    check_bad(unterminated, 2, "cpuset longer than 63 characters");

    char err[256] = "";
    assert_int_equal(cg_limits_validate(NULL, 2, CG_SWAP_UNKNOWN, err, sizeof(err)), -1);
    /* A NULL/empty error buffer must not be written to. */
    struct cg_limits l = {.cpu_weight = 20000};
    assert_int_equal(cg_limits_validate(&l, 2, CG_SWAP_UNKNOWN, NULL, 0), -1);
}

/* ---- v2 mapping on a fake tree ------------------------------------------ */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void mkfile(const char *dir, const char *name, const char *val)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    put(p, val);
}

static void expect_file(const char *dir, const char *name, const char *want)
{
    char p[PATH_MAX], got[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    slurp(p, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", p, got, want);
}

/* No v2 controllers are available on a hybrid host, so the v2 writes are
 * checked against plain files shaped like a cgroup2 tree. */
static void test_v2_fake_tree(void **state)
{
    char root[] = "/tmp/yun-test-cg2-XXXXXX";
    assert_non_null(mkdtemp(root));
    /* two parent levels, as yund uses them: yun/y-<yund id>/<group> */
    char yun[128], mid[192], vm[256];
    snprintf(yun, sizeof(yun), "%s/yun", root);
    snprintf(mid, sizeof(mid), "%s/y-t", yun);
    snprintf(vm, sizeof(vm), "%s/fake", mid);
    assert_int_equal(mkdir(yun, 0755), 0);
    assert_int_equal(mkdir(mid, 0755), 0);
    assert_int_equal(mkdir(vm, 0755), 0);
    mkfile(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
    mkfile(root, "cgroup.subtree_control", "cpu memory cpuset\n");
    mkfile(yun, "cgroup.controllers", "cpuset cpu memory\n");
    mkfile(yun, "cgroup.subtree_control", "\n");
    mkfile(mid, "cgroup.controllers", "cpuset cpu memory\n");
    mkfile(mid, "cgroup.subtree_control", "\n");
    mkfile(mid, "cpuset.mems.effective", "0\n");
    const char *files[] = {"cpu.weight",  "cpu.max",     "memory.max",   "memory.high",
                           "cpuset.cpus", "cpuset.mems", "cgroup.procs", "memory.current"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        mkfile(vm, files[i], "");
    mkfile(vm, "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
    mkfile(vm, "memory.current", "4096\n");

    struct cg_layout lay = {.mode = CG_V2};
    snprintf(lay.root, sizeof(lay.root), "%s", root);
    assert_int_equal(cg_set_parent(&lay, "yun/y-t"), 0);
    struct cg_limits l = {.cpu_weight = 200,
                          .cpu_quota_us = 50000,
                          .cpu_period_us = 100000,
                          .memory_bytes = 64ull << 20,
                          .cpuset = "0"};
    char err[512] = "";
    if (cg_vm_setup(&lay, "fake", &l, err, sizeof(err)) != 0)
        fail_msg("setup: %s", err);
    expect_file(vm, "cpu.weight", "200");
    expect_file(vm, "cpu.max", "50000 100000");
    expect_file(vm, "memory.max", "67108864");
    expect_file(vm, "cpuset.cpus", "0");
    expect_file(vm, "cpuset.mems", "0");
    /* Root already had everything enabled, so it must not be rewritten;
     * yun had nothing, so its file holds the last "+ctrl" written. */
    expect_file(root, "cgroup.subtree_control", "cpu memory cpuset");
    expect_file(yun, "cgroup.subtree_control", "+cpuset");
    expect_file(mid, "cgroup.subtree_control", "+cpuset");

    /* Relaxing limits writes the defaults back. */
    struct cg_limits none = {0};
    if (cg_vm_setup(&lay, "fake", &none, err, sizeof(err)) != 0)
        fail_msg("setup: %s", err);
    expect_file(vm, "cpu.weight", "100");
    expect_file(vm, "cpu.max", "max 100000");
    expect_file(vm, "memory.max", "max");

    assert_int_equal(cg_vm_attach(&lay, "fake", 4242, err, sizeof(err)), 0);
    expect_file(vm, "cgroup.procs", "4242");
    assert_int_equal(cg_vm_cpu_ns(&lay, "fake"), 1500000);
    assert_int_equal(cg_vm_memory_bytes(&lay, "fake"), 4096);

    /* A missing controller is reported with the file that lacks it. */
    mkfile(root, "cgroup.subtree_control", "\n");
    mkfile(root, "cgroup.controllers", "cpuset io pids\n");
    assert_int_equal(cg_vm_setup(&lay, "fake", &l, err, sizeof(err)), -1);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "controller cpu not available in %s/cgroup.controllers", root);
    assert_string_equal(err, want);

    /* Write errors name the file and strerror. */
    mkfile(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
    mkfile(root, "cgroup.subtree_control", "cpu memory cpuset\n");
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/memory.max", vm);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(cg_vm_setup(&lay, "fake", &l, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "open %s: No such file or directory", p);
    assert_string_equal(err, want);

    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_bad_names(void **state)
{
    struct cg_layout lay = {.mode = CG_V2};
    snprintf(lay.root, sizeof(lay.root), "/nonexistent-cgroup-root");
    struct cg_limits l = {0};
    const char *bad[] = {"",    "../etc", "a/b", ".hidden", "a..b", "-x",
                         "a b", "a\nb",   "_a",  "a/..",    NULL};
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (cg_vm_setup(&lay, bad[i], &l, err, sizeof(err)) != -1)
            fail_msg("name \"%s\" accepted", bad[i] ? bad[i] : "(null)");
        assert_non_null(strstr(err, "invalid VM name"));
        assert_int_equal(cg_vm_attach(&lay, bad[i], 1, err, sizeof(err)), -1);
        assert_int_equal(cg_vm_destroy(&lay, bad[i]), -1);
        assert_true(cg_vm_cpu_ns(&lay, bad[i]) < 0);
    }
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = '\0';
    assert_int_equal(cg_vm_setup(&lay, longname, &l, err, sizeof(err)), -1);
    longname[63] = '\0'; /* 63 is fine: fails later, on the missing root */
    assert_int_equal(cg_vm_setup(&lay, longname, &l, err, sizeof(err)), -1);
    assert_null(strstr(err, "invalid VM name"));
    const char *bad_parents[] = {"", "/yun", "yun/", "yun//x", "yun/../x", "a b/c", "yun/.x"};
    for (size_t i = 0; i < sizeof(bad_parents) / sizeof(bad_parents[0]); i++)
        if (cg_set_parent(&lay, bad_parents[i]) != -1)
            fail_msg("parent \"%s\" accepted", bad_parents[i]);
    assert_int_equal(cg_set_parent(&lay, "yun/y-0123abcd"), 0);
    assert_string_equal(lay.parent, "yun/y-0123abcd");
}

/* ---- the real thing ----------------------------------------------------- */

static void read_ctl(const char *mnt, const char *vm, const char *file, char *buf, size_t len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/yun/y-unit/%s/%s", mnt, vm, file);
    slurp(p, buf, len);
}

static void expect_ctl(const char *mnt, const char *vm, const char *file, const char *want)
{
    char got[256];
    read_ctl(mnt, vm, file, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("%s/yun/y-unit/%s/%s: got \"%s\", want \"%s\"", mnt, vm, file, got, want);
}

static void expect_member(const char *mnt, const char *vm, pid_t pid)
{
    char procs[4096], want[32];
    read_ctl(mnt, vm, "cgroup.procs", procs, sizeof(procs));
    snprintf(want, sizeof(want), "%ld", (long)pid);
    for (char *s = strtok(procs, "\n"); s; s = strtok(NULL, "\n"))
        if (strcmp(s, want) == 0)
            return;
    fail_msg("pid %ld not in %s/yun/y-unit/%s/cgroup.procs", (long)pid, mnt, vm);
}

static void expect_gone(const char *mnt, const char *vm)
{
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof(p), "%s/yun/y-unit/%s", mnt, vm);
    if (stat(p, &st) == 0 || errno != ENOENT)
        fail_msg("%s still exists after destroy", p);
}

static void test_real_roundtrip(void **state)
{
    struct cg_layout lay;
    if (geteuid() != 0)
        fail_msg("the real cgroup test needs root (euid %d); resource limits are untested",
                 (int)geteuid());
    if (cg_detect(&lay) != 0)
        fail_msg("no usable cgroup hierarchy found in /proc/self/mountinfo");
    fprintf(stderr, "# cgroup mode %s, root %s\n", lay.mode == CG_V2 ? "v2" : "v1", lay.root);
    assert_int_equal(cg_set_parent(&lay, "yun/y-unit"), 0);

    char vm[64];
    snprintf(vm, sizeof(vm), "unit-test-%ld", (long)getpid());
    struct cg_limits l = {.cpu_weight = 200,
                          .cpu_quota_us = 50000,
                          .cpu_period_us = 100000,
                          .memory_bytes = 64ull << 20,
                          .cpuset = "0"};
    char err[512] = "";
    if (cg_limits_validate(&l, (int)sysconf(_SC_NPROCESSORS_ONLN), CG_SWAP_UNKNOWN, err,
                           sizeof(err)) != 0)
        fail_msg("validate: %s", err);
    if (cg_vm_setup(&lay, vm, &l, err, sizeof(err)) != 0)
        fail_msg("setup: %s", err);
    /* Setup is idempotent: a second call on existing groups succeeds. */
    if (cg_vm_setup(&lay, vm, &l, err, sizeof(err)) != 0)
        fail_msg("second setup: %s", err);

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        for (;;)
            pause();
    }
    if (cg_vm_attach(&lay, vm, child, err, sizeof(err)) != 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        cg_vm_destroy(&lay, vm);
        fail_msg("attach: %s", err);
    }

    if (lay.mode == CG_V2) {
        expect_ctl(lay.root, vm, "cpu.weight", "200");
        expect_ctl(lay.root, vm, "cpu.max", "50000 100000");
        expect_ctl(lay.root, vm, "memory.max", "67108864");
        expect_ctl(lay.root, vm, "cpuset.cpus", "0");
        expect_member(lay.root, vm, child);
    } else {
        assert_true(lay.cpu[0] && lay.memory[0] && lay.cpuset[0] && lay.cpuacct[0]);
        expect_ctl(lay.cpu, vm, "cpu.shares", "2048");
        expect_ctl(lay.cpu, vm, "cpu.cfs_quota_us", "50000");
        expect_ctl(lay.cpu, vm, "cpu.cfs_period_us", "100000");
        expect_ctl(lay.memory, vm, "memory.limit_in_bytes", "67108864");
        expect_ctl(lay.cpuset, vm, "cpuset.cpus", "0");
        char mems[64];
        read_ctl(lay.cpuset, vm, "cpuset.mems", mems, sizeof(mems));
        assert_true(mems[0] != '\0');
        expect_member(lay.cpu, vm, child);
        expect_member(lay.cpuacct, vm, child);
        expect_member(lay.cpuset, vm, child);
        expect_member(lay.memory, vm, child);
    }
    assert_true(cg_vm_cpu_ns(&lay, vm) >= 0);
    assert_true(cg_vm_memory_bytes(&lay, vm) >= 0);

    /* A group with a live process cannot be removed. */
    assert_int_equal(cg_vm_destroy(&lay, vm), -1);

    kill(child, SIGKILL);
    assert_int_equal(waitpid(child, NULL, 0), child);
    assert_int_equal(cg_vm_destroy(&lay, vm), 0);
    if (lay.mode == CG_V2) {
        expect_gone(lay.root, vm);
    } else {
        expect_gone(lay.cpu, vm);
        expect_gone(lay.cpuacct, vm);
        expect_gone(lay.cpuset, vm);
        expect_gone(lay.memory, vm);
    }
    /* Destroying again is fine: missing groups are not an error. */
    assert_int_equal(cg_vm_destroy(&lay, vm), 0);
    const char *mnts[] = {lay.root, lay.cpu, lay.cpuacct, lay.cpuset, lay.memory};
    for (size_t i = 0; i < 5; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/yun/y-unit", mnts[i]);
        if (mnts[i][0])
            rmdir(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_v2),         cmocka_unit_test(test_detect_hybrid),
        cmocka_unit_test(test_detect_v1_comount), cmocka_unit_test(test_detect_none),
        cmocka_unit_test(test_validate_good),     cmocka_unit_test(test_validate_bad),
        cmocka_unit_test(test_v2_fake_tree),      cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_real_roundtrip),
    };
    return cmocka_run_group_tests(tests, find_fixtures, NULL);
}
