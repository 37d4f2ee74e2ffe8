/*
 * vm_disks.c - the engine's hooks into a VM's extra disks: QMP events,
 * QEMU exits, VM deletion and the reconcile pass, each handed to the
 * attached-volume half (vm_volumes.c) or, for snapshots, to the hooks the
 * agent (block-job events: agent_merge.c) and the controller (the
 * snapshot rows: ctl/snapshots_reconcile.c) set on the engine.
 */
#include "compute/vm_disks.h"

#include <stdlib.h>
#include <string.h>

void vm_disks_on_event(struct engine *e, const struct vm_rec *vm, const char *event, json_t *data)
{
    if (!strcmp(event, "DEVICE_DELETED"))
        vm_volumes_on_event(e, vm, event, data);
    else if (!strcmp(event, "BLOCK_JOB_COMPLETED") || !strcmp(event, "BLOCK_JOB_CANCELLED")) {
        if (e->on_block_job)
            e->on_block_job(e->on_block_job_ctx, vm->id, event, data);
    }
}

void vm_disks_on_exit(struct engine *e, const struct vm_rec *vm)
{
    vm_volumes_on_exit(e, vm);
}

void vm_disks_forget(struct engine *e, const struct vm_rec *vm)
{
    vm_volumes_forget(e, vm);
    /* its snapshot rows go (their files go with the VM's directory) */
    struct snapshot_rec *s;
    size_t n;
    if (store_snapshot_list(e->store, vm->id, &s, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        store_snapshot_delete(e->store, s[i].id);
    free(s);
}

void vm_disks_reconcile(struct engine *e, struct vm_rec *vms, size_t n)
{
    vm_volumes_reconcile(e);
    if (e->reconcile_snapshots)
        e->reconcile_snapshots(e->reconcile_snapshots_ctx, vms, n);
}
