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
#include "storage/volstate.h"
#include "store/records.h"

struct ctl;

/* 0 with *task (running) or -1 with err (nothing begun, or a task that
 * failed at once and is finished). */
int ctl_volume_clone_full(struct ctl *c, const char *src, const char *dst, struct task_rec *task,
                          struct yerr *err);
int ctl_volume_compact(struct ctl *c, const char *name, struct task_rec *task, struct yerr *err);
int ctl_volume_export(struct ctl *c, const char *name, const char *dest, const char *format,
                      struct task_rec *task, struct yerr *err);
/* 409 naming the task when one is running on the volume (or it is being
 * cloned from), for the quick operations (resize, attach, detach, delete). */
int ctl_volume_idle(struct ctl *c, const char *name, struct yerr *err);
/* ---- quick operations (volumes_quick.c) ----
 * Checked at once (-1 with err, done never runs), then the row is written
 * and the disk work goes to the agent; done runs once, later, from the loop,
 * with the volume as the operation left it or the error. A volume with a
 * quick operation in flight is busy for every other operation (409). */
typedef void (*ctl_volume_fn)(void *ctx, const struct volume_rec *v, const struct yerr *err);
int ctl_volume_create(struct ctl *c, const char *name, uint64_t size, const char *format,
                      const char *host, ctl_volume_fn done, void *ctx, struct yerr *err);
int ctl_volume_clone_linked(struct ctl *c, const char *src, const char *dst, ctl_volume_fn done,
                            void *ctx, struct yerr *err);
int ctl_volume_resize(struct ctl *c, const char *name, uint64_t size, ctl_volume_fn done, void *ctx,
                      struct yerr *err);
/* done gets the row as it was (now gone). */
int ctl_volume_delete(struct ctl *c, const char *name, ctl_volume_fn done, void *ctx,
                      struct yerr *err);
/* Between the controller's volume files: validates a new volume and writes
 * its intent row ("creating", owned by task when given). */
struct volume_row_spec {
    const char *id; /* NULL: a new one */
    const char *name, *format;
    uint64_t size;
    const char *task, *backing; /* may be NULL */
    const char *host;           /* the host it is made on; NULL: the local host (a controller:
                                   the first host up, ctl_disk_agent) */
};
/* The default pool's directory on host (its own state directory's). */
int ctl_host_pool_dir(struct ctl *c, const char *host, char *buf, size_t len, struct yerr *err);
int ctl_volume_begin_row(struct ctl *c, const struct volume_row_spec *r, struct volume_rec *v,
                         struct yerr *err);
/* Is a quick operation of this yund run working on the volume (by id)? */
bool ctl_volume_quick_busy(struct ctl *c, const char *id);
struct pool_info;
int ctl_pool_info(struct ctl *c, struct pool_info *p, struct yerr *err);
/* A volume by name or id; 404 when there is none. */
int ctl_volume_get(struct ctl *c, const char *name, struct volume_rec *v, struct yerr *err);
/* 409 when linked clones are backed by v (it must not change or go),
 * saying the consequence; 0 when none are. */
int ctl_volume_refuse_backing(struct ctl *c, const struct volume_rec *v, const char *consequence,
                              struct yerr *err);
int ctl_volume_list(struct ctl *c, struct volume_rec **out, size_t *n, struct yerr *err);

/* ---- import and detach (volumes_import.c, volumes_detach.c) ---- */
/* The file is checked first (agent disk.inspect: 400 when it is no usable
 * disk image); then a task "volume.import" copies it into the pool. done
 * runs once, from the loop: with the task (running) or the error (nothing
 * begun, or a task that failed at once). -1 with err: done never runs. */
typedef void (*ctl_task_fn)(void *ctx, const struct task_rec *task, const struct yerr *err);
int ctl_volume_import(struct ctl *c, const char *name, const char *file, const char *format,
                      ctl_task_fn done, void *ctx, struct yerr *err);
/* Detaches the volume from its VM. 0: detached now (*out, no QEMU held
 * it); 1: a task "volume.detach" (*task) runs until the guest released the
 * device (or the VM stopped), failing after a timeout; -1: error. */
int ctl_volume_detach(struct ctl *c, const char *name, struct volume_rec *out,
                      struct task_rec *task, struct yerr *err);
/* Attach (volumes_attach.c), once no task holds the volume. 0: attached
 * now (*out; the VM has no QEMU; done never runs); 1: hot-plugged through
 * the agent, done runs once, later, from the loop, with the volume or the
 * error; -1: refused (err; done never runs). */
int ctl_volume_plug(struct ctl *c, const char *name, const char *vm, struct volume_rec *out,
                    ctl_volume_fn done, void *ctx, struct yerr *err);
void ctl_volumes_detach_init(struct ctl *c);
/* yund stops: the detach waits go (their tasks are recovered at the next start). */
void ctl_volumes_detach_shutdown(struct ctl *c);
/* Every volume event recorded passes here (a detach finishing). */
void ctl_volumes_on_event(struct ctl *c, const struct event_rec *ev);

/* The volume as GET /v1/volumes/{name} shows it (new reference). */
json_t *ctl_volume_to_json(struct ctl *c, const struct volume_rec *v);
/* Registers the recover functions of the volume task kinds. */
void ctl_volumes_init(struct ctl *c);
/* Rows left "creating"/"deleting" by a crash (not owned by a live task)
 * are rolled back or finished; pool files no row owns are removed. */
void ctl_volumes_reconcile(struct ctl *c);

/* ---- attached volumes' rows (volumes_settle.c) ---- */
/* The row's state and owner, written (a transition outside the volume
 * state machine is logged). */
int ctl_volume_save(struct ctl *c, struct volume_rec *v, enum vol_state state,
                    const char *attached_to, struct yerr *err);
/* Does this attached volume's VM have a QEMU that holds it open? */
bool ctl_volume_in_use(struct ctl *c, const struct volume_rec *v, struct vm_rec *vm);
/* The controller has the volume's hot-plug or unplug in flight (on) or no
 * more: the reconcile pass leaves its row alone meanwhile. */
void ctl_volume_hold(const char *volume_id, bool on);
/* The device is gone from vm's QEMU (how: for the event): the volume is
 * free, "detach ok" recorded. */
void ctl_volume_detached(struct ctl *c, const struct vm_rec *vm, struct volume_rec *v,
                         const char *how);
/* Detaches a volume no QEMU holds (its VM is down or gone): 0, or -1
 * (YE_CONFLICT when a QEMU holds it: its device goes first). */
int ctl_volume_detach_idle(struct ctl *c, const char *volume, struct volume_rec *out,
                           struct yerr *err);
/* What the host reports, settled in the rows: a QMP event of a running VM
 * (DEVICE_DELETED frees the volume whose device it names), the VM's QEMU
 * gone (hot-plug work in flight is over), the VM deleted (its volumes
 * free, its snapshot rows gone), and the reconcile pass's turn (attaching
 * and detaching rows finished or undone, asking the agent what QEMU has:
 * vm.devices). */
void ctl_volumes_qmp_event(struct ctl *c, const struct vm_rec *vm, const char *event, json_t *data);
void ctl_volumes_vm_exited(struct ctl *c, const struct vm_rec *vm);
void ctl_volumes_vm_deleted(struct ctl *c, const struct vm_rec *vm);
void ctl_volumes_settle(struct ctl *c);
/* yund stops: questions to the agent in flight are dropped. */
void ctl_volumes_settle_shutdown(struct ctl *c);

#endif
