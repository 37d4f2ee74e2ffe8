/*
 * test_cgroup_mem.c - unit tests for src/compute/cgroup_mem.c: the memory
 * policy's validation (a soft limit above the hard one, a locked VM with
 * swap or a soft limit, swap on a host without swap accounting), swap
 * accounting found from the tree, and the files written on fake v2 and v1
 * trees (plain files shaped like cgroupfs): memory.high, memory.swap.max;
 * memory.memsw.limit_in_bytes, memory.soft_limit_in_bytes,
 * memory.swappiness; and a refused swap limit writing nothing of it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute/cgroup.h"

#define MiB (1ULL << 20)

static void put(const char *dir, const char *name, const char *val)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        fail_msg("create %s", p);
    fputs(val, f);
    fclose(f);
}

static void expect(const char *dir, const char *name, const char *want)
{
    char p[PATH_MAX], got[128] = "";
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f)
        fail_msg("open %s", p);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = 0;
    while (n && (got[n - 1] == '\n' || got[n - 1] == ' '))
        got[--n] = 0;
    if (strcmp(got, want))
        fail_msg("%s: got \"%s\", want \"%s\"", p, got, want);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void bad(struct cg_limits l, enum cg_swap_acct acct, const char *want)
{
    char err[256] = "";
    if (cg_limits_validate(&l, 2, acct, err, sizeof err) != -1)
        fail_msg("accepted; want \"%s\"", want);
    if (!strstr(err, want))
        fail_msg("\"%s\" does not say \"%s\"", err, want);
}

static void good(struct cg_limits l, enum cg_swap_acct acct)
{
    char err[256] = "";
    if (cg_limits_validate(&l, 2, acct, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
}

static void test_validate(void **state)
{
    bad((struct cg_limits){.memory_bytes = 128 * MiB, .high_bytes = 129 * MiB}, CG_SWAP_YES,
        "memory_high 129 MiB is above the memory limit 128 MiB");
    bad(
        (struct cg_limits){
            .memory_bytes = 128 * MiB, .locked = 1, .swap_limit = 1, .swap_bytes = 64 * MiB},
        CG_SWAP_YES, "memory_swap must be 0, not 64 MiB");
    bad((struct cg_limits){.memory_bytes = 128 * MiB, .locked = 1, .high_bytes = 64 * MiB},
        CG_SWAP_YES, "it cannot have memory_high");
    /* swap on a host that does not account it: the limit is named */
    bad((struct cg_limits){.memory_bytes = 128 * MiB, .swap_limit = 1, .swap_bytes = 64 * MiB},
        CG_SWAP_NO, "memory_swap 64 MiB needs swap accounting, which this host lacks");
    good((struct cg_limits){.memory_bytes = 128 * MiB, .swap_limit = 1, .swap_bytes = 64 * MiB},
         CG_SWAP_YES);
    good((struct cg_limits){.memory_bytes = 128 * MiB, .swap_limit = 1, .swap_bytes = 64 * MiB},
         CG_SWAP_UNKNOWN); /* its host's launch checks */
    good((struct cg_limits){.memory_bytes = 128 * MiB, .swap_limit = 1}, CG_SWAP_NO); /* none */
    good((struct cg_limits){.memory_bytes = 128 * MiB, .locked = 1, .swap_limit = 1}, CG_SWAP_NO);
    good((struct cg_limits){.memory_bytes = 128 * MiB, .high_bytes = 128 * MiB}, CG_SWAP_NO);
}

/* root/yun/y-t/fake, each level a directory; returns the VM's group */
static void tree(char *root, char *mid, char *vm)
{
    assert_non_null(mkdtemp(root));
    char yun[PATH_MAX];
    snprintf(yun, PATH_MAX, "%s/yun", root);
    snprintf(mid, PATH_MAX, "%s/y-t", yun);
    snprintf(vm, PATH_MAX, "%s/fake", mid);
    assert_int_equal(mkdir(yun, 0755), 0);
    assert_int_equal(mkdir(mid, 0755), 0);
    assert_int_equal(mkdir(vm, 0755), 0);
}

static void setup_ok(const struct cg_layout *lay, const struct cg_limits *l)
{
    char err[512] = "";
    if (cg_vm_setup(lay, "fake", l, err, sizeof err) != 0)
        fail_msg("setup: %s", err);
}

static void test_v2(void **state)
{
    char root[] = "/tmp/yun-test-cgm2-XXXXXX", mid[PATH_MAX], vm[PATH_MAX], yun[PATH_MAX];
    tree(root, mid, vm);
    snprintf(yun, sizeof yun, "%s/yun", root);
    put(root, "cgroup.controllers", "cpu memory\n");
    put(root, "cgroup.subtree_control", "cpu memory\n");
    put(yun, "cgroup.controllers", "cpu memory\n");
    put(yun, "cgroup.subtree_control", "cpu memory\n");
    put(mid, "cgroup.controllers", "cpu memory\n");
    put(mid, "cgroup.subtree_control", "cpu memory\n");
    const char *files[] = {"cpu.weight", "cpu.max", "memory.max", "memory.high", "memory.swap.max"};
    for (size_t i = 0; i < 5; i++)
        put(vm, files[i], "");
    put(yun, "memory.swap.max", "max\n"); /* the kernel accounts swap */
    struct cg_layout lay = {.mode = CG_V2};
    snprintf(lay.root, sizeof lay.root, "%s", root);
    assert_int_equal(cg_set_parent(&lay, "yun/y-t"), 0);
    assert_int_equal(cg_swap_accounting(&lay), CG_SWAP_YES);

    struct cg_limits l = {.memory_bytes = 512 * MiB,
                          .high_bytes = 300 * MiB,
                          .swap_limit = 1,
                          .swap_bytes = 64 * MiB};
    setup_ok(&lay, &l);
    expect(vm, "memory.max", "536870912");
    expect(vm, "memory.high", "314572800");
    expect(vm, "memory.swap.max", "67108864");
    /* locked: no swap */
    setup_ok(&lay, &(struct cg_limits){.memory_bytes = 512 * MiB, .locked = 1, .swap_limit = 1});
    expect(vm, "memory.high", "max");
    expect(vm, "memory.swap.max", "0");
    /* the host's default again: every file relaxed */
    setup_ok(&lay, &(struct cg_limits){0});
    expect(vm, "memory.max", "max");
    expect(vm, "memory.high", "max");
    expect(vm, "memory.swap.max", "max");

    /* a kernel without swap accounting: no memory.swap.* anywhere */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/memory.swap.max", yun);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/memory.swap.max", vm);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(cg_swap_accounting(&lay), CG_SWAP_NO);
    char err[512] = "";
    assert_int_equal(cg_vm_setup(&lay, "fake", &l, err, sizeof err), -1);
    assert_non_null(strstr(err, "memory_swap 64 MiB needs swap accounting"));
    /* swap 0 is taken (nothing to write) */
    setup_ok(&lay, &(struct cg_limits){.memory_bytes = 512 * MiB, .swap_limit = 1});
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_v1(void **state)
{
    char root[] = "/tmp/yun-test-cgm1-XXXXXX", mid[PATH_MAX], vm[PATH_MAX];
    tree(root, mid, vm);
    const char *files[] = {"memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                           "memory.soft_limit_in_bytes", "memory.swappiness"};
    for (size_t i = 0; i < 4; i++)
        put(vm, files[i], "");
    put(root, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
    put(mid, "memory.swappiness", "60\n");
    struct cg_layout lay = {.mode = CG_V1};
    snprintf(lay.root, sizeof lay.root, "%s", root);
    snprintf(lay.memory, sizeof lay.memory, "%s", root); /* the memory controller alone */
    assert_int_equal(cg_set_parent(&lay, "yun/y-t"), 0);
    assert_int_equal(cg_swap_accounting(&lay), CG_SWAP_YES);

    /* memsw is memory plus swap; the soft limit; swappiness inherited */
    setup_ok(&lay, &(struct cg_limits){.memory_bytes = 128 * MiB,
                                       .high_bytes = 100 * MiB,
                                       .swap_limit = 1,
                                       .swap_bytes = 64 * MiB});
    expect(vm, "memory.limit_in_bytes", "134217728");
    expect(vm, "memory.memsw.limit_in_bytes", "201326592");
    expect(vm, "memory.soft_limit_in_bytes", "104857600");
    expect(vm, "memory.swappiness", "60");
    /* locked: memsw = the limit (no swap), swappiness 0, no soft limit */
    setup_ok(&lay, &(struct cg_limits){.memory_bytes = 128 * MiB, .locked = 1, .swap_limit = 1});
    expect(vm, "memory.memsw.limit_in_bytes", "134217728");
    expect(vm, "memory.swappiness", "0");
    expect(vm, "memory.soft_limit_in_bytes", "-1");
    /* the host's default: memsw unlimited, swappiness the parent's */
    setup_ok(&lay, &(struct cg_limits){.memory_bytes = 128 * MiB});
    expect(vm, "memory.memsw.limit_in_bytes", "-1");
    expect(vm, "memory.swappiness", "60");

    /* swapaccount=0: no memsw files; a swap limit is refused naming it, and
     * nothing of it is written */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/memory.memsw.limit_in_bytes", root);
    assert_int_equal(unlink(p), 0);
    snprintf(p, sizeof p, "%s/memory.memsw.limit_in_bytes", vm);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(cg_swap_accounting(&lay), CG_SWAP_NO);
    put(vm, "memory.soft_limit_in_bytes", "untouched");
    char err[512] = "";
    struct cg_limits sw = {.memory_bytes = 128 * MiB, .swap_limit = 1, .swap_bytes = 64 * MiB};
    assert_int_equal(cg_vm_setup(&lay, "fake", &sw, err, sizeof err), -1);
    assert_non_null(strstr(err, "memory_swap 64 MiB needs swap accounting"));
    expect(vm, "memory.soft_limit_in_bytes", "untouched");
    /* no swap wanted: kept as well as v1 can, swappiness 0 */
    setup_ok(&lay, &(struct cg_limits){.memory_bytes = 128 * MiB, .swap_limit = 1});
    expect(vm, "memory.swappiness", "0");
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_v2),
        cmocka_unit_test(test_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
