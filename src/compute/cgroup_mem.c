/*
 * cgroup_mem.c - owns a VM group's memory policy files (docs/architecture.md
 * "Memory policy"): the hard limit, swap beyond it, the soft limit and, for
 * a VM whose memory is locked, no swap at all; the pure checks of those
 * limits (cg_limits_validate's memory half); and whether the host accounts
 * swap per group, which a swap allowance needs.
 *
 * v2 and v1 differ in what they can say:
 *   - swap: v2 memory.swap.max is the swap itself; v1 has only
 *     memory.memsw.limit_in_bytes, memory plus swap together, and only when
 *     the kernel accounts swap (the memsw files exist).
 *   - soft limit: v2 memory.high throttles and reclaims the group as soon as
 *     it is passed; v1 memory.soft_limit_in_bytes is only looked at under
 *     host-wide memory pressure (global reclaim takes from the groups above
 *     their soft limit first), so a v1 VM may sit above it indefinitely on
 *     a host with memory to spare.
 *   - v1 has a per-group memory.swappiness (0 for a locked VM, or one with
 *     no swap); v2 has none (a locked VM's pages cannot be swapped anyway).
 */
#include "compute/cgroup_internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int exists_in(const char *dir, const char *file)
{
    char path[CG_PATH_MAX];
    if (cg_join(path, sizeof(path), dir, file, NULL, 0) < 0)
        return 0;
    return access(path, F_OK) == 0;
}

enum cg_swap_acct cg_swap_accounting(const struct cg_layout *lay)
{
    if (lay == NULL || lay->mode == CG_NONE)
        return CG_SWAP_NO;
    if (lay->mode == CG_V1)
        return lay->memory[0] && exists_in(lay->memory, "memory.memsw.limit_in_bytes") ? CG_SWAP_YES
                                                                                       : CG_SWAP_NO;
    /* v2: the root group has no memory.swap.* files; any group below it
     * that has the memory controller shows whether the kernel has them */
    DIR *d = opendir(lay->root);
    if (d == NULL)
        return CG_SWAP_UNKNOWN;
    enum cg_swap_acct r = CG_SWAP_NO;
    struct dirent *de;
    while (r == CG_SWAP_NO && (de = readdir(d)) != NULL) {
        char sub[CG_PATH_MAX];
        if (de->d_name[0] == '.' || cg_join(sub, sizeof(sub), lay->root, de->d_name, NULL, 0) < 0)
            continue;
        if (exists_in(sub, "memory.swap.max"))
            r = CG_SWAP_YES;
    }
    closedir(d);
    return r;
}

int cg_memory_validate(const struct cg_limits *l, enum cg_swap_acct swap_acct, char *err,
                       size_t errlen)
{
    if (l->high_bytes && l->memory_bytes && l->high_bytes > l->memory_bytes) {
        cg_set_err(err, errlen,
                   "memory_high %" PRIu64 " MiB is above the memory limit %" PRIu64 " MiB",
                   l->high_bytes >> 20, l->memory_bytes >> 20);
        return -1;
    }
    if (l->locked && l->swap_limit && l->swap_bytes) {
        cg_set_err(err, errlen,
                   "memory_lock keeps the VM resident: memory_swap must be 0, not %" PRIu64 " MiB",
                   l->swap_bytes >> 20);
        return -1;
    }
    if (l->locked && l->high_bytes) {
        cg_set_err(err, errlen, "memory_lock keeps the VM resident: it cannot have memory_high");
        return -1;
    }
    if (l->swap_limit && l->swap_bytes && swap_acct == CG_SWAP_NO) {
        cg_set_err(err, errlen,
                   "memory_swap %" PRIu64 " MiB needs swap accounting, which this host lacks "
                   "(cgroup v1: no memory.memsw files, boot with swapaccount=1; v2: no "
                   "memory.swap.max); only memory_swap 0 can be kept here",
                   l->swap_bytes >> 20);
        return -1;
    }
    return 0;
}

static void num(char *val, size_t len, uint64_t v, const char *none)
{
    if (v)
        snprintf(val, len, "%" PRIu64, v);
    else
        snprintf(val, len, "%s", none);
}

/* Every file is written even with its default, so a later setup with a
 * relaxed policy really relaxes it. */
int cg_v2_memory_setup(const char *dir, const struct cg_limits *l, char *err, size_t errlen)
{
    char val[32];
    num(val, sizeof val, l->memory_bytes, "max");
    if (cg_write_in(dir, "memory.max", val, err, errlen) < 0)
        return -1;
    num(val, sizeof val, l->high_bytes, "max");
    if (cg_write_in(dir, "memory.high", val, err, errlen) < 0)
        return -1;
    bool none = l->locked || (l->swap_limit && !l->swap_bytes);
    if (!exists_in(dir, "memory.swap.max")) {
        if (l->swap_limit && l->swap_bytes) /* cg_memory_validate saw the tree otherwise */
            return cg_memory_validate(l, CG_SWAP_NO, err, errlen);
        return 0; /* no accounting: nothing to write, swap 0 as well as it can be */
    }
    if (none)
        snprintf(val, sizeof val, "0");
    else
        num(val, sizeof val, l->swap_limit ? l->swap_bytes : 0, "max");
    return cg_write_in(dir, "memory.swap.max", val, err, errlen);
}

int cg_v1_memory_setup(const char *parent, const char *dir, const struct cg_limits *l, char *err,
                       size_t errlen)
{
    char val[32];
    bool memsw = exists_in(dir, "memory.memsw.limit_in_bytes");
    /* memsw may never be below the memory limit: lift it before the limit
     * moves, set it after */
    if (memsw && cg_write_in(dir, "memory.memsw.limit_in_bytes", "-1", err, errlen) < 0)
        return -1;
    num(val, sizeof val, l->memory_bytes, "-1");
    if (cg_write_in(dir, "memory.limit_in_bytes", val, err, errlen) < 0)
        return -1;
    bool none = l->locked || (l->swap_limit && !l->swap_bytes);
    if (memsw && l->memory_bytes && (none || l->swap_limit)) {
        snprintf(val, sizeof val, "%" PRIu64, l->memory_bytes + (none ? 0 : l->swap_bytes));
        if (cg_write_in(dir, "memory.memsw.limit_in_bytes", val, err, errlen) < 0)
            return -1;
    } else if (!memsw && l->swap_limit && l->swap_bytes) {
        return cg_memory_validate(l, CG_SWAP_NO, err, errlen);
    }
    num(val, sizeof val, l->high_bytes, "-1");
    if (cg_write_in(dir, "memory.soft_limit_in_bytes", val, err, errlen) < 0)
        return -1;
    /* swappiness: 0 for a VM that must not swap; else the parent's again */
    char up[32] = "";
    char path[CG_PATH_MAX];
    if (none)
        snprintf(up, sizeof up, "0");
    else if (cg_join(path, sizeof path, parent, "memory.swappiness", NULL, 0) < 0 ||
             cg_read_file(path, up, sizeof up) <= 0)
        return 0; /* no swappiness above: leave the group's */
    if (!exists_in(dir, "memory.swappiness"))
        return 0;
    return cg_write_in(dir, "memory.swappiness", up, err, errlen);
}
