/*
 * vms_ops.c - the controller's VM operations waiting for the agent
 * (create, stop, delete): the list of them, so a caller that goes away is
 * forgotten, a reconcile pass does not start a second one on the same VM,
 * and a stopping yund ends their tasks.
 */
#include "agent/agent.h"
#include "ctl/vms_int.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

struct ctl_vmop *ctl_vmop_new(struct ctl *c, const struct vm_rec *vm, ctl_vm_fn done, void *ctx)
{
    struct ctl_vmop *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->c = c;
    op->vm = *vm;
    op->done = done;
    op->ctx = ctx;
    op->next = c->vmops;
    c->vmops = op;
    return op;
}

void ctl_vmop_free(struct ctl_vmop *op)
{
    for (struct ctl_vmop **pp = &op->c->vmops; *pp; pp = &(*pp)->next)
        if (*pp == op) {
            *pp = op->next;
            break;
        }
    json_decref(op->args);
    free(op);
}

bool ctl_vmop_busy(struct ctl *c, const char *id)
{
    for (struct ctl_vmop *op = c->vmops; op; op = op->next)
        if (!strcmp(op->vm.id, id))
            return true;
    return false;
}

void ctl_vmop_finish(struct ctl_vmop *op, const struct vm_rec *vm, const struct yerr *err)
{
    ctl_vm_task_end(op->c, &op->task, err ? NULL : vm, err);
    if (op->done)
        op->done(op->ctx, err ? NULL : vm, err);
    ctl_vmop_free(op);
}

void ctl_vmop_no_call(struct yerr *err)
{
    yerr_set(err, YE_INTERNAL, "agent: the call could not be made");
}

void ctl_vmops_forget(struct ctl *c, void *ctx)
{
    for (struct ctl_vmop *op = c->vmops; op; op = op->next)
        if (op->ctx == ctx)
            op->done = NULL;
}

void ctl_vmops_shutdown(struct ctl *c)
{
    while (c->vmops) {
        struct ctl_vmop *op = c->vmops;
        c->vmops = op->next;
        ctl_agents_forget(c, op);
        struct yerr e;
        yerr_set(&e, YE_CANCELLED, "yund stopped");
        ctl_vm_task_end(c, &op->task, NULL, &e);
        json_decref(op->args);
        free(op);
    }
    ctl_stop_deadlines_free(c);
}

static void on_reaped(void *ctx, json_t *r, const struct yerr *err)
{
    struct ctl_vmop *op = ctx;
    if (err)
        log_warn("vm %s: ending its qemu: %s", op->vm.name, err->message);
    else if (!json_is_true(json_object_get(r, "ended")))
        log_warn("vm %s: its qemu could not be ended yet; the next pass retries", op->vm.name);
    ctl_vms_reconcile_soon(op->c); /* the next pass sees it gone */
    ctl_vmop_finish(op, NULL, NULL);
}

void ctl_vm_end_qemu(struct ctl *c, const struct vm_rec *vm)
{
    if (ctl_vmop_busy(c, vm->id))
        return; /* a delete or start in flight has it already */
    struct ctl_vmop *op = ctl_vmop_new(c, vm, NULL, NULL);
    if (!op)
        return;
    op->reconcile = true;
    json_t *a = json_pack("{s:s,s:I}", "vm", vm->id, "uid", (json_int_t)vm->uid);
    if (a && vm->pid > 0)
        json_object_set_new(a, "pid", json_integer(vm->pid));
    op->call = ctl_vm_call(c, &op->vm, AV_VM_END, a, on_reaped, NULL, op);
    if (!op->call) {
        log_warn("vm %s: its qemu cannot be ended: the agent call could not be made", vm->name);
        ctl_vmop_free(op);
    }
}
