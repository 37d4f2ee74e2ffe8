/*
 * snapshots.c - snapshot operations as tasks on their VM (snapshots.h).
 *
 * Each operation: the VM must exist and hold no unfinished task (409
 * naming it); it is validated here; right before its first durable write
 * the task is begun, with the snapshot's id (and a revert's new layer) in
 * its params for recovery; the task ends with the operation (a delete's
 * with its merge: snapshots_merge.c). A task found unfinished at start-up
 * (its yund was killed) is handed to recover_*: they have the VM's rows
 * settled as the reconcile pass does (snapshots_reconcile.c: a create is
 * finished or rolled back, a revert's stray layer removed, a merge
 * resumed), then say whether the operation happened. Also the read side
 * the API shows (ctl_snapshot_list / _show).
 */
#include "ctl/snapshots.h"
#include "ctl/ctl.h"
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/snapshots_int.h"
#include "ctl/snapstate.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct begin_ctx {
    struct ctl *c;
    const char *kind;
    const char *layer; /* revert: the new active layer */
    struct task_rec task;
    bool begun;
};

static int begin_task(void *ctx, const struct vm_rec *vm, const struct snapshot_rec *snap,
                      struct yerr *err)
{
    struct begin_ctx *b = ctx;
    if (task_begin(b->c->tasks, b->kind, "vm", vm->id, vm->name, &b->task, err) < 0)
        return -1;
    b->begun = true;
    json_t *p = json_pack("{s:s,s:s}", "snapshot", snap->id, "name", snap->name);
    if (b->layer)
        json_object_set_new(p, "layer", json_string(b->layer));
    if (p && task_set_params(b->c->tasks, b->task.id, p) < 0)
        log_warn("task %s: cannot record its params", b->task.id);
    json_decref(p);
    return 0;
}

/* The VM, and no unfinished task on it. */
static int vm_free(struct ctl *c, const char *name, struct vm_rec *vm, struct yerr *err)
{
    if (ctl_vm_get(c, name, vm, err) < 0 || !ctl_vm_agent(c, vm, err))
        return -1; /* its host is down: 503, nothing changed */
    struct task_rec busy;
    if (task_busy(c->tasks, vm->id, &busy))
        return task_conflict(err, &busy);
    return 0;
}

/* The API's view of a snapshot (size: what its file takes on disk). */
static json_t *snapshot_json(struct ctl *c, const struct vm_rec *vm, const struct snapshot_rec *s,
                             int64_t took_ms)
{
    char path[512];
    snaps_vm_file(c, vm, s->file, path, sizeof(path));
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I}", "id", s->id, "name", s->name, "vm",
                  vm->name, "parent", s->parent, "state", snap_state_name(s->state), "consistency",
                  s->consistency, "current", !strcmp(vm->disk_parent, s->id), "size",
                  (json_int_t)file_size_on_disk(path), "created_at", (json_int_t)s->created_at);
    if (took_ms >= 0)
        json_object_set_new(j, "took_ms", json_integer(took_ms));
    return j;
}

/* The VM by name and its snapshot rows (*ss freed by the caller). */
static int vm_snapshots(struct ctl *c, const char *vmname, struct vm_rec *vm,
                        struct snapshot_rec **ss, size_t *n, struct yerr *err)
{
    if (ctl_vm_get(c, vmname, vm, err) < 0)
        return -1;
    if (store_snapshot_list(c->store, vm->id, ss, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

json_t *ctl_snapshot_list(struct ctl *c, const char *vmname, struct yerr *err)
{
    struct vm_rec vm;
    struct snapshot_rec *ss;
    size_t n;
    if (vm_snapshots(c, vmname, &vm, &ss, &n, err) < 0)
        return NULL;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, snapshot_json(c, &vm, &ss[i], -1));
    free(ss);
    return json_pack("{s:o}", "snapshots", arr);
}

json_t *ctl_snapshot_show(struct ctl *c, const char *vmname, const char *name, int64_t took_ms,
                          struct yerr *err)
{
    struct vm_rec vm;
    struct snapshot_rec *ss;
    size_t n;
    if (vm_snapshots(c, vmname, &vm, &ss, &n, err) < 0)
        return NULL;
    json_t *j = NULL;
    for (size_t i = 0; i < n && !j; i++)
        if (!strcmp(ss[i].name, name) || !strcmp(ss[i].id, name))
            j = snapshot_json(c, &vm, &ss[i], took_ms);
    free(ss);
    if (!j)
        yerr_set(err, YE_NOT_FOUND, "vm '%s' has no snapshot '%s'", vm.name, name);
    return j;
}

static json_t *snap_result(const char *vm, const struct snapshot_rec *s)
{
    return json_pack("{s:s,s:s,s:s}", "id", s->id, "name", s->name, "vm", vm);
}

/* ---- revert: a new active layer on the snapshot's file ---- */

struct revert_op {
    struct revert_op *next;
    struct ctl *c;
    char task[37];
    struct vm_rec vm;
    struct snapshot_rec snap;
    char layer[64];
    bool drop_old; /* the old active layer is no snapshot's file */
};
static struct revert_op *reverts; /* in flight (reachable until they end) */

static void revert_end(struct revert_op *r, const struct yerr *err)
{
    struct revert_op **pp = &reverts;
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
    ctl_snapshot_hold(r->layer, false);
    if (err)
        task_fail(r->c->tasks, r->task, err);
    else
        task_succeed(r->c->tasks, r->task, snap_result(r->vm.name, &r->snap));
    free(r);
}

static void on_old_removed(void *ctx, json_t *res, const struct yerr *err)
{
    struct revert_op *r = ctx;
    (void)res;
    if (err) /* the orphan sweep takes it */
        log_warn("revert of vm %s: %s", r->vm.name, err->message);
    ctl_event(r->c, "vm", r->vm.name, "revert", "ok", "to snapshot %s", r->snap.name);
    revert_end(r, NULL);
}

static void on_revert_layer(void *ctx, json_t *res, const struct yerr *err)
{
    struct revert_op *r = ctx;
    (void)res;
    if (err) {
        revert_end(r, err); /* the verb left nothing */
        return;
    }
    FAILPOINT("snapshot_revert.after_layer");
    struct vm_rec vm;
    struct yerr e2 = {0};
    if (store_vm_get(r->c->store, r->vm.id, &vm) != 0 || !vm_state_down(vm.state)) {
        yerr_set(&e2, YE_CONFLICT, "vm '%s' changed during the revert", r->vm.name);
    } else {
        snprintf(r->vm.disk, sizeof r->vm.disk, "%s", vm.disk);
        snprintf(vm.disk, sizeof vm.disk, "%s", r->layer);
        snprintf(vm.disk_parent, sizeof vm.disk_parent, "%s", r->snap.id);
        vm.updated_at = now_ms();
        if (store_vm_update(r->c->store, &vm) != 0)
            yerr_db(&e2, store_errmsg(r->c->store));
    }
    if (e2.code) {
        ctl_vm_call(r->c, &r->vm, AV_VM_LAYER_REMOVE,
                    json_pack("{s:s,s:s}", "vm", r->vm.id, "file", r->layer), NULL, NULL, NULL);
        revert_end(r, &e2);
        return;
    }
    /* the record points at the new layer now; the old one is garbage (a
     * crash here leaves it to the orphan sweep) */
    FAILPOINT("snapshot_revert.after_vm_row");
    if (!r->drop_old) {
        on_old_removed(r, NULL, NULL);
        return;
    }
    ctl_vm_call(r->c, &r->vm, AV_VM_LAYER_REMOVE,
                json_pack("{s:s,s:s}", "vm", r->vm.id, "file", r->vm.disk), on_old_removed, NULL,
                r);
}

int ctl_snapshot_revert_start(struct ctl *c, const char *vmname, const char *name, char task_id[37],
                              struct yerr *err)
{
    struct vm_rec vm;
    if (vm_free(c, vmname, &vm, err) < 0)
        return -1;
    if (!vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: stop it before reverting", vm.name,
                        vm_state_name(vm.state));
    struct snapshot_rec *s, *f = NULL;
    size_t n;
    if (store_snapshot_list(c->store, vm.id, &s, &n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    int rc = 0;
    bool drop_old = true;
    for (size_t i = 0; i < n; i++) {
        if (!snap_state_settled(s[i].state) && rc == 0)
            rc = yerr_set(err, YE_CONFLICT, "vm '%s': snapshot '%s' is %s; try again later",
                          vm.name, s[i].name, snap_state_name(s[i].state));
        if (!f && (!strcmp(s[i].name, name) || !strcmp(s[i].id, name)))
            f = &s[i];
        if (!strcmp(s[i].file, vm.disk))
            drop_old = false;
    }
    if (rc == 0 && !f)
        rc = yerr_set(err, YE_NOT_FOUND, "vm '%s' has no snapshot '%s'", vm.name, name);
    struct revert_op *r = rc == 0 ? calloc(1, sizeof *r) : NULL;
    if (rc == 0 && !r)
        rc = yerr_set(err, YE_INTERNAL, "out of memory");
    if (r)
        r->snap = *f;
    free(s);
    if (rc < 0)
        return -1;
    r->c = c;
    r->vm = vm;
    r->drop_old = drop_old;
    char id[37];
    uuid_generate_str(id);
    snprintf(r->layer, sizeof r->layer, "disk-%.8s.qcow2", id);
    struct begin_ctx b = {.c = c, .kind = "snapshot.revert", .layer = r->layer};
    if (begin_task(&b, &vm, &r->snap, err) < 0) {
        free(r);
        return -1;
    }
    snprintf(r->task, sizeof r->task, "%s", b.task.id);
    snprintf(task_id, 37, "%s", b.task.id);
    r->next = reverts;
    reverts = r;
    ctl_snapshot_hold(r->layer, true);
    ctl_vm_call(c, &vm, AV_VM_LAYER_CREATE,
                json_pack("{s:s,s:s,s:s}", "vm", vm.id, "file", r->layer, "backing", r->snap.file),
                on_revert_layer, NULL, r);
    return 0;
}

/* ---- delete: the row "deleting", then the merge (snapshots_merge.c) ---- */

int ctl_snapshot_delete(struct ctl *c, const char *vmname, const char *name, struct task_rec *task,
                        struct yerr *err)
{
    struct vm_rec vm;
    if (vm_free(c, vmname, &vm, err) < 0)
        return -1;
    if (!vm_state_live(vm.state) && !vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    struct snapshot_rec *s, snap;
    size_t n;
    if (store_snapshot_list(c->store, vm.id, &s, &n) != 0)
        return yerr_db(err, store_errmsg(c->store));
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
    struct begin_ctx b = {.c = c, .kind = "snapshot.delete"};
    if (begin_task(&b, &vm, &snap, err) < 0)
        return -1;
    if (snaps_apply(c, &snap, SNAP_EV_DELETE) < 0) {
        yerr_db(err, store_errmsg(c->store));
        task_fail(c->tasks, b.task.id, err);
        return -1;
    }
    FAILPOINT("snapshot_delete.after_row");
    snap_merge_start(c, &vm, &snap, b.task.id); /* may end the task at once */
    if (tasks_get(c->tasks, b.task.id, task, err) != 0)
        return err->code ? -1 : yerr_set(err, YE_INTERNAL, "task %s vanished", b.task.id);
    return 0;
}

/* ---- recovery ---- */

/* The snapshot a task's params name: 1 and *out when its row is there. */
static int task_snapshot(struct ctl *c, const struct task_rec *k, struct snapshot_rec *out,
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
    if (id && store_snapshot_list(c->store, k->object_id, &s, &n) == 0) {
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

/* A create killed while the guest's file systems may have been frozen:
 * qemu-ga keeps them frozen until told otherwise, so once the VM's agent
 * is back (the reconcile pass finds its port open) it is asked to thaw,
 * every THAW_EVERY_MS for up to THAW_TRIES tries. Thawing a guest that is
 * not frozen does nothing. */
#define THAW_EVERY_MS 2000
#define THAW_TRIES    30
struct thaw {
    struct thaw *next;
    struct ctl *c;
    struct event *timer;
    char vm_id[37];
    char host[37];
    char vm[64];
    int tries;
};
static struct thaw *thaws;

static void thaw_free(struct thaw *t)
{
    struct thaw **pp = &thaws;
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    event_free(t->timer);
    free(t);
}

static void thaw_arm(struct thaw *t)
{
    struct timeval tv = {THAW_EVERY_MS / 1000, (THAW_EVERY_MS % 1000) * 1000};
    evtimer_add(t->timer, &tv);
}

static void on_recovery_thaw(void *ctx, json_t *r, const struct yerr *err)
{
    struct thaw *t = ctx;
    (void)r;
    if (!err) {
        ctl_event(t->c, "vm", t->vm, "snapshot", "info",
                  "guest file systems thawed after a restart during a snapshot");
        thaw_free(t);
    } else if (++t->tries >= THAW_TRIES) {
        log_warn("vm %s: could not thaw its file systems after a restart: %s", t->vm_id,
                 err->message);
        thaw_free(t);
    } else {
        thaw_arm(t);
    }
}

static void thaw_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct thaw *t = arg;
    ctl_host_call(t->c, t->host, AV_GUEST_FSTHAW, json_pack("{s:s}", "vm", t->vm_id),
                  on_recovery_thaw, NULL, t);
}

static void thaw_later(struct ctl *c, const struct vm_rec *vm)
{
    struct thaw *t = calloc(1, sizeof *t);
    if (!t || !(t->timer = evtimer_new(c->base, thaw_tick, t))) {
        free(t);
        return;
    }
    t->c = c;
    snprintf(t->vm_id, sizeof t->vm_id, "%s", vm->id);
    snprintf(t->host, sizeof t->host, "%s", vm->host);
    snprintf(t->vm, sizeof t->vm, "%s", vm->name);
    t->next = thaws;
    thaws = t;
    thaw_arm(t);
}

/* Recovery waits for a settle of the VM's rows in this run (over agent
 * verbs, so it cannot happen inside tasks_recover): the recover functions
 * start one and leave the task unfinished; when it is over tasks_recover
 * runs again and they decide from the rows. */
#define RESETTLE_MS 1000

static void recover_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ctl *c = arg;
    tasks_recover(c->tasks);
}

/* Without a verdict (QEMU not answering yet: its QMP connection is made by
 * the reconcile pass right after start-up) the settle is tried again a
 * little later, a few times (snapshots_reconcile.c counts them). */
static void on_recover_settled(struct ctl *c, const char *vm_id, bool complete)
{
    (void)vm_id;
    struct timeval tv = {complete ? 0 : RESETTLE_MS / 1000, 0};
    if (event_base_once(c->base, -1, EV_TIMEOUT, recover_again, c, &tv) < 0)
        tasks_recover(c->tasks);
}

static int wait_settled(struct ctl *c, const struct task_rec *k, struct yerr *err)
{
    if (snaps_settled_once(k->object_id))
        return 0;
    snaps_settle(c, k->object_id, on_recover_settled);
    return yerr_set(err, YE_UNAVAILABLE, "the snapshot rows of vm '%s' are being settled",
                    k->object_name);
}

static bool thaw_pending(const char *vm_id)
{
    for (struct thaw *t = thaws; t; t = t->next)
        if (!strcmp(t->vm_id, vm_id))
            return true;
    return false;
}

static int recover_create(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    struct vm_rec vm;
    if (!snaps_settled_once(k->object_id) && !thaw_pending(k->object_id) &&
        store_vm_get(c->store, k->object_id, &vm) == 0 && vm.state == VM_RUNNING)
        thaw_later(c, &vm);
    if (wait_settled(c, k, err) < 0)
        return -1;
    struct snapshot_rec s;
    if (task_snapshot(c, k, &s, NULL, 0) && s.state == SNAP_READY) {
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
    struct ctl *c = ctx;
    if (wait_settled(c, k, err) < 0)
        return -1;
    struct snapshot_rec s;
    char layer[64];
    struct vm_rec vm;
    task_snapshot(c, k, &s, layer, sizeof layer);
    if (layer[0] && store_vm_get(c->store, k->object_id, &vm) == 0 && !strcmp(vm.disk, layer))
        k->state = TASK_SUCCEEDED; /* the VM row had moved to the new layer */
    return 0;
}

static int recover_delete(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    if (wait_settled(c, k, err) < 0) /* the settle resumes the merge */
        return -1;
    struct snapshot_rec s;
    if (!task_snapshot(c, k, &s, NULL, 0)) {
        k->state = TASK_SUCCEEDED;
        return 0;
    }
    if (s.state == SNAP_DELETING) /* merging on: settled when it ends */
        return yerr_set(err, YE_UNAVAILABLE, "the merge of snapshot '%s' is still running", s.name);
    return 0; /* the merge failed: the snapshot stays */
}

void ctl_snapshots_init(struct ctl *c)
{
    tasks_register_kind(c->tasks, "snapshot.create", recover_create, c);
    tasks_register_kind(c->tasks, "snapshot.revert", recover_revert, c);
    tasks_register_kind(c->tasks, "snapshot.delete", recover_delete, c);
}
