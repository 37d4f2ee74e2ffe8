/*
 * snapshots_int.h - what the controller's snapshot files share: the rows'
 * helpers and holds (snapshots_reconcile.c), the merge of a snapshot being
 * deleted (snapshots_merge.c) and the settling of a VM's rows after a crash
 * (snapshots_reconcile.c). Not for use outside src/ctl.
 */
#ifndef YUN_CTL_SNAPSHOTS_INT_H
#define YUN_CTL_SNAPSHOTS_INT_H

#include "ctl/ctl.h"
#include "ctl/snapstate.h"

#include <stdbool.h>
#include <stddef.h>

/* ---- rows (snapshots_reconcile.c) ---- */

struct snapshot_rec *snaps_by_id(struct snapshot_rec *s, size_t n, const char *id);
/* Moves a row by an event of the state machine: updates it, or deletes it
 * when the event ends it. -1 when the machine refuses or the store fails. */
int snaps_apply(struct ctl *c, struct snapshot_rec *snap, enum snap_event ev);
/* A snapshot row (by id) or a disk layer (by file name) an operation of
 * this yund works on: the reconcile pass neither settles nor sweeps it. */
void ctl_snapshot_hold(const char *snap_id_or_file, bool on);
bool ctl_snapshot_held(const char *snap_id_or_file);

/* Settles one VM's snapshot rows (creates adopted or rolled back, merges
 * resumed, stray layers swept) over agent verbs; fn (may be NULL) runs
 * once from the loop when it is over: complete is false when a verdict had
 * to wait (QEMU did not answer, a layer was locked). One settle per VM at a
 * time: a request meeting one in flight is folded into it. */
typedef void (*snaps_settled_fn)(struct ctl *c, const char *vm_id, bool complete);
void snaps_settle(struct ctl *c, const char *vm_id, snaps_settled_fn fn);
/* Has a settle of the VM's rows completed in this yund run? */
bool snaps_settled_once(const char *vm_id);
/* The path of a file in the VM's directory (-1 when it does not fit), and
 * the VM's row written (updated_at now; a failure is logged). */
int snaps_vm_file(struct ctl *c, const struct vm_rec *vm, const char *file, char *buf, size_t len);
int snaps_vm_save(struct ctl *c, struct vm_rec *vm);

/* ---- the merge (snapshots_merge.c) ---- */

/* Starts merging snap (its row already "deleting") into its children; the
 * task (id, or "" for a merge no task of this run owns) is ended with it,
 * and a merge with no task calls tasks_recover when it ends. */
void snap_merge_start(struct ctl *c, const struct vm_rec *vm, const struct snapshot_rec *snap,
                      const char *task);
/* Continues the merge of a "deleting" row the reconcile pass found, unless
 * one is in flight: then a stream still running reports its progress, and
 * one whose event was lost goes on. */
void snap_merge_resume(struct ctl *c, const struct vm_rec *vm, const struct snapshot_rec *snap);
/* Is a merge of a snapshot of this VM rebasing one of its layers now? */
bool snap_merge_rebasing(const char *vm_id);

#endif
