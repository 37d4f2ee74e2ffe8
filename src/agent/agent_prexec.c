/*
 * agent_prexec.c - vm.launch's step in QEMU's own process before exec
 * (agent_prexec.h), and the memory policy's check before a launch begins.
 * launch_prexec makes only async-signal-safe calls: it runs after a fork.
 */
#include "agent/agent_prexec.h"
#include "compute/cgroup.h"
#include "compute/confine.h"
#include "compute/engine.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int fail(const char *what)
{
    (void)!write(2, what, strlen(what));
    (void)!write(2, "\n", 1);
    return -1;
}

int launch_prexec(void *arg)
{
    struct launch_prexec *c = arg;
    /* joining the cgroup now, while this is a single small thread, costs
     * microseconds; moving a running QEMU with its threads and memory costs
     * 10-20 ms on cgroup v1 */
    if (c->group && cg_vm_attach(&c->e->cg, c->group, getpid(), c->err, sizeof(c->err)) < 0)
        return fail(c->err);
    /* best effort: without CAP_SYS_RESOURCE the limit stays, and a
     * confined QEMU keeps CAP_IPC_LOCK instead (confine.c); a host with
     * neither refuses memory_lock before any launch (host facts) */
    if (c->memlock) {
        struct rlimit rl = {.rlim_cur = c->memlock, .rlim_max = c->memlock};
        (void)setrlimit(RLIMIT_MEMLOCK, &rl);
    }
    return 0;
}

int launch_memory_check(struct engine *e, const struct vm_rec *vm, const struct cg_limits *l,
                        struct yerr *err)
{
    char why[256];
    if (e->cg.mode != CG_NONE &&
        cg_limits_validate(l, 0, cg_swap_accounting(&e->cg), why, sizeof why) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    int64_t max = vm->memory_lock ? vm_confine_memlock_max() : -1;
    if (max >= 0 && l->memory_bytes > (uint64_t)max)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_lock needs RLIMIT_MEMLOCK of %llu MiB for this VM's QEMU, but "
                        "this host can raise it to %llu MiB only (yund lacks CAP_IPC_LOCK and "
                        "CAP_SYS_RESOURCE)",
                        (unsigned long long)(l->memory_bytes >> 20),
                        (unsigned long long)((uint64_t)max >> 20));
    return 0;
}
