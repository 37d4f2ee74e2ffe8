/*
 * snapshots_create.c - taking a snapshot, as a task on its VM, one agent
 * verb at a time so nothing waits on the loop (agent_snap.c has the verbs):
 *
 *   row "creating" (naming the new layer)        FAILPOINT after_row
 *   vm.layer_create: the new active layer        after_layer / after_live_layer
 *   running VM: guest.fsfreeze (when the agent   after_freeze
 *     is up; else crash-consistent, and why)
 *   running VM: vm.snapshot_switch               after_switch
 *   frozen: guest.fsthaw (tried twice)           after_thaw
 *   VM row names the new layer                   before_vm_row (before it)
 *   row "ready"                                  before_ready (before it)
 *
 * A failed switch is not taken for "nothing happened" before QEMU says
 * which layer it writes to (vm.active_layer); when it cannot say, the row
 * stays "creating" for the reconcile pass. While the operation runs its row
 * is held (ctl_snapshot_hold): the reconcile pass leaves it alone. What
 * a crash at each point leaves, and how it is settled, is in
 * docs/architecture.md ("Snapshots").
 */
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/ctl.h"
#include "ctl/snapshots_int.h"
#include "ctl/snapshots.h"
#include "ctl/snapstate.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SNAPSHOTS 32 /* a longer chain slows every read that misses */

struct create_op {
    struct create_op *next;
    struct ctl *c;
    char task[37];
    struct vm_rec vm; /* as it was when the operation began */
    struct snapshot_rec snap;
    bool live, frozen, thaw_retried;
    bool unknown;  /* QEMU could not say whether it switched */
    char why[300]; /* why it is only crash-consistent */
    struct yerr err;
};
static struct create_op *ops; /* in flight (reachable until they end) */

static void op_free(struct create_op *op)
{
    struct create_op **pp = &ops;
    while (*pp && *pp != op)
        pp = &(*pp)->next;
    if (*pp)
        *pp = op->next;
    free(op);
}

static json_t *vm_args(const struct create_op *op)
{
    return json_pack("{s:s}", "vm", op->vm.id);
}

/* Ends the operation: the task, the hold, the memory. */
static void op_end(struct create_op *op, bool ok)
{
    ctl_snapshot_hold(op->snap.id, false);
    if (ok)
        task_succeed(op->c->tasks, op->task,
                     json_pack("{s:s,s:s,s:s}", "id", op->snap.id, "name", op->snap.name, "vm",
                               op->vm.name));
    else
        task_fail(op->c->tasks, op->task, &op->err);
    op_free(op);
}

/* Nothing switched: the new layer and the row go. */
static void on_removed(void *ctx, json_t *r, const struct yerr *err)
{
    struct create_op *op = ctx;
    (void)r;
    if (err)
        log_warn("snapshot %s: %s", op->snap.name, err->message); /* the sweep takes it */
    enum snap_state to;
    if (snap_transition(op->snap.state, SNAP_EV_ROLLED_BACK, &to) == SNAP_STEP_GONE)
        store_snapshot_delete(op->c->store, op->snap.id);
    ctl_event(op->c, "vm", op->vm.name, "snapshot", "error", "%s: %s", op->snap.name,
              op->err.message);
    op_end(op, false);
}

static void roll_back(struct create_op *op)
{
    ctl_vm_call(op->c, &op->vm, AV_VM_LAYER_REMOVE,
                json_pack("{s:s,s:s}", "vm", op->vm.id, "file", op->snap.new_disk), on_removed,
                NULL, op);
}

/* The switch happened (or, stopped, the new layer is simply the top). */
static void finish(struct create_op *op)
{
    struct vm_rec vm;
    FAILPOINT("snapshot_create.before_vm_row");
    if (store_vm_get(op->c->store, op->vm.id, &vm) != 0) {
        yerr_set(&op->err, YE_NOT_FOUND, "vm '%s' went away", op->vm.name);
        op_end(op, false);
        return;
    }
    snprintf(vm.disk, sizeof vm.disk, "%s", op->snap.new_disk);
    snprintf(vm.disk_parent, sizeof vm.disk_parent, "%s", op->snap.id);
    vm.updated_at = now_ms();
    if (store_vm_update(op->c->store, &vm) != 0) {
        /* the switch happened but the record does not say so: the row
         * stays "creating" for the reconcile pass, which asks QEMU */
        yerr_db(&op->err, store_errmsg(op->c->store));
        ctl_event(op->c, "vm", op->vm.name, "snapshot", "error", "%s: %s", op->snap.name,
                  op->err.message);
        op_end(op, false);
        return;
    }
    FAILPOINT("snapshot_create.before_ready");
    enum snap_state to;
    if (snap_transition(op->snap.state, SNAP_EV_SWITCHED, &to) == SNAP_STEP_STATE) {
        op->snap.state = to;
        op->snap.new_disk[0] = 0;
    }
    if (store_snapshot_update(op->c->store, &op->snap) != 0) {
        yerr_db(&op->err, store_errmsg(op->c->store)); /* the reconcile pass adopts it */
        op_end(op, false);
        return;
    }
    ctl_event(op->c, "vm", op->vm.name, "snapshot", "ok", "%s (%s-consistent)", op->snap.name,
              op->snap.consistency);
    op_end(op, true);
}

/* After the switch, whatever its outcome (op->err says): thaw, then go on. */
static void after_thaw(struct create_op *op);

static void on_thawed(void *ctx, json_t *r, const struct yerr *err)
{
    struct create_op *op = ctx;
    (void)r;
    if (err && !op->thaw_retried) {
        op->thaw_retried = true;
        ctl_vm_call(op->c, &op->vm, AV_GUEST_FSTHAW, vm_args(op), on_thawed, NULL, op);
        return;
    }
    if (err)
        ctl_event(op->c, "vm", op->vm.name, "snapshot", "error",
                  "could not thaw the guest's file systems: %s", err->message);
    else
        FAILPOINT("snapshot_create.after_thaw");
    after_thaw(op);
}

static void thaw_then(struct create_op *op)
{
    if (op->frozen)
        ctl_vm_call(op->c, &op->vm, AV_GUEST_FSTHAW, vm_args(op), on_thawed, NULL, op);
    else
        after_thaw(op);
}

/* What QEMU writes to, after a switch that failed. */
static void on_active(void *ctx, json_t *r, const struct yerr *err)
{
    struct create_op *op = ctx;
    const char *file = err ? "" : json_string_value(json_object_get(r, "file"));
    char nw[512];
    snaps_vm_file(op->c, &op->vm, op->snap.new_disk, nw, sizeof nw);
    if (file && !strcmp(file, nw)) {
        op->err.code = 0; /* the reply was lost, the switch was not */
    } else if (!file || !file[0]) {
        op->unknown = true; /* left for the reconcile pass */
    }
    thaw_then(op);
}

static void after_thaw(struct create_op *op)
{
    if (!op->err.code) {
        finish(op);
    } else if (op->unknown) {
        ctl_event(op->c, "vm", op->vm.name, "snapshot", "error",
                  "%s: QEMU does not answer; left for the reconcile pass", op->snap.name);
        op_end(op, false);
    } else {
        yerr_disk(&op->err, "%s", op->err.message); /* 507 when the disk is full */
        roll_back(op);
    }
}

static void on_switched(void *ctx, json_t *r, const struct yerr *err)
{
    struct create_op *op = ctx;
    (void)r;
    if (!err) {
        FAILPOINT("snapshot_create.after_switch");
        thaw_then(op);
        return;
    }
    op->err = *err;
    ctl_vm_call(op->c, &op->vm, AV_VM_ACTIVE_LAYER, vm_args(op), on_active, NULL, op);
}

static void do_switch(struct create_op *op)
{
    if (!op->frozen)
        ctl_event(op->c, "vm", op->vm.name, "snapshot", "info", "%s: crash-consistent (%s)",
                  op->snap.name, op->vm.state == VM_RUNNING ? op->why : "vm paused");
    snprintf(op->snap.consistency, sizeof op->snap.consistency,
             op->frozen ? "application" : "crash");
    ctl_vm_call(op->c, &op->vm, AV_VM_SNAPSHOT_SWITCH,
                json_pack("{s:s,s:s}", "vm", op->vm.id, "file", op->snap.new_disk), on_switched,
                NULL, op);
}

static void on_frozen(void *ctx, json_t *r, const struct yerr *err)
{
    struct create_op *op = ctx;
    (void)r;
    op->frozen = !err;
    if (err)
        snprintf(op->why, sizeof op->why, "%s", err->message);
    else
        FAILPOINT("snapshot_create.after_freeze");
    do_switch(op);
}

static void on_layer(void *ctx, json_t *r, const struct yerr *err)
{
    struct create_op *op = ctx;
    (void)r;
    if (err) {
        /* nothing was made: only the row goes */
        op->err = *err;
        enum snap_state to;
        if (snap_transition(op->snap.state, SNAP_EV_ROLLED_BACK, &to) == SNAP_STEP_GONE)
            store_snapshot_delete(op->c->store, op->snap.id);
        ctl_event(op->c, "vm", op->vm.name, "snapshot", "error", "%s: %s", op->snap.name,
                  err->message);
        op_end(op, false);
        return;
    }
    if (!op->live) {
        FAILPOINT("snapshot_create.after_layer");
        finish(op);
        return;
    }
    FAILPOINT("snapshot_create.after_live_layer");
    if (op->vm.state == VM_RUNNING)
        ctl_vm_call(op->c, &op->vm, AV_GUEST_FSFREEZE, vm_args(op), on_frozen, NULL, op);
    else
        do_switch(op);
}

/* Refuses what cannot be taken; fills snap (not written yet). */
static int validate(struct ctl *c, const struct vm_rec *vm, const char *name,
                    struct snapshot_rec *snap, struct yerr *err)
{
    char why[300];
    if (!name_valid(name, why, sizeof why))
        return yerr_set(err, YE_INVALID_ARGUMENT, "snapshot name: %s", why);
    if (!vm_state_live(vm->state) && !vm_state_down(vm->state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm->name,
                        vm_state_name(vm->state));
    struct snapshot_rec *s;
    size_t n;
    if (store_snapshot_list(c->store, vm->id, &s, &n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!snap_state_settled(s[i].state))
            rc = yerr_set(err, YE_CONFLICT, "vm '%s': snapshot '%s' is %s; try again later",
                          vm->name, s[i].name, snap_state_name(s[i].state));
    if (rc == 0 && n >= MAX_SNAPSHOTS)
        rc = yerr_set(err, YE_CONFLICT, "vm '%s' has %d snapshots, the most it may have", vm->name,
                      MAX_SNAPSHOTS);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!strcmp(s[i].name, name))
            rc = yerr_set(err, YE_CONFLICT, "vm '%s' already has a snapshot '%s'", vm->name, name);
    free(s);
    if (rc < 0)
        return -1;
    memset(snap, 0, sizeof *snap);
    uuid_generate_str(snap->id);
    snprintf(snap->vm_id, sizeof snap->vm_id, "%s", vm->id);
    snprintf(snap->name, sizeof snap->name, "%s", name);
    snprintf(snap->file, sizeof snap->file, "%s", vm->disk);
    snprintf(snap->parent, sizeof snap->parent, "%s", vm->disk_parent);
    snap->state = SNAP_CREATING;
    snprintf(snap->consistency, sizeof snap->consistency, "crash");
    char id[37];
    uuid_generate_str(id);
    snprintf(snap->new_disk, sizeof snap->new_disk, "disk-%.8s.qcow2", id);
    snap->created_at = now_ms();
    return 0;
}

int ctl_snapshot_create_start(struct ctl *c, const char *vmname, const char *name, char task_id[37],
                              struct yerr *err)
{
    struct vm_rec vm;
    if (ctl_vm_get(c, vmname, &vm, err) < 0 || !ctl_vm_agent(c, &vm, err))
        return -1; /* its host is down: 503, nothing changed */
    struct task_rec busy;
    if (task_busy(c->tasks, vm.id, &busy))
        return task_conflict(err, &busy);
    if (vm.pool[0]) /* its layers would be made in its directory, not the pool */
        return yerr_set(err, YE_CONFLICT,
                        "vm '%s' has its disk on pool %s; snapshots of it are not supported yet",
                        vm.name, vm.pool);
    struct create_op *op = calloc(1, sizeof *op);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->c = c;
    op->vm = vm;
    op->live = vm_state_live(vm.state);
    if (validate(c, &vm, name, &op->snap, err) < 0) {
        free(op);
        return -1;
    }
    struct task_rec k;
    if (task_begin(c->tasks, "snapshot.create", "vm", vm.id, vm.name, &k, err) < 0) {
        free(op);
        return -1;
    }
    snprintf(op->task, sizeof op->task, "%s", k.id);
    snprintf(task_id, 37, "%s", k.id);
    json_t *p = json_pack("{s:s,s:s}", "snapshot", op->snap.id, "name", op->snap.name);
    task_set_params(c->tasks, k.id, p);
    json_decref(p);
    op->next = ops;
    ops = op;
    ctl_snapshot_hold(op->snap.id, true);
    if (store_snapshot_insert(c->store, &op->snap) != 0) {
        yerr_db(&op->err, store_errmsg(c->store));
        *err = op->err;
        op_end(op, false);
        return 0; /* the task says so */
    }
    FAILPOINT("snapshot_create.after_row");
    ctl_vm_call(
        c, &vm, AV_VM_LAYER_CREATE,
        json_pack("{s:s,s:s,s:s}", "vm", vm.id, "file", op->snap.new_disk, "backing", vm.disk),
        on_layer, NULL, op);
    return 0;
}
