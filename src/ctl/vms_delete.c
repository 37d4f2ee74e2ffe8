/*
 * vms_delete.c - the controller's side of deleting a VM: the row
 * "deleting" (intent first), then the agent ends its processes (vm.end) and
 * removes what it owns on the host (vm.remove: cgroups, directory, uid
 * claim), then its attachments and snapshot rows are settled and the row
 * goes. Reconcile hands over every "deleting" row and every "creating" one
 * (a create yund did not finish is rolled back the same way). No step
 * waits on the loop; a QEMU that cannot be ended keeps the row for the next
 * pass.
 */
#include "agent/agent.h"
#include "ctl/pools.h"
#include "ctl/hosts.h"
#include "compute/engine.h"
#include "storage/volstate.h"
#include "ctl/vms_int.h"
#include "ctl/volumes.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void del_fail(struct ctl_vmop *op, const struct yerr *err)
{
    if (op->reconcile) {
        log_warn("vm %s: %s", op->vm.name, err->message);
        ctl_vmop_finish(op, NULL, err);
        return;
    }
    ctl_event(op->c, "vm", op->vm.name, "delete", "error", "%s", err->message);
    ctl_vmop_finish(op, NULL, err);
}

static void on_removed(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct ctl_vmop *op = ctx;
    struct ctl *c = op->c;
    if (aerr) {
        del_fail(op, aerr);
        return;
    }
    /* the state of record: attachments released, snapshot rows, the row */
    ctl_volumes_vm_deleted(c, &op->vm);
    if (store_vm_delete(c->store, op->vm.id) != 0) {
        struct yerr err;
        yerr_db(&err, store_errmsg(c->store));
        del_fail(op, &err);
        return;
    }
    ctl_stop_deadline_drop(c, op->vm.id);
    bool creating = op->vm.state == VM_CREATING;
    if (op->reconcile)
        ctl_event(c, "vm", op->vm.name, creating ? "create" : "delete", creating ? "error" : "ok",
                  "%s",
                  creating ? "rolled back: yund stopped before the create finished"
                           : "finished after yund restart");
    else
        ctl_event(c, "vm", op->vm.name, "delete", "ok", "%s", op->force ? "forced" : "");
    ctl_vmop_finish(op, NULL, NULL);
}

void ctl_vm_remove_run(struct ctl_vmop *op)
{
    op->call = ctl_vm_call(op->c, &op->vm, AV_VM_REMOVE, ctl_vm_remove_args(op->c, &op->vm),
                           on_removed, NULL, op);
    if (!op->call) {
        struct yerr e;
        ctl_vmop_no_call(&e);
        del_fail(op, &e);
    }
}

static void on_ended(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct ctl_vmop *op = ctx;
    if (aerr || !json_is_true(json_object_get(r, "ended"))) {
        struct yerr err;
        yerr_set(&err, YE_UNAVAILABLE,
                 "vm '%s': its qemu could not be ended yet; the delete is retried", op->vm.name);
        del_fail(op, &err);
        return;
    }
    FAILPOINT("vm_delete.after_qemu_end");
    ctl_vm_remove_run(op);
}

/* false (op finished, done not called) when the call could not be made */
static bool delete_run(struct ctl_vmop *op, struct yerr *err)
{
    json_t *a = json_pack("{s:s,s:I}", "vm", op->vm.id, "uid", (json_int_t)op->vm.uid);
    if (a && op->vm.pid > 0)
        json_object_set_new(a, "pid", json_integer(op->vm.pid));
    op->call = ctl_vm_call(op->c, &op->vm, AV_VM_END, a, on_ended, NULL, op);
    if (!op->call) {
        ctl_vmop_no_call(err);
        op->done = NULL;
        del_fail(op, err);
        return false;
    }
    return true;
}

void ctl_vm_finish_delete(struct ctl *c, const struct vm_rec *vm)
{
    if (ctl_vmop_busy(c, vm->id))
        return; /* its create or delete is under way */
    struct ctl_vmop *op = ctl_vmop_new(c, vm, NULL, NULL);
    if (!op)
        return;
    op->reconcile = true;
    struct yerr err;
    delete_run(op, &err);
}

int ctl_vm_delete(struct ctl *c, const char *name, bool force, ctl_vm_fn done, void *ctx,
                  struct yerr *err)
{
    struct vm_rec vm;
    if (ctl_vm_get(c, name, &vm, err) < 0)
        return -1;
    char why[256];
    if (vm.state != VM_DELETING && vm_action_check(&vm, ACT_DELETE, force, why, sizeof(why)) < 0)
        return yerr_set(err, YE_CONFLICT, "%s", why);
    if (ctl_vmop_busy(c, vm.id))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is being %s", vm.name,
                        vm.state == VM_CREATING ? "created" : "deleted");
    if (!ctl_vm_agent(c, &vm, err))
        return -1; /* its files are on a host that is down: 503, nothing changed */
    struct ctl_vmop *op = ctl_vmop_new(c, &vm, done, ctx);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->force = force;
    if (ctl_vm_task_begin(c, "vm.delete", &vm, &op->task, err) < 0) {
        ctl_vmop_free(op);
        return -1;
    }
    vm.state = VM_DELETING;
    vm.desired = WANT_DELETED;
    vm.updated_at = now_ms();
    if (store_vm_update(c->store, &vm) != 0) {
        yerr_db(err, store_errmsg(c->store));
        ctl_vm_task_end(c, &op->task, NULL, err);
        ctl_vmop_free(op);
        return -1;
    }
    op->vm = vm;
    FAILPOINT("vm_delete.after_row");
    return delete_run(op, err) ? 0 : -1;
}
