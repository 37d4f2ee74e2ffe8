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
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/yerr.h"
#include "store/records.h"

struct engine;
struct ctl;

/* 0 with *task (running) or -1 with err (nothing begun, or a task that
 * failed at once and is finished). */
int ctl_volume_clone_full(struct ctl *ctl, const char *src, const char *dst, struct task_rec *task,
                          struct yerr *err);
int ctl_volume_compact(struct ctl *ctl, const char *name, struct task_rec *task, struct yerr *err);
int ctl_volume_export(struct ctl *ctl, const char *name, const char *dest, const char *format,
                      struct task_rec *task, struct yerr *err);
/* 409 naming the task when one is running on the volume (or it is being
 * cloned from), for the quick operations (resize, attach, detach, delete). */
int ctl_volume_idle(struct engine *e, const char *name, struct yerr *err);
/* ---- quick operations (volumes_quick.c) ----
 * Checked at once (-1 with err, done never runs), then the row is written
 * and the disk work goes to the agent; done runs once, later, from the loop,
 * with the volume as the operation left it or the error. A volume with a
 * quick operation in flight is busy for every other operation (409). */
typedef void (*ctl_volume_fn)(void *ctx, const struct volume_rec *v, const struct yerr *err);
int ctl_volume_create(struct ctl *ctl, const char *name, uint64_t size, const char *format,
                      ctl_volume_fn done, void *ctx, struct yerr *err);
int ctl_volume_clone_linked(struct ctl *ctl, const char *src, const char *dst, ctl_volume_fn done,
                            void *ctx, struct yerr *err);
int ctl_volume_resize(struct ctl *ctl, const char *name, uint64_t size, ctl_volume_fn done,
                      void *ctx, struct yerr *err);
/* done gets the row as it was (now gone). */
int ctl_volume_delete(struct ctl *ctl, const char *name, ctl_volume_fn done, void *ctx,
                      struct yerr *err);
/* Between the controller's volume files: validates a new volume and writes
 * its intent row ("creating", owned by task when given). */
struct volume_row_spec {
    const char *id; /* NULL: a new one */
    const char *name, *format;
    uint64_t size;
    const char *task, *backing; /* may be NULL */
};
int ctl_volume_begin_row(struct engine *e, const struct volume_row_spec *r, struct volume_rec *v,
                         struct yerr *err);
/* Is a quick operation of this yund run working on the volume (by id)? */
bool ctl_volume_quick_busy(struct engine *e, const char *id);
struct pool_info;
int ctl_pool_info(struct ctl *ctl, struct pool_info *p, struct yerr *err);
int ctl_volume_get(struct ctl *ctl, const char *name, struct volume_rec *v, struct yerr *err);
int ctl_volume_list(struct ctl *ctl, struct volume_rec **out, size_t *n, struct yerr *err);

/* ---- import and detach (volumes_import.c, volumes_detach.c) ---- */
/* The file is checked first (agent disk.inspect: 400 when it is no usable
 * disk image); then a task "volume.import" copies it into the pool. done
 * runs once, from the loop: with the task (running) or the error (nothing
 * begun, or a task that failed at once). -1 with err: done never runs. */
typedef void (*ctl_task_fn)(void *ctx, const struct task_rec *task, const struct yerr *err);
int ctl_volume_import(struct ctl *ctl, const char *name, const char *file, const char *format,
                      ctl_task_fn done, void *ctx, struct yerr *err);
/* Detaches the volume from its VM. 0: detached now (*out, no QEMU held
 * it); 1: a task "volume.detach" (*task) runs until the guest released the
 * device (or the VM stopped), failing after a timeout; -1: error. */
int ctl_volume_detach(struct ctl *ctl, const char *name, struct volume_rec *out,
                      struct task_rec *task, struct yerr *err);
/* Attach (volumes_attach.c), once no task holds the volume. 0: attached
 * now (*out; the VM has no QEMU; done never runs); 1: hot-plugged through
 * the agent, done runs once, later, from the loop, with the volume or the
 * error; -1: refused (err; done never runs). */
struct ctl;
int ctl_volume_plug(struct ctl *c, const char *name, const char *vm, struct volume_rec *out,
                    ctl_volume_fn done, void *ctx, struct yerr *err);
void ctl_volumes_detach_init(struct engine *e);
/* yund stops: the detach waits go (their tasks are recovered at the next start). */
void ctl_volumes_detach_shutdown(struct engine *e);
/* Every event the engine records passes here (a detach finishing). */
void ctl_volumes_on_event(struct engine *e, const struct event_rec *ev);

/* The volume as GET /v1/volumes/{name} shows it (new reference). */
json_t *volume_to_json(struct engine *e, const struct volume_rec *v);
json_t *ctl_volume_to_json(struct ctl *ctl, const struct volume_rec *v);
/* Registers the recover functions of the volume task kinds. */
void ctl_volumes_init(struct engine *e);
/* Rows left "creating"/"deleting" by a crash (not owned by a live task)
 * are rolled back or finished; pool files no row owns are removed. */
void ctl_volumes_reconcile(struct engine *e);

#endif
