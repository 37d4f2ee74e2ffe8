/*
 * vm_disks.c - TRANSITIONAL: the engine's hand-off of a VM's disk events
 * (VM deletion, the reconcile pass). The rows are the controller's
 * (ctl/volumes_settle.c, ctl/snapshots_reconcile.c), reached through the
 * hooks it sets on the engine. Goes when reconcile is the controller's.
 */
#include "compute/vm_disks.h"

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
