/*
 * vm_snapshot_merge.c - deleting a snapshot: its data is merged into each
 * of its children, then its file goes.
 *
 * A merge is a small state machine on the loop, one step at a time, so
 * nothing slow runs on it: each child no QEMU has open is rebased onto the
 * snapshot's parent by `qemu-img rebase` (safe mode: it copies into the
 * child whatever the child read through the snapshot) as a child process
 * (lib/job.h); the one child in a running VM's chain is streamed by a QMP
 * block-stream job (base-node = the snapshot's parent), whose
 * BLOCK_JOB_COMPLETED event is the next step. Every step is idempotent: the
 * rows say which children still sit on the snapshot, so a merge cut short
 * by a crash is run again from its rows by the reconcile pass.
 *
 * FAILPOINTs: snapshot_delete.after_row (the row says deleting),
 * .after_rebase (a child was rebased and its row moved), .after_stream
 * (QEMU streams into the running chain), .after_streamed / .after_reparent
 * (the running chain's child no longer sits on the snapshot: on the
 * stream's event, or found so when the merge ran again), .before_remove (no child
 * sits on it; its file and row are still there).
 */
#include "compute/vm_disks.h"
#include "compute/vm_snapshots_int.h"
#include "ctl/snapstate.h"
#include "lib/failpoint.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REBASE_TIMEOUT_MS 3600000

struct merge {
    struct merge *next;
    struct engine *e;
    char vm_id[37];
    char snap_id[37];
    char name[64];
    struct snap_hooks h;
    struct job *job;   /* a rebase running */
    char child_id[37]; /* what it rebases: a snapshot, or "" for the active layer */
    char child_file[64];
    bool streaming; /* QEMU's block-stream job runs: waiting for its event */
};

static struct merge *merges;
static struct snap_hooks resume_hooks;

bool snap_merge_rebasing(const char *vm_id)
{
    for (struct merge *m = merges; m; m = m->next)
        if (m->job && !strcmp(m->vm_id, vm_id))
            return true;
    return false;
}

int snap_merge_active(const char *snap_id)
{
    for (struct merge *m = merges; m; m = m->next)
        if (!strcmp(m->snap_id, snap_id))
            return 1;
    return 0;
}

static struct merge *merge_find(const char *snap_id)
{
    for (struct merge *m = merges; m; m = m->next)
        if (!strcmp(m->snap_id, snap_id))
            return m;
    return NULL;
}

static void merge_free(struct merge *m)
{
    struct merge **pp = &merges;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp)
        *pp = m->next;
    if (m->job)
        job_detach(m->job, true);
    free(m);
}

/* The merge is over: err NULL when the snapshot is gone. */
static void merge_end(struct merge *m, const struct yerr *err)
{
    struct snap_hooks h = m->h;
    merge_free(m);
    if (h.done)
        h.done(h.ctx, h.tag, err);
}

static void job_name(const char *snap_id, char out[32])
{
    snprintf(out, 32, "yun-merge-%.8s", snap_id);
}

/* The format node QEMU has for a file: not the protocol node under it, nor
 * a filter over it (a running stream puts a copy-on-read node on its top
 * that reports the same file and no backing file). */
static json_t *node_for(struct engine *e, const struct vm_rec *vm, json_t *nodes, const char *file)
{
    size_t i;
    json_t *nd;
    json_array_foreach(nodes, i, nd)
    {
        const char *f = json_string_value(json_object_get(nd, "file"));
        const char *drv = json_string_value(json_object_get(nd, "drv"));
        char path[512];
        if (!f || !drv || (strcmp(drv, "qcow2") && strcmp(drv, "raw")))
            continue;
        snaps_node_path(e, vm, f, path, sizeof(path));
        if (!strcmp(path, file))
            return nd;
    }
    return NULL;
}

/* Is our merge job for snap still running in QEMU? -1: cannot tell. Its
 * progress (bytes) in *done / *total when it runs and they are not NULL. */
static int job_progress(struct engine *e, const struct vm_rec *vm, const char *snap_id,
                        uint64_t *done, uint64_t *total);

static int job_running(struct engine *e, const struct vm_rec *vm, const char *snap_id)
{
    return job_progress(e, vm, snap_id, NULL, NULL);
}

static int job_progress(struct engine *e, const struct vm_rec *vm, const char *snap_id,
                        uint64_t *done, uint64_t *total)
{
    json_t *jobs = NULL;
    struct yerr err;
    if (engine_vm_qmp(e, vm, "query-block-jobs", NULL, &jobs, &err) < 0)
        return -1;
    char job[32];
    job_name(snap_id, job);
    int found = 0;
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        const char *dev = json_string_value(json_object_get(j, "device"));
        if (dev && !strcmp(dev, job)) {
            found = 1;
            if (done && total) {
                *done = (uint64_t)json_integer_value(json_object_get(j, "offset"));
                *total = (uint64_t)json_integer_value(json_object_get(j, "len"));
            }
        }
    }
    json_decref(jobs);
    return found;
}

static void merge_done(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *snap)
{
    char path[512];
    FAILPOINT("snapshot_delete.before_remove");
    engine_vm_path(e, vm, snap->file, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
    snaps_apply(e, snap, SNAP_EV_MERGED);
    engine_event(e, "vm", vm->name, "snapshot-delete", "ok", "%s merged into its children",
                 snap->name);
}

static void merge_failed(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *snap,
                         const char *why)
{
    snaps_apply(e, snap, SNAP_EV_MERGE_FAILED);
    engine_event(e, "vm", vm->name, "snapshot-delete", "error", "%s: %s", snap->name, why);
}

/* The running chain's child of snap has been streamed: re-parent it. */
static void reparent_chain_child(struct engine *e, struct vm_rec *vm, struct snapshot_rec *snap,
                                 struct snapshot_rec *s, size_t n)
{
    if (!strcmp(vm->disk_parent, snap->id)) {
        snprintf(vm->disk_parent, sizeof(vm->disk_parent), "%s", snap->parent);
        engine_store_update(e, vm);
        return;
    }
    for (const char *id = vm->disk_parent; id[0];) {
        struct snapshot_rec *c = snaps_by_id(s, n, id);
        if (!c)
            break;
        if (!strcmp(c->parent, snap->id)) {
            snprintf(c->parent, sizeof(c->parent), "%s", snap->parent);
            store_snapshot_update(e->store, c);
            break;
        }
        id = c->parent;
    }
}

/* Starts QEMU streaming snap's data into `top` (a file of the running
 * chain). 1: the job runs; 0: nothing left to stream; -1: error. */
static int start_stream(struct engine *e, struct vm_rec *vm, struct snapshot_rec *snap,
                        const char *top, const char *base, const char *bname, struct yerr *err)
{
    int running = job_running(e, vm, snap->id);
    if (running != 0)
        return running < 0 ? yerr_set(err, YE_QEMU_ERROR, "QEMU does not answer") : 1;
    json_t *nodes = NULL;
    if (engine_vm_qmp(e, vm, "query-named-block-nodes", NULL, &nodes, err) < 0)
        return -1;
    char from[512];
    engine_vm_path(e, vm, snap->file, from, sizeof(from));
    json_t *t = node_for(e, vm, nodes, top), *b = node_for(e, vm, nodes, base);
    const char *tbacking = t ? json_string_value(json_object_get(t, "backing_file")) : NULL;
    char tback[512] = "";
    if (tbacking) /* a relative backing file is in the same directory */
        snaps_node_path(e, vm, tbacking, tback, sizeof(tback));
    int rc;
    if (!t || !b) {
        rc = yerr_set(err, YE_QEMU_ERROR, "QEMU does not have %s open", t ? base : top);
    } else if (!tbacking || strcmp(tback, from)) {
        rc = 0; /* already streamed (yund restarted while the job ran) */
    } else {
        char job[32];
        job_name(snap->id, job);
        /* the top's header is to name the base as yund does, not as QEMU */
        json_t *args =
            json_pack("{s:s,s:s,s:s,s:s}", "job-id", job, "device",
                      json_string_value(json_object_get(t, "node-name")), "base-node",
                      json_string_value(json_object_get(b, "node-name")), "backing-file", bname);
        rc = engine_vm_qmp(e, vm, "block-stream", args, NULL, err) < 0 ? -1 : 1;
        json_decref(args);
        if (rc < 0 && job_running(e, vm, snap->id) == 1)
            rc = 1; /* the reply was lost but the job runs */
        if (rc == 1)
            FAILPOINT("snapshot_delete.after_stream");
    }
    json_decref(nodes);
    return rc;
}

static void merge_step(struct merge *m);

/* "    (12.34/100%)": qemu-img's progress (-p) as hundredths of a percent. */
static void rebase_line(void *ctx, enum job_stream s, const char *line)
{
    struct merge *m = ctx;
    double pct;
    if (s == JOB_STDOUT && m->h.progress && sscanf(line, " (%lf/100%%)", &pct) == 1 && pct >= 0 &&
        pct <= 100)
        m->h.progress(m->h.ctx, m->h.tag, (uint64_t)(pct * 100), 10000);
}

static void rebase_done(void *ctx, const struct job_result *r)
{
    struct merge *m = ctx;
    struct engine *e = m->e;
    m->job = NULL;
    struct vm_rec vm;
    struct snapshot_rec *s = NULL, *snap;
    size_t n = 0;
    struct yerr err = {0};
    if (store_vm_get(e->store, m->vm_id, &vm) != 0 || snaps_list(e, &vm, &s, &n, &err) < 0 ||
        !(snap = snaps_by_id(s, n, m->snap_id))) {
        free(s);
        yerr_set(&err, YE_NOT_FOUND, "the vm or the snapshot went away during the merge");
        merge_end(m, &err);
        return;
    }
    if (r->status != 0) {
        char line[300];
        proc_last_line(r->err, line, sizeof(line));
        yerr_disk(&err, "qemu-img rebase failed: %s", line[0] ? line : "?");
        merge_failed(e, &vm, snap, err.message);
        free(s);
        merge_end(m, &err);
        return;
    }
    /* the child sits on the snapshot's parent now */
    if (!m->child_id[0]) {
        if (!strcmp(vm.disk, m->child_file)) {
            snprintf(vm.disk_parent, sizeof(vm.disk_parent), "%s", snap->parent);
            engine_store_update(e, &vm);
        }
    } else {
        struct snapshot_rec *c = snaps_by_id(s, n, m->child_id);
        if (c) {
            snprintf(c->parent, sizeof(c->parent), "%s", snap->parent);
            store_snapshot_update(e->store, c);
        }
    }
    free(s);
    FAILPOINT("snapshot_delete.after_rebase");
    merge_step(m);
}

static int start_rebase(struct merge *m, const struct vm_rec *vm, const char *child_id,
                        const char *file, const char *fmt, const char *bname, struct yerr *err)
{
    char path[512];
    engine_vm_path(m->e, vm, file, path, sizeof(path));
    char *argv[] = {(char *)m->e->cfg->qemu_img,
                    "rebase",
                    "-p",
                    "-f",
                    "qcow2",
                    "-F",
                    (char *)fmt,
                    "-b",
                    (char *)bname,
                    path,
                    NULL};
    struct job_spec spec = {.argv = argv,
                            .timeout_ms = REBASE_TIMEOUT_MS,
                            .capture_tail = true,
                            .on_line = rebase_line,
                            .on_done = rebase_done,
                            .ctx = m};
    char why[300];
    snprintf(m->child_id, sizeof(m->child_id), "%s", child_id);
    snprintf(m->child_file, sizeof(m->child_file), "%s", file);
    m->job = job_start(m->e->base, &spec, why, sizeof(why));
    if (!m->job)
        return yerr_set(err, YE_INTERNAL, "qemu-img rebase: %s", why);
    if (m->h.process)
        m->h.process(m->h.ctx, m->h.tag, job_pid(m->job));
    return 0;
}

/* The next step of the merge, from the rows as they are now. */
static void merge_step(struct merge *m)
{
    struct engine *e = m->e;
    struct vm_rec vm;
    struct snapshot_rec *s = NULL, *snap;
    size_t n = 0;
    struct yerr err = {0};
    if (store_vm_get(e->store, m->vm_id, &vm) != 0 || snaps_list(e, &vm, &s, &n, &err) < 0) {
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
    char base[512], bname[512], top[512] = "", fmt[8];
    if (snaps_base_of(e, &vm, s, n, snap->parent, base, sizeof(base), bname, sizeof(bname), fmt,
                      &err) < 0)
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
            engine_vm_path(e, &vm, s[i].file, top, sizeof(top));
            continue;
        }
        if (start_rebase(m, &vm, s[i].id, s[i].file, fmt, bname, &err) < 0)
            goto failed;
        free(s);
        return; /* rebase_done goes on */
    }
    if (!strcmp(vm.disk_parent, snap->id)) {
        if (live) {
            engine_vm_path(e, &vm, vm.disk, top, sizeof(top));
        } else {
            if (start_rebase(m, &vm, "", vm.disk, fmt, bname, &err) < 0)
                goto failed;
            free(s);
            return;
        }
    }
    if (top[0]) {
        int rc = start_stream(e, &vm, snap, top, base, bname, &err);
        if (rc < 0)
            goto failed;
        if (rc == 1) {
            m->streaming = true; /* the event goes on (snap_merge_on_event) */
            free(s);
            return;
        }
        reparent_chain_child(e, &vm, snap, s, n);
        FAILPOINT("snapshot_delete.after_reparent");
    }
    merge_done(e, &vm, snap);
    free(s);
    merge_end(m, NULL);
    return;
failed:
    merge_failed(e, &vm, snap, err.message);
    free(s);
    merge_end(m, &err);
}

static struct merge *merge_new(struct engine *e, const struct vm_rec *vm,
                               const struct snapshot_rec *snap, const struct snap_hooks *h)
{
    struct merge *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->e = e;
    snprintf(m->vm_id, sizeof(m->vm_id), "%s", vm->id);
    snprintf(m->snap_id, sizeof(m->snap_id), "%s", snap->id);
    snprintf(m->name, sizeof(m->name), "%s", snap->name);
    if (h)
        m->h = *h;
    m->next = merges;
    merges = m;
    return m;
}

int engine_snapshot_delete(struct engine *e, const char *vmname, const char *name,
                           const struct snap_hooks *h, struct snapshot_rec *out, struct yerr *err)
{
    struct vm_rec vm;
    if (engine_vm_get(e, vmname, &vm, err) < 0)
        return -1;
    if (!vm_state_live(vm.state) && !vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    struct snapshot_rec *s, snap;
    size_t n;
    if (snaps_list(e, &vm, &s, &n, err) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!snap_state_settled(s[i].state))
            rc = yerr_set(err, YE_CONFLICT, "vm '%s': snapshot '%s' is %s; try again later",
                          vm.name, s[i].name, snap_state_name(s[i].state));
    struct snapshot_rec *f = NULL;
    for (size_t i = 0; i < n && !f; i++)
        if (!strcmp(s[i].name, name) || !strcmp(s[i].id, name))
            f = &s[i];
    if (rc == 0 && !f)
        rc = yerr_set(err, YE_NOT_FOUND, "vm '%s' has no snapshot '%s'", vm.name, name);
    if (rc == 0)
        snap = *f;
    free(s);
    if (rc < 0)
        return -1;
    if (h && h->begin && h->begin(h->ctx, &vm, &snap, err) != 0)
        return -1;
    if (snaps_apply(e, &snap, SNAP_EV_DELETE) < 0)
        return yerr_db(err, store_errmsg(e->store));
    FAILPOINT("snapshot_delete.after_row");
    if (out)
        *out = snap;
    struct merge *m = merge_new(e, &vm, &snap, h);
    if (!m) {
        snaps_apply(e, &snap, SNAP_EV_MERGE_FAILED);
        return yerr_set(err, YE_INTERNAL, "out of memory");
    }
    merge_step(m); /* may end the merge (and call done) at once */
    return 0;
}

void engine_snapshot_resume_hooks(struct engine *e, const struct snap_hooks *h)
{
    (void)e;
    resume_hooks = *h;
    resume_hooks.begin = NULL;
    resume_hooks.tag[0] = 0;
}

void snap_merge_forget_vm(const char *vm_id)
{
    for (struct merge *m = merges, *next; m; m = next) {
        next = m->next;
        if (!strcmp(m->vm_id, vm_id)) {
            struct yerr err;
            yerr_set(&err, YE_NOT_FOUND, "the vm was deleted during the merge");
            merge_end(m, &err);
        }
    }
}

void snap_merge_resume(struct engine *e, const struct vm_rec *vm, const struct snapshot_rec *snap)
{
    struct merge *m = merge_find(snap->id);
    if (m) {
        /* a stream whose QEMU went away, or whose event was lost; one that
         * runs reports QEMU's progress */
        uint64_t done = 0, total = 0;
        int running = m->streaming && vm_state_live(vm->state)
                          ? job_progress(e, vm, snap->id, &done, &total)
                          : 0;
        if (running == 1 && total && m->h.progress)
            m->h.progress(m->h.ctx, m->h.tag, done, total);
        if (m->streaming && running == 0) {
            m->streaming = false;
            merge_step(m);
        }
        return;
    }
    if ((m = merge_new(e, vm, snap, &resume_hooks)))
        merge_step(m);
}

void snap_merge_on_event(struct engine *e, const struct vm_rec *vm0, const char *event,
                         json_t *data)
{
    bool cancelled = !strcmp(event, "BLOCK_JOB_CANCELLED");
    if (strcmp(event, "BLOCK_JOB_COMPLETED") && !cancelled)
        return;
    const char *dev = json_string_value(json_object_get(data, "device"));
    const char *error = cancelled ? "the block job was cancelled"
                                  : json_string_value(json_object_get(data, "error"));
    struct vm_rec vm = *vm0;
    struct snapshot_rec *s;
    size_t n;
    struct yerr err = {0};
    if (!dev || snaps_list(e, &vm, &s, &n, &err) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char job[32];
        job_name(s[i].id, job);
        if (strcmp(job, dev) || s[i].state != SNAP_DELETING)
            continue;
        struct merge *m = merge_find(s[i].id);
        if (error) {
            merge_failed(e, &vm, &s[i], error);
            if (m) {
                yerr_set(&err, YE_QEMU_ERROR, "%s", error);
                merge_end(m, &err);
            }
        } else {
            reparent_chain_child(e, &vm, &s[i], s, n);
            FAILPOINT("snapshot_delete.after_streamed");
            if (m) {
                m->streaming = false;
                merge_step(m); /* finds nothing left on it: removes it */
            } else {
                merge_done(e, &vm, &s[i]);
            }
        }
        break;
    }
    free(s);
}
