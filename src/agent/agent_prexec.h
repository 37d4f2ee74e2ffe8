/*
 * agent_prexec.h - what vm.launch does in the process that becomes QEMU,
 * before exec (agent_prexec.c): join the VM's cgroup and, for a VM whose
 * memory is locked, raise RLIMIT_MEMLOCK (still with yund's credentials:
 * QEMU then runs as the VM's uid, without CAP_IPC_LOCK, and its mlockall
 * is bounded by this limit).
 */
#ifndef YUN_AGENT_PREXEC_H
#define YUN_AGENT_PREXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "compute/cgroup.h"
#include "lib/yerr.h"
#include "store/records.h"

struct engine;

struct launch_prexec {
    struct engine *e;
    const char *group; /* the VM's cgroup; NULL: none */
    uint64_t memlock;  /* RLIMIT_MEMLOCK to set (bytes); 0 = leave it */
    char err[256];
};

/* The job's pre-exec hook (arg: struct launch_prexec): 0, or -1 after its
 * reason went to stderr (qemu failed to start: REASON). */
int launch_prexec(void *arg);

/* Before anything of the launch is made (a controller that could not
 * check, e.g. for a host that joined): the VM's memory policy against this
 * host, its swap accounting and how much its QEMU may lock. 0, or -1 with
 * YE_INVALID_ARGUMENT naming the limit. */
int launch_memory_check(struct engine *e, const struct vm_rec *vm, const struct cg_limits *l,
                        struct yerr *err);

#endif
