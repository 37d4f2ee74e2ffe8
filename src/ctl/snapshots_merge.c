/*
 * snapshots_merge.c - deleting a snapshot: its data is merged into each of
 * its children, then its file and row go. The decisions and the row writes
 * are here; the acts are agent verbs, one at a time, so nothing slow runs
 * on the loop:
 *
 *   each child no QEMU has open      disk.rebase (qemu-img rebase, safe:
 *                                    copies what the child read through
 *                                    the snapshot), progress into the task
 *   the child in a running chain     vm.block_stream (QEMU block-stream,
 *                                    base = the snapshot's parent); its end
 *                                    is the agent event "vm.block_job"
 *   then                             vm.layer_remove of the snapshot's file
 *
 * Every step is idempotent and taken from the rows as they are, so a merge
 * cut short by a crash runs again from its rows (resumed by its task's
 * recover function or by the reconcile pass: snapshots_reconcile.c).
 *
 * FAILPOINTs: snapshot_delete.after_row (snapshots.c: the row says
 * deleting), .after_rebase (a child was rebased and its row moved),
 * .after_stream (QEMU streams into the running chain), .after_streamed /
 * .after_reparent (the running chain's child no longer sits on the
 * snapshot: on the stream's event, or found so when the merge ran again),
 * .before_remove (no child sits on it; its file and row are still there),
 * .after_file_removed (its file is gone, its row still says deleting).
 */
#include "agent/agent.h"
#include "ctl/images_fetch.h"
#include "ctl/snapshots_int.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct merge {
    struct merge *next;
    struct ctl *c;
    char vm_id[37];
    char host[37]; /* the VM's host, whose agent does the steps */
    char snap_id[37];
    char task[37];     /* "" when no task of this run owns it */
    bool busy;         /* an agent verb of this merge is in flight */
    bool rebasing;     /* that verb is a disk.rebase */
    bool streaming;    /* QEMU's block-stream job runs: waiting for its event */
    char child_id[37]; /* what the rebase moves: a snapshot, or "" for the active layer */
    char child_file[64];
};

static struct merge *merges;

bool snap_merge_rebasing(const char *vm_id)
{
    for (struct merge *m = merges; m; m = m->next)
        if (m->rebasing && !strcmp(m->vm_id, vm_id))
            return true;
    return false;
}

static struct merge *merge_find(const char *snap_id)
{
    for (struct merge *m = merges; m; m = m->next)
        if (!strcmp(m->snap_id, snap_id))
            return m;
    return NULL;
}

static struct merge *merge_new(struct ctl *c, const struct vm_rec *vm, const char *snap_id,
                               const char *task)
{
    struct merge *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->c = c;
    snprintf(m->vm_id, sizeof m->vm_id, "%s", vm->id);
    snprintf(m->host, sizeof m->host, "%s", vm->host);
    snprintf(m->snap_id, sizeof m->snap_id, "%s", snap_id);
    snprintf(m->task, sizeof m->task, "%s", task ? task : "");
    m->next = merges;
    merges = m;
    return m;
}

/* The merge is over: err NULL when the snapshot is gone. */
static void merge_end(struct merge *m, const struct yerr *err)
{
    struct merge **pp = &merges;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp)
        *pp = m->next;
    struct ctl *c = m->c;
    ctl_agents_forget(c, m);
    char task[37];
    snprintf(task, sizeof task, "%s", m->task);
    free(m);
    if (!task[0])
        tasks_recover(c->tasks); /* a task an earlier yund left on it is settled now */
    else if (err)
        task_fail(c->tasks, task, err);
    else
        task_succeed(c->tasks, task, NULL);
}

static void job_name(const char *snap_id, char out[32])
{
    snprintf(out, 32, "yun-merge-%.8s", snap_id);
}

/* The rows as they are now: 0, or -1 when the VM is gone. */
static int load(struct merge *m, struct vm_rec *vm, struct snapshot_rec **s, size_t *n)
{
    *s = NULL;
    *n = 0;
    if (store_vm_get(m->c->store, m->vm_id, vm) != 0)
        return -1;
    if (store_snapshot_list(m->c->store, m->vm_id, s, n) != 0) {
        *s = NULL;
        return -1;
    }
    return 0;
}

/* The VM, its rows and the snapshot being merged, read again after a step;
 * NULL (the merge ended) when the VM or the snapshot went away. */
static struct snapshot_rec *reload(struct merge *m, struct vm_rec *vm, struct snapshot_rec **s,
                                   size_t *n)
{
    struct snapshot_rec *snap = NULL;
    if (load(m, vm, s, n) == 0 && (snap = snaps_by_id(*s, *n, m->snap_id)))
        return snap;
    free(*s);
    *s = NULL;
    struct yerr err;
    yerr_set(&err, YE_NOT_FOUND, "the vm or the snapshot went away during the merge");
    merge_end(m, &err);
    return NULL;
}

static void merge_failed(struct ctl *c, const struct vm_rec *vm, struct snapshot_rec *snap,
                         const char *why)
{
    snaps_apply(c, snap, SNAP_EV_MERGE_FAILED);
    ctl_event(c, "vm", vm->name, "snapshot-delete", "error", "%s: %s", snap->name, why);
}

/* The file snap's children are to sit on: in *path what the verbs take
 * (a layer's bare name, or the image's absolute path), which is also what
 * a layer's header names; its format in fmt. */
static int base_of(struct ctl *c, const struct vm_rec *vm, struct snapshot_rec *s, size_t n,
                   const char *parent, char *path, size_t len, char fmt[8], struct yerr *err)
{
    if (!parent[0]) {
        struct image_rec img;
        if (store_image_get(c->store, vm->image, &img) != 0)
            return yerr_set(err, YE_INTERNAL, "vm '%s': image '%s' is missing", vm->name,
                            vm->image);
        ctl_image_on_host(c, vm->host, &img);
        snprintf(path, len, "%s", img.path);
        snprintf(fmt, 8, "%s", img.format);
        return 0;
    }
    struct snapshot_rec *p = snaps_by_id(s, n, parent);
    if (!p)
        return yerr_set(err, YE_INTERNAL, "vm '%s': snapshot %s is missing", vm->name, parent);
    snprintf(path, len, "%s", p->file);
    snprintf(fmt, 8, "qcow2");
    return 0;
}

/* The running chain's child of snap has been streamed: re-parent it. */
static void reparent_chain_child(struct ctl *c, struct vm_rec *vm, struct snapshot_rec *snap,
                                 struct snapshot_rec *s, size_t n)
{
    if (!strcmp(vm->disk_parent, snap->id)) {
        snprintf(vm->disk_parent, sizeof vm->disk_parent, "%s", snap->parent);
        snaps_vm_save(c, vm);
        return;
    }
    for (const char *id = vm->disk_parent; id[0];) {
        struct snapshot_rec *ch = snaps_by_id(s, n, id);
        if (!ch)
            break;
        if (!strcmp(ch->parent, snap->id)) {
            snprintf(ch->parent, sizeof ch->parent, "%s", snap->parent);
            store_snapshot_update(c->store, ch);
            break;
        }
        id = ch->parent;
    }
}

static void merge_step(struct merge *m);

/* ---- the end: the snapshot's file, then its row ---- */

static void on_file_removed(void *ctx, json_t *res, const struct yerr *err)
{
    struct merge *m = ctx;
    (void)res;
    m->busy = false;
    struct vm_rec vm;
    struct snapshot_rec *s, *snap;
    size_t n;
    if (err) /* the sweep takes it once the row is gone */
        log_warn("snapshot %s: cannot remove its file: %s", m->snap_id, err->message);
    FAILPOINT("snapshot_delete.after_file_removed");
    if (load(m, &vm, &s, &n) == 0 && (snap = snaps_by_id(s, n, m->snap_id))) {
        snaps_apply(m->c, snap, SNAP_EV_MERGED);
        ctl_event(m->c, "vm", vm.name, "snapshot-delete", "ok", "%s merged into its children",
                  snap->name);
    }
    free(s);
    merge_end(m, NULL);
}

static void merge_finish(struct merge *m, const struct snapshot_rec *snap)
{
    FAILPOINT("snapshot_delete.before_remove");
    m->busy = true;
    ctl_host_call(m->c, m->host, AV_VM_LAYER_REMOVE,
                  json_pack("{s:s,s:s}", "vm", m->vm_id, "file", snap->file), on_file_removed, NULL,
                  m);
}

/* ---- offline: qemu-img rebase of a child ---- */

static void on_rebase_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct merge *m = ctx;
    if (m->task[0])
        task_progress(m->c->tasks, m->task, done, total);
}

static void on_rebased(void *ctx, json_t *res, const struct yerr *rerr)
{
    struct merge *m = ctx;
    (void)res;
    m->busy = m->rebasing = false;
    struct vm_rec vm;
    struct snapshot_rec *s, *snap;
    size_t n;
    if (!(snap = reload(m, &vm, &s, &n)))
        return;
    if (rerr) {
        struct yerr err = *rerr;
        yerr_wrap(&err, "qemu-img rebase: ");
        merge_failed(m->c, &vm, snap, err.message);
        free(s);
        merge_end(m, &err);
        return;
    }
    /* the child sits on the snapshot's parent now */
    if (!m->child_id[0]) {
        if (!strcmp(vm.disk, m->child_file)) {
            snprintf(vm.disk_parent, sizeof vm.disk_parent, "%s", snap->parent);
            snaps_vm_save(m->c, &vm);
        }
    } else {
        struct snapshot_rec *ch = snaps_by_id(s, n, m->child_id);
        if (ch) {
            snprintf(ch->parent, sizeof ch->parent, "%s", snap->parent);
            store_snapshot_update(m->c->store, ch);
        }
    }
    free(s);
    FAILPOINT("snapshot_delete.after_rebase");
    merge_step(m);
}

static void start_rebase(struct merge *m, const struct vm_rec *vm, const char *child_id,
                         const char *file, const char *base, const char *fmt)
{
    char path[512];
    snaps_vm_file(m->c, vm, file, path, sizeof path);
    snprintf(m->child_id, sizeof m->child_id, "%s", child_id);
    snprintf(m->child_file, sizeof m->child_file, "%s", file);
    m->busy = m->rebasing = true;
    ctl_vm_call(m->c, vm, AV_DISK_REBASE,
                json_pack("{s:s,s:s,s:s,s:s}", "path", path, "format", "qcow2", "backing", base,
                          "backing_format", fmt),
                on_rebased, on_rebase_progress, m);
}

/* ---- live: QEMU streams into the running chain ---- */

static void on_stream(void *ctx, json_t *res, const struct yerr *serr)
{
    struct merge *m = ctx;
    m->busy = false;
    struct vm_rec vm;
    struct snapshot_rec *s, *snap;
    size_t n;
    if (!(snap = reload(m, &vm, &s, &n)))
        return;
    if (serr && serr->code == YE_UNAVAILABLE) {
        /* no QMP connection to the VM yet (a restart re-attaches it in the
         * reconcile pass): the row stays "deleting" for the next pass */
        free(s);
        merge_end(m, serr);
        return;
    }
    if (serr) {
        merge_failed(m->c, &vm, snap, serr->message);
        free(s);
        merge_end(m, serr);
        return;
    }
    if (json_is_true(json_object_get(res, "started"))) {
        FAILPOINT("snapshot_delete.after_stream");
        m->streaming = true; /* the event goes on (on_block_job) */
        free(s);
        return;
    }
    /* nothing left to stream (yund restarted while the job ran) */
    reparent_chain_child(m->c, &vm, snap, s, n);
    FAILPOINT("snapshot_delete.after_reparent");
    struct snapshot_rec copy = *snap;
    free(s);
    merge_finish(m, &copy);
}

/* The next step of the merge, from the rows as they are now. */
static void merge_step(struct merge *m)
{
    struct ctl *c = m->c;
    struct vm_rec vm;
    struct snapshot_rec *s, *snap;
    size_t n;
    struct yerr err = {0};
    if (load(m, &vm, &s, &n) < 0) {
        free(s);
        yerr_set(&err, YE_NOT_FOUND, "the vm went away during the merge");
        merge_end(m, &err);
        return;
    }
    if (!(snap = snaps_by_id(s, n, m->snap_id))) {
        free(s);
        merge_end(m, NULL); /* gone: done */
        return;
    }
    if (snap->state != SNAP_DELETING) { /* a failed stream put it back */
        yerr_set(&err, YE_QEMU_ERROR, "the merge of snapshot '%s' stopped", snap->name);
        free(s);
        merge_end(m, &err);
        return;
    }
    char base[512], fmt[8], top[64] = "";
    if (base_of(c, &vm, s, n, snap->parent, base, sizeof base, fmt, &err) < 0)
        goto failed;
    bool live = vm_state_live(vm.state);
    if (!live && !vm_state_down(vm.state)) {
        /* starting or stopping: the reconcile pass takes it up again */
        free(s);
        yerr_set(&err, YE_CONFLICT, "vm '%s' is %s: the merge goes on when it has settled", vm.name,
                 vm_state_name(vm.state));
        merge_end(m, &err);
        return;
    }
    /* which snapshots the running QEMU has open: the active layer's ancestors */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].parent, snap->id))
            continue;
        bool in_chain = false;
        for (const char *id = vm.disk_parent; live && id[0] && !in_chain;) {
            struct snapshot_rec *a = snaps_by_id(s, n, id);
            in_chain = a && !strcmp(a->id, s[i].id);
            id = a ? a->parent : "";
        }
        if (in_chain) {
            snprintf(top, sizeof top, "%s", s[i].file);
            continue;
        }
        start_rebase(m, &vm, s[i].id, s[i].file, base, fmt);
        free(s);
        return; /* on_rebased goes on */
    }
    if (!strcmp(vm.disk_parent, snap->id)) {
        if (!live) {
            start_rebase(m, &vm, "", vm.disk, base, fmt);
            free(s);
            return;
        }
        snprintf(top, sizeof top, "%s", vm.disk);
    }
    if (top[0]) {
        char job[32];
        job_name(snap->id, job);
        m->busy = true;
        ctl_vm_call(c, &vm, AV_VM_BLOCK_STREAM,
                    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "vm", vm.id, "job", job, "top", top,
                              "from", snap->file, "base", base, "backing_file", base),
                    on_stream, NULL, m);
        free(s);
        return;
    }
    struct snapshot_rec copy = *snap;
    free(s);
    merge_finish(m, &copy);
    return;
failed:
    merge_failed(c, &vm, snap, err.message);
    free(s);
    merge_end(m, &err);
}

void snap_merge_start(struct ctl *c, const struct vm_rec *vm, const struct snapshot_rec *snap,
                      const char *task)
{
    struct merge *m = merge_new(c, vm, snap->id, task);
    if (!m) {
        struct snapshot_rec copy = *snap;
        struct yerr err;
        snaps_apply(c, &copy, SNAP_EV_MERGE_FAILED);
        yerr_set(&err, YE_INTERNAL, "out of memory");
        if (task && task[0])
            task_fail(c->tasks, task, &err);
        return;
    }
    merge_step(m);
}

/* ---- resumed by the reconcile pass ---- */

static void on_jobs(void *ctx, json_t *res, const struct yerr *err)
{
    struct merge *m = ctx;
    m->busy = false;
    if (err || !m->streaming)
        return; /* the next pass asks again */
    char job[32];
    job_name(m->snap_id, job);
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(res, "jobs"), i, j)
    {
        const char *name = json_string_value(json_object_get(j, "job"));
        if (name && !strcmp(name, job)) {
            uint64_t done = (uint64_t)json_integer_value(json_object_get(j, "offset"));
            uint64_t total = (uint64_t)json_integer_value(json_object_get(j, "len"));
            if (total && m->task[0])
                task_progress(m->c->tasks, m->task, done, total);
            return;
        }
    }
    /* its QEMU went away, or its event was lost */
    m->streaming = false;
    merge_step(m);
}

void snap_merge_resume(struct ctl *c, const struct vm_rec *vm, const struct snapshot_rec *snap)
{
    struct merge *m = merge_find(snap->id);
    if (m) {
        if (m->busy || !m->streaming)
            return;
        if (!vm_state_live(vm->state)) {
            m->streaming = false;
            merge_step(m);
            return;
        }
        m->busy = true;
        ctl_vm_call(c, vm, AV_VM_BLOCK_JOBS, json_pack("{s:s}", "vm", vm->id), on_jobs, NULL, m);
        return;
    }
    if ((m = merge_new(c, vm, snap->id, "")))
        merge_step(m);
}

/* ---- the stream's end: the agent's "vm.block_job" event ---- */

static void on_block_job(struct ctl *c, json_t *ev)
{
    const char *vm_id = json_string_value(json_object_get(ev, "vm"));
    const char *dev = json_string_value(json_object_get(ev, "job"));
    const char *error = json_string_value(json_object_get(ev, "error"));
    struct vm_rec vm;
    struct snapshot_rec *s;
    size_t n;
    if (!vm_id || !dev || store_vm_get(c->store, vm_id, &vm) != 0 ||
        store_snapshot_list(c->store, vm_id, &s, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char job[32];
        job_name(s[i].id, job);
        if (strcmp(job, dev) || s[i].state != SNAP_DELETING)
            continue;
        struct merge *m = merge_find(s[i].id);
        if (error) {
            merge_failed(c, &vm, &s[i], error);
            if (m && !m->busy) {
                struct yerr err;
                yerr_set(&err, YE_QEMU_ERROR, "%s", error);
                merge_end(m, &err);
            }
        } else {
            reparent_chain_child(c, &vm, &s[i], s, n);
            FAILPOINT("snapshot_delete.after_streamed");
            if (!m)
                m = merge_new(c, &vm, s[i].id, "");
            if (m && !m->busy) {
                m->streaming = false;
                merge_step(m); /* finds nothing left on it: removes it */
            }
        }
        break;
    }
    free(s);
}

bool ctl_snapshots_host_event(struct ctl *c, const char *type, json_t *ev)
{
    if (strcmp(type, "vm.block_job"))
        return false;
    on_block_job(c, ev);
    return true;
}
