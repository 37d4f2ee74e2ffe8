/*
 * cgroup.h - per-VM resource control groups (CPU weight, CPU quota, memory
 * limit, cpuset pinning) on either cgroup v2 (unified) or v1 (per-controller
 * hierarchies, including the v1/v2 "hybrid" layout systemd uses).
 *
 * Each VM gets one group, named by the caller (yund uses "vm-<id>"), under a
 * parent path (yund uses "yun/y-<its own id>", so several yunds on one
 * machine never share a group or a parent's weight) in every hierarchy that
 * has a controller we need. The QEMU process joins by pid; its threads follow.
 */
#ifndef YUN_CGROUP_H
#define YUN_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

enum cg_mode { CG_NONE = 0, CG_V1, CG_V2 };

struct cg_layout {
    enum cg_mode mode;
    char root[256];    /* mount point of the unified tree, or of the cgroup dir (v1) */
    char cpu[256];     /* v1: mount point of the cpu controller ("" if absent) */
    char memory[256];  /* v1: memory controller */
    char cpuset[256];  /* v1: cpuset controller */
    char cpuacct[256]; /* v1: cpuacct controller (for CPU time stats) */
    char parent[128];  /* groups live under <mount>/<parent>; "" = "yun" */
};

/* Sets the parent path ("yun/y-1a2b3c"): components of [A-Za-z0-9_.-]. 0 or -1. */
int cg_set_parent(struct cg_layout *lay, const char *parent);

struct cg_limits {
    unsigned cpu_weight;    /* 1..10000, cgroup v2 scale (100 = default); 0 = leave default */
    uint64_t cpu_quota_us;  /* CPU time allowed per period; 0 = unlimited */
    uint64_t cpu_period_us; /* period for the quota; 0 = 100000 */
    uint64_t memory_bytes;  /* hard memory limit; 0 = unlimited */
    char cpuset[64];        /* host CPUs to pin to, "0-1,3" syntax; "" = no pinning */
    /* memory policy (cgroup_mem.c) */
    int swap_limit;      /* swap_bytes applies (0: the host's default, nothing written) */
    uint64_t swap_bytes; /* swap allowed beyond memory_bytes (v2 memory.swap.max, v1 memsw) */
    uint64_t high_bytes; /* soft limit: v2 memory.high, v1 memory.soft_limit_in_bytes; 0 = none */
    int locked;          /* QEMU's memory is mlock'd: no swap, v1 swappiness 0 */
};

/* Whether the host accounts swap per group (v1: memory.memsw.* files, the
 * kernel's swapaccount; v2: memory.swap.max): what a swap limit needs. */
enum cg_swap_acct { CG_SWAP_UNKNOWN = -1, CG_SWAP_NO = 0, CG_SWAP_YES = 1 };
/* Looks at the tree (v1: the memory mount's root; v2: the groups under the
 * root, which has no memory.swap.* of its own). */
enum cg_swap_acct cg_swap_accounting(const struct cg_layout *lay);

/* Reads /proc/self/mountinfo (or the file named by base for tests, see
 * cg_detect_at) and fills *out. Returns 0, or -1 when no usable cgroup
 * hierarchy exists (mode is then CG_NONE and every other call is a no-op). */
int cg_detect(struct cg_layout *out);
int cg_detect_at(const char *mountinfo_path, struct cg_layout *out);

/* Validates limits (ranges, cpuset syntax, CPUs that exist: ncpus host CPUs;
 * a swap allowance above 0 needs swap accounting: swap_acct, CG_SWAP_UNKNOWN
 * = not checked). Returns 0 or -1 with a one-line reason in err. Pure, no I/O. */
int cg_limits_validate(const struct cg_limits *l, int ncpus, enum cg_swap_acct swap_acct, char *err,
                       size_t errlen);

/* Creates (or reuses) the VM's groups and writes the limits. Idempotent.
 * Returns 0 or -1 with reason in err. */
int cg_vm_setup(const struct cg_layout *lay, const char *vm, const struct cg_limits *l, char *err,
                size_t errlen);

/* Moves pid into the VM's groups. */
int cg_vm_attach(const struct cg_layout *lay, const char *vm, pid_t pid, char *err, size_t errlen);

/* Removes the VM's groups (after its processes are gone). Missing groups are
 * fine. Blocks up to ~1 s on a busy group: never on the daemon's loop (use
 * cg_remove_start, cgroup_remove.h). */
int cg_vm_destroy(const struct cg_layout *lay, const char *vm);
/* One try, never waiting: 0 when every group is gone, 1 when one is still
 * busy (EBUSY: a process lingers; try again later), -1 on another error. */
int cg_vm_destroy_once(const struct cg_layout *lay, const char *vm);

/* Total CPU time consumed by the VM's group in nanoseconds, or -1. */
int64_t cg_vm_cpu_ns(const struct cg_layout *lay, const char *vm);

/* Current memory use of the VM's group in bytes, or -1. */
int64_t cg_vm_memory_bytes(const struct cg_layout *lay, const char *vm);

#endif
