/*
 * vm_disks.h - TRANSITIONAL: where the engine hands a VM's disk events
 * (volumes attached to it, snapshots of its disk) to their owners: the
 * controller's rows (ctl/volumes_settle.c, ctl/snapshots_reconcile.c),
 * through hooks on the engine.
 */
#ifndef YUN_VM_DISKS_H
#define YUN_VM_DISKS_H

#include <jansson.h>
#include <stddef.h>

#include "compute/engine.h"

/* The VM is being deleted (engine_vm_finish_delete): its volumes become
 * free, its snapshot rows go. */
void vm_disks_forget(struct engine *e, const struct vm_rec *vm);
/* The reconcile pass's turn: interrupted attach/detach work finished or
 * undone, then the VMs' snapshot rows settled. */
void vm_disks_reconcile(struct engine *e, struct vm_rec *vms, size_t n);

#endif
