/*
 * vms_stop.c - the controller's side of stopping a VM: the row (stopping,
 * its deadline: part of the intent, so a yund restarted in the grace period
 * re-arms it), the agent asked (vm.powerdown; for force-stop vm.quit, then
 * vm.end when QEMU does not answer), the event, the task. And the
 * deadline: when it passes the controller decides to quit QEMU (vm.quit),
 * and long past it to end its processes (vm.end). No step waits on the
 * loop; the exit itself is noticed by the engine (EOF on QMP).
 */
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/vms_int.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Past the deadline by this much, a QEMU told to quit and still there has
 * its processes ended. */
#define OVERDUE_MS 10000

static json_t *end_args(const struct vm_rec *vm)
{
    json_t *a = json_pack("{s:s,s:I}", "vm", vm->id, "uid", (json_int_t)vm->uid);
    if (a && vm->pid > 0)
        json_object_set_new(a, "pid", json_integer(vm->pid));
    return a;
}

/* ---- the deadline ---- */

struct ctl_deadline {
    struct ctl_deadline *next;
    struct ctl *c;
    char vm_id[37];
    struct event *ev;
    bool busy; /* a quit or end asked for it is in flight */
};

static void deadline_free(struct ctl_deadline *d)
{
    for (struct ctl_deadline **pp = &d->c->deadlines; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    ctl_agents_forget(d->c, d);
    event_free(d->ev);
    free(d);
}

void ctl_stop_deadline_drop(struct ctl *c, const char *id)
{
    for (struct ctl_deadline *d = c->deadlines; d; d = d->next)
        if (!strcmp(d->vm_id, id)) {
            deadline_free(d);
            return;
        }
}

void ctl_stop_deadlines_free(struct ctl *c)
{
    while (c->deadlines)
        deadline_free(c->deadlines);
}

static void on_deadline_end(void *ctx, json_t *r, const struct yerr *err)
{
    struct ctl_deadline *d = ctx;
    d->busy = false;
    if (err)
        log_warn("vm %s: ending its qemu after the stop deadline: %s", d->vm_id, err->message);
    else if (!json_is_true(json_object_get(r, "ended")))
        log_warn("vm %s: its qemu could not be ended yet; the next pass retries", d->vm_id);
}

static void on_deadline_quit(void *ctx, json_t *r, const struct yerr *err)
{
    struct ctl_deadline *d = ctx;
    struct vm_rec vm;
    if (!err || store_vm_get(d->c->store, d->vm_id, &vm) != 0 || vm.state != VM_STOPPING) {
        d->busy = false;
        return;
    }
    /* QEMU did not take the quit: its processes are ended */
    ctl_vm_call(d->c, &vm, AV_VM_END, end_args(&vm), on_deadline_end, NULL, d);
}

static void deadline_fire(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_deadline *d = arg;
    struct ctl *c = d->c;
    struct vm_rec vm;
    if (store_vm_get(c->store, d->vm_id, &vm) != 0 || vm.state != VM_STOPPING) {
        deadline_free(d);
        return;
    }
    bool overdue = vm.stop_deadline && now_ms() - vm.stop_deadline > OVERDUE_MS;
    if (!overdue)
        ctl_event(c, "vm", vm.name, "stop", "info", "guest did not power off in time: %s",
                  "quitting QEMU");
    FAILPOINT("vm_stop.before_quit");
    d->busy = true;
    if (overdue)
        ctl_vm_call(c, &vm, AV_VM_END, end_args(&vm), on_deadline_end, NULL, d);
    else
        ctl_vm_call(c, &vm, AV_VM_QUIT, json_pack("{s:s}", "vm", vm.id), on_deadline_quit, NULL, d);
}

void ctl_stop_deadline_arm(struct ctl *c, const struct vm_rec *vm)
{
    if (vm->state != VM_STOPPING || !vm->stop_deadline)
        return;
    struct ctl_deadline *d = c->deadlines;
    while (d && strcmp(d->vm_id, vm->id))
        d = d->next;
    if (!d) {
        d = calloc(1, sizeof *d);
        if (!d || !(d->ev = evtimer_new(c->base, deadline_fire, d))) {
            free(d);
            return;
        }
        d->c = c;
        snprintf(d->vm_id, sizeof d->vm_id, "%s", vm->id);
        d->next = c->deadlines;
        c->deadlines = d;
    }
    if (d->busy || evtimer_pending(d->ev, NULL))
        return;
    int64_t left = vm->stop_deadline - now_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(d->ev, &tv);
}

/* ---- stop and force-stop ---- */

static void stop_ok(struct ctl_vmop *op, const char *msg)
{
    struct ctl *c = op->c;
    const char *an = op->force ? "force-stop" : "stop";
    ctl_event(c, "vm", op->vm.name, an, "ok", "%s", msg);
    struct vm_rec now;
    struct yerr err = {0};
    if (ctl_vm_get(c, op->vm.id, &now, &err) < 0) {
        ctl_vmop_finish(op, NULL, &err);
        return;
    }
    ctl_vmop_finish(op, &now, NULL);
}

static void stop_fail(struct ctl_vmop *op, const struct yerr *err)
{
    ctl_event(op->c, "vm", op->vm.name, op->force ? "force-stop" : "stop", "error", "%s",
              err->message);
    ctl_vmop_finish(op, NULL, err);
}

static void on_powerdown(void *ctx, json_t *r, const struct yerr *err)
{
    struct ctl_vmop *op = ctx;
    /* the deadline is armed either way: the row says stopping */
    ctl_stop_deadline_arm(op->c, &op->vm);
    if (err) {
        stop_fail(op, err);
        return;
    }
    FAILPOINT("vm_stop.after_powerdown");
    const char *via = json_string_value(json_object_get(r, "via"));
    stop_ok(op, via && !strcmp(via, "agent")
                    ? "guest agent asked to power off (ACPI button if it does not answer)"
                    : "ACPI power button pressed");
}

static void on_force_end(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct ctl_vmop *op = ctx;
    if (aerr || !json_is_true(json_object_get(r, "ended"))) {
        struct yerr err;
        ctl_event(op->c, "vm", op->vm.name, "force-stop", "error",
                  "its qemu could not be ended yet");
        ctl_stop_deadline_arm(op->c, &op->vm);
        yerr_set(&err, YE_UNAVAILABLE,
                 "vm '%s': its qemu could not be ended yet; the stop deadline retries",
                 op->vm.name);
        ctl_vmop_finish(op, NULL, &err);
        return;
    }
    stop_ok(op, "");
}

static void on_force_quit(void *ctx, json_t *r, const struct yerr *err)
{
    struct ctl_vmop *op = ctx;
    if (!err) {
        stop_ok(op, "");
        return;
    }
    /* QMP can be unanswered (a QEMU still starting up): then every process
     * of the VM, found by the process table, is ended */
    op->call = ctl_vm_call(op->c, &op->vm, AV_VM_END, end_args(&op->vm), on_force_end, NULL, op);
    if (!op->call) {
        struct yerr e;
        ctl_vmop_no_call(&e);
        stop_fail(op, &e);
    }
}

int ctl_vm_stop(struct ctl *c, const char *name, bool force, ctl_vm_fn done, void *ctx,
                struct yerr *err)
{
    enum vm_action a = force ? ACT_FORCE_STOP : ACT_STOP;
    struct vm_rec vm;
    char why[256];
    if (ctl_vm_get(c, name, &vm, err) < 0)
        return -1;
    if (vm_action_check(&vm, a, false, why, sizeof why) < 0)
        return yerr_set(err, YE_CONFLICT, "%s", why);
    if (!ctl_vm_agent(c, &vm, err))
        return -1; /* its host is down: 503, nothing changed */
    struct ctl_vmop *op = ctl_vmop_new(c, &vm, done, ctx);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->force = force;
    if (ctl_vm_task_begin(c, force ? "vm.force-stop" : "vm.stop", &vm, &op->task, err) < 0) {
        ctl_vmop_free(op);
        return -1;
    }
    /* Intent first: the deadline is part of it. */
    vm.desired = WANT_STOPPED;
    vm.state = VM_STOPPING;
    vm.stop_deadline = now_ms() + (force ? 0 : (int64_t)c->cfg->stop_timeout_s * 1000);
    vm.updated_at = now_ms();
    if (store_vm_update(c->store, &vm) != 0) {
        yerr_db(err, store_errmsg(c->store));
        ctl_vm_task_end(c, &op->task, NULL, err);
        ctl_vmop_free(op);
        return -1;
    }
    op->vm = vm;
    if (force)
        FAILPOINT("vm_stop.force_after_row");
    else
        FAILPOINT("vm_stop.after_row");
    op->call =
        ctl_vm_call(c, &vm, force ? AV_VM_QUIT : AV_VM_POWERDOWN, json_pack("{s:s}", "vm", vm.id),
                    force ? on_force_quit : on_powerdown, NULL, op);
    if (!op->call) {
        /* not begun after all: done never runs (the row says stopping;
         * reconcile arms its deadline) */
        ctl_vmop_no_call(err);
        op->done = NULL;
        stop_fail(op, err);
        return -1;
    }
    return 0;
}
