/*
 * vm_disks.c - TRANSITIONAL: the engine's hand-off of a VM's disk events
 * (QMP events, QEMU exits, VM deletion, the reconcile pass). The rows are
 * the controller's (ctl/volumes_settle.c, ctl/snapshots_reconcile.c),
 * reached through the hooks it sets on the engine; BLOCK_JOB_ events go to
 * the agent's hook (agent_merge.c). Goes when these reach the controller
 * as agent events ("vm.qmp_event", "vm.exited") and its own reconcile.
 */
#include "compute/vm_disks.h"

#include <string.h>

void vm_disks_on_event(struct engine *e, const struct vm_rec *vm, const char *event, json_t *data)
{
    if (!strcmp(event, "DEVICE_DELETED")) {
        if (e->disks_qmp_event)
            e->disks_qmp_event(e->disks_ctx, vm, event, data);
    } else if (!strcmp(event, "BLOCK_JOB_COMPLETED") || !strcmp(event, "BLOCK_JOB_CANCELLED")) {
        if (e->on_block_job)
            e->on_block_job(e->on_block_job_ctx, vm->id, event, data);
    }
}

void vm_disks_on_exit(struct engine *e, const struct vm_rec *vm)
{
    if (e->disks_vm_exited)
        e->disks_vm_exited(e->disks_ctx, vm);
}

void vm_disks_forget(struct engine *e, const struct vm_rec *vm)
{
    if (e->disks_vm_deleted)
        e->disks_vm_deleted(e->disks_ctx, vm);
}

void vm_disks_reconcile(struct engine *e, struct vm_rec *vms, size_t n)
{
    if (e->disks_settle)
        e->disks_settle(e->disks_ctx);
    if (e->reconcile_snapshots)
        e->reconcile_snapshots(e->reconcile_snapshots_ctx, vms, n);
}
