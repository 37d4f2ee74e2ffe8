/*
 * snapshots_reconcile.c - settling a VM's snapshot rows after a crash, in
 * the controller, over agent verbs (nothing waits on the loop); and what
 * the snapshot files share about rows and holds (snapshots_int.h).
 *
 * For one VM, in this order:
 *  1. each "creating" row no operation of this yund holds is decided: the
 *     VM row already names its new layer, or QEMU writes to it
 *     (vm.active_layer, live VM) -> adopted; a VM that is down adopts a new
 *     layer that is a sound overlay of the snapshot's file (disk.info: its
 *     backing; disk.check: no corruption), since if QEMU switched to it
 *     before exiting it holds the guest's later writes, and if nothing
 *     wrote to it it equals the snapshot. Anything else is rolled back
 *     (vm.layer_remove of the new layer, row gone). No answer from QEMU, a
 *     check that fails on a lock (another process, a merge's rebase, holds
 *     a layer) or a rebase running on the VM is no verdict: the row waits
 *     for the next pass;
 *  2. then the merges of "deleting" rows are resumed (snapshots_merge.c):
 *     after the creates, since a rebase write-locks a layer the adoption
 *     check reads through;
 *  3. then vm.layers_sweep removes disk layers no row names (nor an
 *     operation in flight holds).
 * The controller's reconcile pass (ctl/vms_reconcile.c) runs it for every
 * VM (ctl_snapshots_settle_all); a task's recover function for its VM.
 *
 * FAILPOINT: snapshot_reconcile.after_layer_removed (a roll-back removed
 * the new layer; the row still says creating: the next settle rolls it
 * back again).
 */
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/snapshots_int.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HELD       64
#define MAX_WAITERS    8
#define MAX_VISITED    64
#define INCOMPLETE_MAX 5 /* settles without a verdict before it counts as settled */

/* ---- rows and holds ---- */

struct snapshot_rec *snaps_by_id(struct snapshot_rec *s, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].id, id))
            return &s[i];
    return NULL;
}

int snaps_apply(struct ctl *c, struct snapshot_rec *snap, enum snap_event ev)
{
    enum snap_state to;
    enum snap_step step = snap_transition(snap->state, ev, &to);
    if (step == SNAP_STEP_REFUSED) {
        log_err("snapshot %s: %s refused in state %s", snap->name, snap_event_name(ev),
                snap_state_name(snap->state));
        return -1;
    }
    if (step == SNAP_STEP_GONE)
        return store_snapshot_delete(c->store, snap->id) == 0 ? 0 : -1;
    snap->state = to;
    if (to != SNAP_CREATING)
        snap->new_disk[0] = 0;
    return store_snapshot_update(c->store, snap) == 0 ? 0 : -1;
}

static char held[MAX_HELD][37];

void ctl_snapshot_hold(const char *snap_id, bool on)
{
    for (int i = 0; i < MAX_HELD; i++)
        if (on ? !held[i][0] : !strcmp(held[i], snap_id)) {
            snprintf(held[i], sizeof held[i], "%s", on ? snap_id : "");
            return;
        }
    if (on)
        log_warn("snapshot %s: too many operations at once to hold it", snap_id);
}

bool ctl_snapshot_held(const char *snap_id)
{
    for (int i = 0; i < MAX_HELD; i++)
        if (held[i][0] && !strcmp(held[i], snap_id))
            return true;
    return false;
}

/* ---- which VMs were settled in this run ---- */

struct seen {
    struct seen *next;
    char vm_id[37];
    int incomplete;
    bool settled;
};
static struct seen *seen;

static struct seen *seen_get(const char *vm_id)
{
    for (struct seen *s = seen; s; s = s->next)
        if (!strcmp(s->vm_id, vm_id))
            return s;
    struct seen *s = calloc(1, sizeof *s);
    if (s) {
        snprintf(s->vm_id, sizeof s->vm_id, "%s", vm_id);
        s->next = seen;
        seen = s;
    }
    return s;
}

bool snaps_settled_once(const char *vm_id)
{
    for (struct seen *s = seen; s; s = s->next)
        if (!strcmp(s->vm_id, vm_id))
            return s->settled;
    return false;
}

/* ---- one settle ---- */

struct settle {
    struct settle *next;
    struct ctl *c;
    char vm_id[37];
    char host[37]; /* the VM's host: the agent that answers */
    snaps_settled_fn fns[MAX_WAITERS];
    int nfns;
    bool complete;
    char visited[MAX_VISITED][37]; /* creating rows decided (or left) this time */
    int nvisited;
    struct snapshot_rec snap; /* the row being decided */
    char nw[512], cur[512];   /* its new layer and its file (paths) */
};
static struct settle *settles;

static void settle_next(struct settle *st);

static void settle_free(struct settle *st)
{
    struct settle **pp = &settles;
    while (*pp && *pp != st)
        pp = &(*pp)->next;
    if (*pp)
        *pp = st->next;
    ctl_agents_forget(st->c, st);
    free(st);
}

static void settle_finished(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct settle *st = arg;
    struct seen *s = seen_get(st->vm_id);
    if (s && (st->complete || ++s->incomplete >= INCOMPLETE_MAX))
        s->settled = true;
    snaps_settled_fn fns[MAX_WAITERS];
    int nfns = st->nfns;
    memcpy(fns, st->fns, sizeof fns);
    struct ctl *c = st->c;
    char vm_id[37];
    snprintf(vm_id, sizeof vm_id, "%s", st->vm_id);
    bool complete = st->complete;
    settle_free(st);
    for (int i = 0; i < nfns; i++)
        fns[i](c, vm_id, complete);
}

/* Always from the loop, never inside snaps_settle(). */
static void settle_end(struct settle *st)
{
    struct timeval tv = {0, 0};
    if (event_base_once(st->c->base, -1, EV_TIMEOUT, settle_finished, st, &tv) < 0)
        settle_finished(-1, 0, st);
}

static void visit(struct settle *st, const char *id)
{
    if (st->nvisited < MAX_VISITED)
        snprintf(st->visited[st->nvisited++], 37, "%s", id);
}

static bool visited(const struct settle *st, const char *id)
{
    for (int i = 0; i < st->nvisited; i++)
        if (!strcmp(st->visited[i], id))
            return true;
    return false;
}

static void adopt(struct settle *st)
{
    struct vm_rec vm;
    if (store_vm_get(st->c->store, st->vm_id, &vm) != 0) {
        settle_next(st);
        return;
    }
    snprintf(vm.disk, sizeof vm.disk, "%s", st->snap.new_disk);
    snprintf(vm.disk_parent, sizeof vm.disk_parent, "%s", st->snap.id);
    snaps_vm_save(st->c, &vm);
    snaps_apply(st->c, &st->snap, SNAP_EV_SWITCHED);
    ctl_event(st->c, "vm", vm.name, "snapshot", "ok", "%s (finished after restart)", st->snap.name);
    settle_next(st);
}

static void on_rolled_back(void *ctx, json_t *res, const struct yerr *err)
{
    struct settle *st = ctx;
    (void)res;
    if (err) /* the sweep takes it once the row is gone */
        log_warn("snapshot %s: cannot remove its new layer: %s", st->snap.name, err->message);
    FAILPOINT("snapshot_reconcile.after_layer_removed"); /* row still "creating" */
    struct vm_rec vm;
    const char *name = store_vm_get(st->c->store, st->vm_id, &vm) == 0 ? vm.name : st->vm_id;
    snaps_apply(st->c, &st->snap, SNAP_EV_ROLLED_BACK);
    ctl_event(st->c, "vm", name, "snapshot", "error",
              "%s: rolled back: yund stopped before it finished", st->snap.name);
    settle_next(st);
}

static void roll_back(struct settle *st)
{
    ctl_host_call(st->c, st->host, AV_VM_LAYER_REMOVE,
                  json_pack("{s:s,s:s}", "vm", st->vm_id, "file", st->snap.new_disk),
                  on_rolled_back, NULL, st);
}

/* No verdict this time: the row waits for the next pass. */
static void no_verdict(struct settle *st)
{
    st->complete = false;
    settle_next(st);
}

static void on_active(void *ctx, json_t *res, const struct yerr *err)
{
    struct settle *st = ctx;
    const char *f = json_string_value(json_object_get(res, "file"));
    if (err || !f || !f[0])
        no_verdict(st); /* QEMU did not answer */
    else if (!strcmp(f, st->nw))
        adopt(st);
    else
        roll_back(st);
}

static bool locked(const struct yerr *err)
{
    return err && strstr(err->message, "lock");
}

static void on_check(void *ctx, json_t *res, const struct yerr *err)
{
    struct settle *st = ctx;
    json_t *chk = json_object_get(res, "check");
    if (locked(err))
        no_verdict(st); /* another process holds a layer: not a verdict */
    else if (err || json_integer_value(json_object_get(chk, "corruptions")) > 0 ||
             json_integer_value(json_object_get(chk, "check-errors")) > 0)
        roll_back(st);
    else
        adopt(st);
}

static void on_info(void *ctx, json_t *res, const struct yerr *err)
{
    struct settle *st = ctx;
    if (locked(err)) {
        no_verdict(st);
        return;
    }
    const char *fmt = json_string_value(json_object_get(res, "format"));
    const char *bk = json_string_value(json_object_get(res, "full-backing-filename"));
    if (!bk)
        bk = json_string_value(json_object_get(res, "backing-filename"));
    json_t *fsdata = json_object_get(json_object_get(res, "format-specific"), "data");
    if (err || !fmt || strcmp(fmt, "qcow2") || !bk || strcmp(bk, st->cur) ||
        json_is_true(json_object_get(fsdata, "corrupt"))) {
        roll_back(st);
        return;
    }
    ctl_host_call(st->c, st->host, AV_DISK_CHECK, json_pack("{s:s}", "path", st->nw), on_check,
                  NULL, st);
}

static void on_swept(void *ctx, json_t *res, const struct yerr *err)
{
    struct settle *st = ctx;
    struct vm_rec vm;
    if (err) {
        log_warn("vm %s: layer sweep: %s", st->vm_id, err->message);
    } else if (store_vm_get(st->c->store, st->vm_id, &vm) == 0) {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(res, "removed"), i, f)
            ctl_event(st->c, "vm", vm.name, "orphan", "info", "removed unused disk layer %s",
                      json_string_value(f));
    }
    settle_end(st);
}

static void sweep(struct settle *st, const struct vm_rec *vm, struct snapshot_rec *s, size_t n)
{
    json_t *keep = json_array();
    json_array_append_new(keep, json_string(vm->disk));
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(keep, json_string(s[i].file));
        if (s[i].new_disk[0])
            json_array_append_new(keep, json_string(s[i].new_disk));
    }
    for (int i = 0; i < MAX_HELD; i++)
        if (held[i][0])
            json_array_append_new(keep, json_string(held[i]));
    ctl_host_call(st->c, st->host, AV_VM_LAYERS_SWEEP,
                  json_pack("{s:s,s:o}", "vm", vm->id, "keep", keep), on_swept, NULL, st);
}

/* The next creating row to decide; when none is left, the merges and the
 * sweep. */
static void settle_next(struct settle *st)
{
    struct ctl *c = st->c;
    struct vm_rec vm;
    struct snapshot_rec *s = NULL;
    size_t n = 0;
    if (store_vm_get(c->store, st->vm_id, &vm) != 0 ||
        store_snapshot_list(c->store, vm.id, &s, &n) != 0) {
        settle_end(st); /* the VM is gone: nothing to settle */
        return;
    }
    snprintf(st->host, sizeof st->host, "%s", vm.host);
    struct yerr down = {0};
    bool live = vm_state_live(vm.state);
    if ((!live && !vm_state_down(vm.state)) || !ctl_vm_agent(c, &vm, &down)) {
        free(s); /* starting or stopping, or its host down: the next pass */
        st->complete = false;
        settle_end(st);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct snapshot_rec *snap = &s[i];
        if (snap->state != SNAP_CREATING || ctl_snapshot_held(snap->id) || visited(st, snap->id))
            continue;
        visit(st, snap->id);
        st->snap = *snap;
        free(s);
        snaps_vm_file(c, &vm, st->snap.new_disk, st->nw, sizeof st->nw);
        snaps_vm_file(c, &vm, st->snap.file, st->cur, sizeof st->cur);
        if (!strcmp(vm.disk, st->snap.new_disk)) {
            adopt(st); /* the VM row names it already */
        } else if (live) {
            /* did the switch to the new layer happen before the crash? */
            ctl_vm_call(c, &vm, AV_VM_ACTIVE_LAYER, json_pack("{s:s}", "vm", vm.id), on_active,
                        NULL, st);
        } else if (snap_merge_rebasing(vm.id)) {
            no_verdict(st); /* its rebase locks a layer the check reads */
        } else {
            ctl_vm_call(c, &vm, AV_DISK_INFO,
                        json_pack("{s:s,s:s}", "path", st->nw, "format", "qcow2"), on_info, NULL,
                        st);
        }
        return;
    }
    /* Merges after every create is settled: a merge's qemu-img rebase holds
     * a write lock on a layer the adoption check above reads through. A
     * merge's completion event can be lost while yund restarts: then the
     * stream is found done, or is started again. */
    for (size_t i = 0; i < n; i++)
        if (s[i].state == SNAP_DELETING && !ctl_snapshot_held(s[i].id))
            snap_merge_resume(c, &vm, &s[i]);
    free(s);
    if (store_snapshot_list(c->store, vm.id, &s, &n) != 0) {
        settle_end(st);
        return;
    }
    sweep(st, &vm, s, n);
    free(s);
}

void snaps_settle(struct ctl *c, const char *vm_id, snaps_settled_fn fn)
{
    for (struct settle *st = settles; st; st = st->next)
        if (!strcmp(st->vm_id, vm_id)) {
            if (fn && st->nfns < MAX_WAITERS)
                st->fns[st->nfns++] = fn;
            return; /* folded into the one in flight */
        }
    struct settle *st = calloc(1, sizeof *st);
    if (!st)
        return;
    st->c = c;
    st->complete = true;
    snprintf(st->vm_id, sizeof st->vm_id, "%s", vm_id);
    if (fn)
        st->fns[st->nfns++] = fn;
    st->next = settles;
    settles = st;
    settle_next(st);
}

/* ---- the reconcile pass's turn ---- */

void ctl_snapshots_settle_all(struct ctl *c, const struct vm_rec *vms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snaps_settle(c, vms[i].id, NULL);
}

int snaps_vm_file(struct ctl *c, const struct vm_rec *vm, const char *file, char *buf, size_t len)
{
    struct ctl_vm_paths p;
    ctl_vm_paths(c, vm, &p);
    return p.dir[0] && snprintf_checked(buf, len, "%s/%s", p.dir, file) >= 0 ? 0 : -1;
}

int snaps_vm_save(struct ctl *c, struct vm_rec *vm)
{
    vm->updated_at = now_ms();
    int rc = store_vm_update(c->store, vm);
    if (rc != 0)
        log_err("cannot update vm %s: %s", vm->name, store_errmsg(c->store));
    return rc;
}
