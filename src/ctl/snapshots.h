/*
 * snapshots.h - the controller's side of a VM's disk snapshots: each
 * operation is a task on the VM (one operation per VM at a time; a request
 * that meets another task on it gets a conflict naming that task), and a
 * task left by a killed yund is settled at start-up as the reconcile pass
 * settles its rows.
 *
 *   snapshot.create  answered 201 when done (the handler waits for it)
 *   snapshot.revert  answered 200 when done
 *   snapshot.delete  answered 202 with the task: the merge runs on
 *
 * The side effects are agent verbs (agent_snap.c, agent_merge.c,
 * agent_disk.c); the rows, the decisions, the merge and the settling of
 * rows after a crash are here (snapshots*.c).
 */
#ifndef YUN_CTL_SNAPSHOTS_H
#define YUN_CTL_SNAPSHOTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/yerr.h"
#include "store/records.h"

struct ctl;

/* Registers the recover functions of the three kinds (before
 * tasks_recover). */
void ctl_snapshots_init(struct ctl *c);
/* A host's event about snapshots ("vm.block_job": a merge's stream ended);
 * false for another type. */
bool ctl_snapshots_host_event(struct ctl *c, const char *type, json_t *ev);
/* The reconcile pass's turn: the VMs' snapshot rows settled (creates
 * adopted or rolled back, merges resumed, stray layers swept) over agent
 * verbs. */
struct vm_rec;
void ctl_snapshots_settle_all(struct ctl *c, const struct vm_rec *vms, size_t n);

/* Begins taking snapshot name of vm (snapshots_create.c): 0 and the task
 * (which the handler waits on), or -1 when refused with nothing changed. */
int ctl_snapshot_create_start(struct ctl *c, const char *vm, const char *name, char task_id[37],
                              struct yerr *err);
/* Begins reverting vm's disk to snapshot name (vm stopped): 0 and the
 * task, or -1 refused. */
int ctl_snapshot_revert_start(struct ctl *c, const char *vm, const char *name, char task_id[37],
                              struct yerr *err);
/* Begins the delete: *task (the caller clears it with task_rec_clear) is
 * the task as it is now, running or already finished. */
int ctl_snapshot_delete(struct ctl *c, const char *vm, const char *name, struct task_rec *task,
                        struct yerr *err);

/* The API's view: {"snapshots": [...]} of a VM, or one snapshot (by name
 * or id; took_ms >= 0 adds how long taking it took). NULL and err. */
json_t *ctl_snapshot_list(struct ctl *c, const char *vm, struct yerr *err);
json_t *ctl_snapshot_show(struct ctl *c, const char *vm, const char *name, int64_t took_ms,
                          struct yerr *err);

#endif
