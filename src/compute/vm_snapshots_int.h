/*
 * vm_snapshots_int.h - what the two halves of the snapshot work share:
 * taking and reverting (vm_snapshots.c) and merging on delete
 * (vm_snapshot_merge.c). Not for use outside src/compute.
 */
#ifndef YUN_VM_SNAPSHOTS_INT_H
#define YUN_VM_SNAPSHOTS_INT_H

#include "compute/engine.h"

#include <stddef.h>

int snaps_list(struct engine *e, const struct vm_rec *vm, struct snapshot_rec **out, size_t *n,
               struct yerr *err);
struct snapshot_rec *snaps_by_id(struct snapshot_rec *s, size_t n, const char *id);
/* The file a snapshot's file (or the active layer) sits on: its path, in
 * name (when given) what a layer's header calls it, and its format. */
int snaps_base_of(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *s, size_t n,
                  const char *parent, char *path, size_t len, char *name, size_t nlen, char fmt[8],
                  struct yerr *err);
/* The path of the file a block node is, from QEMU's name for it. */
void snaps_node_path(struct engine *e, const struct vm_rec *vm, const char *name, char *out,
                     size_t len);
/* Moves a snapshot row by an event of the state machine (ctl/snapstate.h):
 * updates the row, or deletes it when the event ends it. -1 when the
 * machine refuses the event or the store fails. */
int snaps_apply(struct engine *e, struct snapshot_rec *snap, int ev);

/* The merge of a snapshot being deleted (vm_snapshot_merge.c). */
void snap_merge_on_event(struct engine *e, const struct vm_rec *vm, const char *event,
                         json_t *data);
/* Continues the merge of a "deleting" row found by the reconcile pass,
 * unless one is already in flight. */
void snap_merge_resume(struct engine *e, const struct vm_rec *vm, const struct snapshot_rec *snap);
/* The VM is being deleted: its merges end (their rebases killed). */
void snap_merge_forget_vm(const char *vm_id);
/* Is a merge of snapshot id in flight in this yund? */
int snap_merge_active(const char *snap_id);
/* true while a qemu-img rebase of a merge runs on one of the VM's layers */
bool snap_merge_rebasing(const char *vm_id);

#endif
