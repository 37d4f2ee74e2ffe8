/*
 * snapshots.c - snapshot operations as tasks on their VM (snapshots.h).
 *
 * Each operation: the VM must exist and hold no unfinished task (409
 * naming it); the engine validates; right before its first durable write
 * it calls back here and the task is begun, with the snapshot's id (and a
 * revert's new layer) in its params for recovery; the task ends with the
 * operation. A task found unfinished at start-up (its yund was killed) is
 * handed to recover_*: they settle the VM's snapshot rows now, exactly as
 * the reconcile pass does (vm_snapshots_settle: a create is finished or
 * rolled back, a revert's stray layer removed, a merge resumed), and say
 * whether the operation happened.
 */
#include "ctl/snapshots.h"
#include "compute/vm_disks.h"
#include "ctl/tasks.h"
#include "lib/job.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct begin_ctx {
    struct engine *e;
    const char *kind;
    const char *layer; /* revert: the new active layer */
    struct task_rec task;
    bool begun;
};

static int begin_task(void *ctx, const struct vm_rec *vm, const struct snapshot_rec *snap,
                      struct yerr *err)
{
    struct begin_ctx *b = ctx;
    if (task_begin(b->e->tasks, b->kind, "vm", vm->id, vm->name, &b->task, err) < 0)
        return -1;
    b->begun = true;
    json_t *p = json_pack("{s:s,s:s}", "snapshot", snap->id, "name", snap->name);
    if (b->layer)
        json_object_set_new(p, "layer", json_string(b->layer));
    if (p && task_set_params(b->e->tasks, b->task.id, p) < 0)
        log_warn("task %s: cannot record its params", b->task.id);
    json_decref(p);
    return 0;
}

/* The VM, and no unfinished task on it. */
static int vm_free(struct engine *e, const char *name, struct vm_rec *vm, struct yerr *err)
{
    if (engine_vm_get(e, name, vm, err) < 0)
        return -1;
    struct task_rec busy;
    if (task_busy(e->tasks, vm->id, &busy))
        return task_conflict(err, &busy);
    return 0;
}

static json_t *snap_result(const char *vm, const struct snapshot_rec *s)
{
    return json_pack("{s:s,s:s,s:s}", "id", s->id, "name", s->name, "vm", vm);
}

int ctl_snapshot_create(struct engine *e, const char *vmname, const char *name,
                        struct snapshot_rec *out, struct yerr *err)
{
    struct vm_rec vm;
    if (vm_free(e, vmname, &vm, err) < 0)
        return -1;
    struct begin_ctx b = {.e = e, .kind = "snapshot.create"};
    struct snap_hooks h = {.begin = begin_task, .ctx = &b};
    int rc = engine_snapshot_create(e, vm.name, name, &h, out, err);
    if (b.begun) {
        if (rc == 0)
            task_succeed(e->tasks, b.task.id, snap_result(vm.name, out));
        else
            task_fail(e->tasks, b.task.id, err);
    }
    return rc;
}

int ctl_snapshot_revert(struct engine *e, const char *vmname, const char *name,
                        struct snapshot_rec *out, struct yerr *err)
{
    struct vm_rec vm;
    if (vm_free(e, vmname, &vm, err) < 0)
        return -1;
    char layer[64] = "";
    struct begin_ctx b = {.e = e, .kind = "snapshot.revert", .layer = layer};
    struct snap_hooks h = {.begin = begin_task, .ctx = &b};
    int rc = engine_snapshot_revert(e, vm.name, name, &h, out, layer, err);
    if (b.begun) {
        if (rc == 0)
            task_succeed(e->tasks, b.task.id, snap_result(vm.name, out));
        else
            task_fail(e->tasks, b.task.id, err);
    }
    return rc;
}

/* ---- delete: the merge reports here ---- */

static void merge_done(void *ctx, const char *tag, const struct yerr *err)
{
    struct engine *e = ctx;
    if (!tag[0]) {
        /* a merge the reconcile pass resumed: the task an earlier yund
         * left on it can be settled now */
        tasks_recover(e->tasks);
        return;
    }
    if (err)
        task_fail(e->tasks, tag, err);
    else
        task_succeed(e->tasks, tag, NULL);
}

static void merge_process(void *ctx, const char *tag, pid_t pid)
{
    struct engine *e = ctx;
    uint64_t st = 0;
    if (tag[0] && job_proc_start_time(pid, &st) == 0)
        task_set_process(e->tasks, tag, pid, st);
}

static void merge_progress(void *ctx, const char *tag, uint64_t done, uint64_t total)
{
    struct engine *e = ctx;
    if (tag[0])
        task_progress(e->tasks, tag, done, total);
}

struct delete_begin {
    struct begin_ctx b;
    struct snap_hooks *h;
};

static int begin_delete(void *ctx, const struct vm_rec *vm, const struct snapshot_rec *snap,
                        struct yerr *err)
{
    struct delete_begin *d = ctx;
    if (begin_task(&d->b, vm, snap, err) < 0)
        return -1;
    /* from here on the merge's callbacks name the task */
    snprintf(d->h->tag, sizeof d->h->tag, "%s", d->b.task.id);
    d->h->ctx = d->b.e;
    return 0;
}

int ctl_snapshot_delete(struct engine *e, const char *vmname, const char *name,
                        struct task_rec *task, struct yerr *err)
{
    struct vm_rec vm;
    if (vm_free(e, vmname, &vm, err) < 0)
        return -1;
    struct snap_hooks h = {.begin = begin_delete,
                           .done = merge_done,
                           .process = merge_process,
                           .progress = merge_progress};
    struct delete_begin d = {.b = {.e = e, .kind = "snapshot.delete"}, .h = &h};
    h.ctx = &d; /* begin_delete sets it to e for the merge's callbacks */
    if (engine_snapshot_delete(e, vm.name, name, &h, NULL, err) < 0) {
        if (d.b.begun)
            task_fail(e->tasks, d.b.task.id, err);
        return -1;
    }
    if (tasks_get(e->tasks, d.b.task.id, task, err) != 0)
        return err->code ? -1 : yerr_set(err, YE_INTERNAL, "task %s vanished", d.b.task.id);
    return 0;
}

/* ---- recovery ---- */

/* The snapshot a task's params name: 1 and *out when its row is there. */
static int task_snapshot(struct engine *e, const struct task_rec *k, struct snapshot_rec *out,
                         char *layer, size_t llen)
{
    json_t *p = k->params ? json_loads(k->params, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(p, "snapshot"));
    const char *l = json_string_value(json_object_get(p, "layer"));
    if (layer)
        snprintf(layer, llen, "%s", l ? l : "");
    int found = 0;
    struct snapshot_rec *s;
    size_t n;
    if (id && store_snapshot_list(e->store, k->object_id, &s, &n) == 0) {
        for (size_t i = 0; i < n && !found; i++)
            if (!strcmp(s[i].id, id)) {
                *out = s[i];
                found = 1;
            }
        free(s);
    }
    json_decref(p);
    return found;
}

static int recover_create(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct engine *e = ctx;
    (void)err;
    vm_snapshots_settle(e, k->object_id);
    struct snapshot_rec s;
    if (task_snapshot(e, k, &s, NULL, 0) && s.state == SNAP_READY) {
        free(k->result);
        json_t *r = json_pack("{s:s,s:s,s:s}", "id", s.id, "name", s.name, "vm", k->object_name);
        k->result = json_dumps(r, JSON_COMPACT);
        json_decref(r);
        k->state = TASK_SUCCEEDED; /* the switch had happened: finished */
    }
    return 0; /* else rolled back (or left "creating" to the reconcile pass) */
}

static int recover_revert(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct engine *e = ctx;
    (void)err;
    vm_snapshots_settle(e, k->object_id);
    struct snapshot_rec s;
    char layer[64];
    struct vm_rec vm;
    task_snapshot(e, k, &s, layer, sizeof layer);
    if (layer[0] && store_vm_get(e->store, k->object_id, &vm) == 0 && !strcmp(vm.disk, layer))
        k->state = TASK_SUCCEEDED; /* the VM row had moved to the new layer */
    return 0;
}

static int recover_delete(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct engine *e = ctx;
    vm_snapshots_settle(e, k->object_id); /* resumes the merge */
    struct snapshot_rec s;
    if (!task_snapshot(e, k, &s, NULL, 0)) {
        k->state = TASK_SUCCEEDED;
        return 0;
    }
    if (s.state == SNAP_DELETING) /* merging on: settled when it ends */
        return yerr_set(err, YE_UNAVAILABLE, "the merge of snapshot '%s' is still running", s.name);
    return 0; /* the merge failed: the snapshot stays */
}

void ctl_snapshots_init(struct engine *e)
{
    tasks_register_kind(e->tasks, "snapshot.create", recover_create, e);
    tasks_register_kind(e->tasks, "snapshot.revert", recover_revert, e);
    tasks_register_kind(e->tasks, "snapshot.delete", recover_delete, e);
    struct snap_hooks h = {.done = merge_done, .ctx = e};
    engine_snapshot_resume_hooks(e, &h);
}
