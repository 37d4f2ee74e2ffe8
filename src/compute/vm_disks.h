/*
 * vm_disks.h - a VM's disks beyond its boot overlay: volumes attached to it
 * (hot-plugged over QMP while it runs, on its command line when it starts)
 * and, for snapshots of its disk (the controller's: ctl/snapshots*.c), the
 * routing of block-job events and of the reconcile pass's turn.
 *
 * Both keep the usual order: intent in the store first, then QEMU or
 * qemu-img, then the final state; what a crash interrupts is finished or
 * undone by vm_disks_reconcile().
 */
#ifndef YUN_VM_DISKS_H
#define YUN_VM_DISKS_H

#include <jansson.h>
#include <stdbool.h>

#include "compute/engine.h"
#include "storage/volstate.h"

/* ---- attached volumes (vm_volumes.c) ---- */

/* Detaches a volume no QEMU holds (its VM is down or gone): 0, or -1
 * (YE_CONFLICT when a QEMU holds it: the controller unplugs it first,
 * ctl/volumes_detach.c). */
int engine_volume_detach(struct engine *e, const char *volume, struct volume_rec *out,
                         struct yerr *err);
/* Does this attached volume's VM have a QEMU that holds it open? */
bool vm_volume_in_use(struct engine *e, const struct volume_rec *v, struct vm_rec *vm);
/* The row's state and owner, written (a transition outside the volume
 * state machine is logged). */
int vm_volume_save(struct engine *e, struct volume_rec *v, enum vol_state state,
                   const char *attached_to, struct yerr *err);
/* The device is gone from vm's QEMU (how: for the event): the volume is
 * free, "detach ok" recorded. */
void vm_volume_detached(struct engine *e, const struct vm_rec *vm, struct volume_rec *v,
                        const char *how);
/* The controller has the volume's hot-plug or unplug in flight (on) or no
 * more: the reconcile pass leaves its row alone meanwhile. */
void vm_volume_hold(const char *volume_id, bool on);

/* ---- hooks for the rest of the engine ---- */

/* A QMP event of a running VM (DEVICE_DELETED, BLOCK_JOB_COMPLETED). */
void vm_disks_on_event(struct engine *e, const struct vm_rec *vm, const char *event, json_t *data);
/* The VM's QEMU is gone: hot-plug work in flight is over. */
void vm_disks_on_exit(struct engine *e, const struct vm_rec *vm);
/* The VM is being deleted: its volumes become free, its snapshots go. Only
 * for an engine without a controller (engine_vm_finish_delete: unit tests);
 * the daemon's delete settles those rows in ctl/vms_delete.c. */
void vm_disks_forget(struct engine *e, const struct vm_rec *vm);
/* Finishes or undoes interrupted attach/detach work of the VMs (asking
 * QEMU where one runs: an event may have been missed); then the
 * controller's hook settles their snapshot rows. */
void vm_disks_reconcile(struct engine *e, struct vm_rec *vms, size_t n);

/* Internal: each half's share of the hooks above. */
void vm_volumes_on_event(struct engine *e, const struct vm_rec *vm, const char *event,
                         json_t *data);
void vm_volumes_on_exit(struct engine *e, const struct vm_rec *vm);
void vm_volumes_forget(struct engine *e, const struct vm_rec *vm);
void vm_volumes_reconcile(struct engine *e);

#endif
