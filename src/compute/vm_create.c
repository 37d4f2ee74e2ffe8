/*
 * vm_create.c - ending a VM's QEMU processes, blocking (its waits sleep):
 * kept for a failed launch's ending of its own QEMU (agent_launch.c
 * launch_fail: quick when no QEMU lives, which is the usual case there).
 * The daemon's create, stop, delete and reconcile go through the agent's
 * verbs (agent/agent_power.c vm.end, agent_vmfiles.c vm.remove).
 */
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "compute/qmp.h"
#include "compute/qemu_proc.h"
#include "lib/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Ends a VM's QEMU: QMP quit, then SIGKILL if it lingers. Blocks up to ~5 s.
 * Returns 0 once that pid is gone (or was never ours), -1 when it may live. */
int engine_qemu_kill(struct engine *e, const struct vm_rec *vm, pid_t pid)
{
    enum pid_state ps = qemu_pid_state(pid, vm->id, vm->uid);
    if (ps == PID_GONE)
        return 0;
    if (ps == PID_UNKNOWN) {
        /* Never signal a pid we could not identify: it may be recycled. */
        log_err("vm %s: cannot tell whether pid %d is its qemu (/proc unreadable)", vm->name,
                (int)pid);
        return -1;
    }
    char qmp[512], err[256];
    if (engine_vm_path(e, vm, VMDIR_QMP, qmp, sizeof(qmp)) == 0)
        qmp_command(qmp, "quit", NULL, NULL, 2000, err, sizeof(err));
    /* the pid is checked to be this VM's QEMU each time: once it exits it
     * may be recycled by another program, which must never get the SIGKILL */
    for (int i = 0; i < 300 && qemu_pid_state(pid, vm->id, vm->uid) != PID_GONE; i++) {
        if (i == 200 && qemu_pid_state(pid, vm->id, vm->uid) == PID_LIVE)
            kill(pid, SIGKILL);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (qemu_pid_state(pid, vm->id, vm->uid) != PID_GONE) {
        log_err("qemu pid %d of vm %s does not die", (int)pid, vm->name);
        return -1;
    }
    return 0;
}

int engine_qemu_end(struct engine *e, const struct vm_rec *vm)
{
    struct qemu_scan scan;
    int rc = qemu_scan_run(e->vms_dir, &scan);
    pid_t pids[16];
    size_t n = qemu_scan_pids(&scan, vm->id, vm->uid, pids, 16);
    pid_t known = 0;
    /* the pidfile's pid too: a scan that missed it must not let it live */
    enum qemu_seen seen = qemu_seek(e->vms_dir, vm->id, vm->uid, &scan, &known);
    qemu_scan_free(&scan);
    if (n > 16)
        rc = -1;
    for (size_t i = 0; i < n && i < 16; i++)
        if (engine_qemu_kill(e, vm, pids[i]) < 0)
            rc = -1;
    if (seen == QEMU_UP && engine_qemu_kill(e, vm, known) < 0)
        rc = -1;
    if (seen == QEMU_UNSURE)
        rc = -1;
    return rc;
}
