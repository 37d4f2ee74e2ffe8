/*
 * vm_disks.h - a VM's disks beyond its boot overlay: volumes attached to it
 * (hot-plugged over QMP while it runs, on its command line when it starts)
 * and snapshots of its disk (external qcow2 overlays, merged on delete).
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

/* ---- attached volumes (vm_volumes.c) ---- */

int engine_volume_attach(struct engine *e, const char *volume, const char *vm,
                         struct volume_rec *out, struct yerr *err);
/* 0: detached; 1: detaching (the guest was asked to release the device;
 * the volume is free once QEMU reports DEVICE_DELETED); -1: error. */
int engine_volume_detach(struct engine *e, const char *volume, struct volume_rec *out,
                         struct yerr *err);
/* Does this attached volume's VM have a QEMU that holds it open? */
bool vm_volume_in_use(struct engine *e, const struct volume_rec *v, struct vm_rec *vm);
/* Grows an attached volume under a running QEMU (block_resize). */
int vm_volume_resize_live(struct engine *e, const struct vm_rec *vm, const struct volume_rec *v,
                          uint64_t size, struct yerr *err);

/* ---- snapshots (vm_snapshots.c, vm_snapshot_merge.c) ---- */

/* The controller's hooks into a snapshot operation (ctl/snapshots.c keeps
 * its task with them; tag is the task's id, kept by the merge). begin runs
 * after validation, right before the first durable write: non-zero (err
 * set) refuses the operation with nothing changed. done (delete only) runs
 * once when the merge is over (err NULL when the snapshot is gone), from
 * the loop or before engine_snapshot_delete returns. process names a
 * helper process (qemu-img rebase) the merge runs; progress is its
 * progress. Any may be NULL. */
typedef int (*snap_begin_fn)(void *ctx, const struct vm_rec *vm, const struct snapshot_rec *snap,
                             struct yerr *err);
typedef void (*snap_done_fn)(void *ctx, const char *tag, const struct yerr *err);
typedef void (*snap_process_fn)(void *ctx, const char *tag, pid_t pid);
typedef void (*snap_progress_fn)(void *ctx, const char *tag, uint64_t done, uint64_t total);
struct snap_hooks {
    snap_begin_fn begin;
    snap_done_fn done;
    snap_process_fn process;
    snap_progress_fn progress;
    void *ctx;
    char tag[37];
};

/* Marks the snapshot deleting and starts merging it into its children
 * (qemu-img rebase as a child process, a QMP block-stream job for the child
 * a running QEMU has open). 0: started, h->done runs later; -1: refused,
 * nothing changed. */
int engine_snapshot_delete(struct engine *e, const char *vm, const char *name,
                           const struct snap_hooks *h, struct snapshot_rec *out, struct yerr *err);
/* The hooks of merges the reconcile pass resumes (a restart found a
 * snapshot "deleting"): their done tells the controller (tag ""). */
void engine_snapshot_resume_hooks(struct engine *e, const struct snap_hooks *h);
int engine_snapshot_find(struct engine *e, const struct vm_rec *vm, const char *name,
                         struct snapshot_rec *out, struct yerr *err);
/* A snapshot row (by id) or a disk layer (by file name) the controller is
 * working on (held): the reconcile pass leaves it alone until it is let go. */
void engine_snapshot_hold(const char *snap_id_or_file, bool held);
/* Settles one VM's snapshot rows now (the reconcile pass's work for it). */
void vm_snapshots_settle(struct engine *e, const char *vm_id);

/* ---- hooks for the rest of the engine ---- */

/* A QMP event of a running VM (DEVICE_DELETED, BLOCK_JOB_COMPLETED). */
void vm_disks_on_event(struct engine *e, const struct vm_rec *vm, const char *event, json_t *data);
/* The VM's QEMU is gone: hot-plug work in flight is over. */
void vm_disks_on_exit(struct engine *e, const struct vm_rec *vm);
/* The VM is being deleted: its volumes become free, its snapshots go. */
void vm_disks_forget(struct engine *e, const struct vm_rec *vm);
/* Finishes or undoes interrupted attach/detach/snapshot work of the VMs
 * (asking QEMU where one runs: an event may have been missed) and removes
 * disk layers no record owns. */
void vm_disks_reconcile(struct engine *e, struct vm_rec *vms, size_t n);

/* Internal: each half's share of the hooks above. */
void vm_volumes_on_event(struct engine *e, const struct vm_rec *vm, const char *event,
                         json_t *data);
void vm_volumes_on_exit(struct engine *e, const struct vm_rec *vm);
void vm_volumes_forget(struct engine *e, const struct vm_rec *vm);
void vm_volumes_reconcile(struct engine *e);
void vm_snapshots_on_event(struct engine *e, const struct vm_rec *vm, const char *event,
                           json_t *data);
void vm_snapshots_forget(struct engine *e, const struct vm_rec *vm);
void vm_snapshots_reconcile(struct engine *e, struct vm_rec *vm);

#endif
