/*
 * vm_disks.c - the engine's hooks into a VM's extra disks: QMP events,
 * QEMU exits, VM deletion and the reconcile pass, each handed to the
 * attached-volume half (vm_volumes.c) and the snapshot half
 * (vm_snapshots.c).
 */
#include "compute/vm_disks.h"

#include <string.h>

void vm_disks_on_event(struct engine *e, const struct vm_rec *vm, const char *event, json_t *data)
{
    if (!strcmp(event, "DEVICE_DELETED"))
        vm_volumes_on_event(e, vm, event, data);
    else if (!strcmp(event, "BLOCK_JOB_COMPLETED") || !strcmp(event, "BLOCK_JOB_CANCELLED"))
        vm_snapshots_on_event(e, vm, event, data);
}

void vm_disks_on_exit(struct engine *e, const struct vm_rec *vm)
{
    vm_volumes_on_exit(e, vm);
}

void vm_disks_forget(struct engine *e, const struct vm_rec *vm)
{
    vm_volumes_forget(e, vm);
    vm_snapshots_forget(e, vm);
}

void vm_disks_reconcile(struct engine *e, struct vm_rec *vms, size_t n)
{
    vm_volumes_reconcile(e);
    for (size_t i = 0; i < n; i++)
        vm_snapshots_reconcile(e, &vms[i]);
}
