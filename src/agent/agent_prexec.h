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

#endif
