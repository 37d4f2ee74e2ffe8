/*
 * volumes.h - the controller's long volume operations, each a task: a full
 * clone, a compact and an export. The row is written (owned by the task)
 * before the disk work, which goes to the agent (disk.copy) and reports
 * progress into the task; success makes the row ready and the task's result
 * the volume; failure or cancel rolls everything back. Also: the volume
 * reconcile (rows left mid-operation, orphan pool files), which never
 * touches a row or file a running task owns.
 */
#ifndef YUN_CTL_VOLUMES_H
#define YUN_CTL_VOLUMES_H

#include <jansson.h>

#include "lib/yerr.h"
#include "store/records.h"

struct engine;

/* 0 with *task (running) or -1 with err (nothing begun, or a task that
 * failed at once and is finished). */
int ctl_volume_clone_full(struct engine *e, const char *src, const char *dst, struct task_rec *task,
                          struct yerr *err);
int ctl_volume_compact(struct engine *e, const char *name, struct task_rec *task, struct yerr *err);
int ctl_volume_export(struct engine *e, const char *name, const char *dest, const char *format,
                      struct task_rec *task, struct yerr *err);
/* 409 naming the task when one is running on the volume (or it is being
 * cloned from), for the quick operations (resize, attach, detach, delete). */
int ctl_volume_idle(struct engine *e, const char *name, struct yerr *err);
/* The volume as GET /v1/volumes/{name} shows it (new reference). */
json_t *volume_to_json(struct engine *e, const struct volume_rec *v);
/* Registers the recover functions of the volume task kinds. */
void ctl_volumes_init(struct engine *e);
/* Rows left "creating"/"deleting" by a crash (not owned by a live task)
 * are rolled back or finished; pool files no row owns are removed. */
void ctl_volumes_reconcile(struct engine *e);

#endif
