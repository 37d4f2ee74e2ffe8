/*
 * agent_prexec.c - vm.launch's step in QEMU's own process before exec
 * (agent_prexec.h). Only async-signal-safe calls: it runs after a fork.
 */
#include "agent/agent_prexec.h"
#include "compute/cgroup.h"
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
