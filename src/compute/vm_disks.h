/*
 * vm_disks.h - TRANSITIONAL: where the engine hands a VM's disk events
 * (volumes attached to it, snapshots of its disk) to their owners: the
 * controller's rows (ctl/volumes_settle.c, ctl/snapshots_reconcile.c) and
 * the agent's block-job hook (agent_merge.c), through hooks on the engine.
 */
#ifndef YUN_VM_DISKS_H
#define YUN_VM_DISKS_H

#include <jansson.h>
#include <stddef.h>

#include "compute/engine.h"

/* A QMP event of a running VM (DEVICE_DELETED, BLOCK_JOB_COMPLETED). */
void vm_disks_on_event(struct engine *e, const struct vm_rec *vm, const char *event, json_t *data);
/* The VM's QEMU is gone: hot-plug work in flight is over. */
void vm_disks_on_exit(struct engine *e, const struct vm_rec *vm);
/* The VM is being deleted (engine_vm_finish_delete): its volumes become
 * free, its snapshot rows go. */
void vm_disks_forget(struct engine *e, const struct vm_rec *vm);
/* The reconcile pass's turn: interrupted attach/detach work finished or
 * undone, then the VMs' snapshot rows settled. */
void vm_disks_reconcile(struct engine *e, struct vm_rec *vms, size_t n);

#endif
