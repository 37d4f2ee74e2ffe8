/*
 * agent_local.c - the in-process agent's call mechanism: a queue of calls in
 * flight, replies delivered from the event loop, cancel and forget. The
 * verbs themselves are in agent_*.c.
 */
#include "agent/agent_local.h"
#include "agent/agent_fence.h"
#include "agent/agent_record.h"
#include "compute/engine.h"
#include "lib/log.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent_op {
    struct agent_op *next;
    struct agent_local *al;
    uint64_t id;
    enum agent_verb verb;
    agent_reply_fn done;
    agent_progress_fn progress;
    void *ctx;
    bool forgotten; /* the caller's ctx is gone: deliver nothing */
    bool replied;
    bool cancelled;
    json_t *result;
    struct yerr err;
    agent_op_cancel_fn cancel_fn;
    void *cancel_arg;
    struct event *deliver;
    char vm[37]; /* vm.end, vm.remove: the VM, for the agent's record */
};

/* one table a line, so additions merge */
/* clang-format off */
static const struct {
    const struct agent_verb_def *rows;
    const size_t *count;
} tables[] = {
    {agent_host_verbs, &agent_host_verbs_count},     {agent_vm_verbs, &agent_vm_verbs_count},
    {agent_launch_verbs, &agent_launch_verbs_count}, {agent_power_verbs, &agent_power_verbs_count},
    {agent_console_verbs, &agent_console_verbs_count},
    {agent_disk_verbs, &agent_disk_verbs_count},
    {agent_fetch_verbs, &agent_fetch_verbs_count},
    {agent_snap_verbs, &agent_snap_verbs_count},
    {agent_merge_verbs, &agent_merge_verbs_count},
    {agent_hotplug_verbs, &agent_hotplug_verbs_count},
    {agent_sample_verbs, &agent_sample_verbs_count},
    {agent_attach_verbs, &agent_attach_verbs_count},
    {agent_migrate_verbs, &agent_migrate_verbs_count},
    {agent_pin_verbs, &agent_pin_verbs_count},
    {agent_link_verbs, &agent_link_verbs_count},
    {agent_switch_verbs, &agent_switch_verbs_count},
    {agent_xfer_verbs, &agent_xfer_verbs_count},
};
/* clang-format on */

const struct agent_verb_def *agent_local_verb(enum agent_verb v)
{
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (size_t i = 0; i < *tables[t].count; i++)
            if (tables[t].rows[i].verb == v)
                return &tables[t].rows[i];
    return NULL;
}

static void op_unlink_free(struct agent_op *op)
{
    struct agent_op **pp = &op->al->ops;
    while (*pp && *pp != op)
        pp = &(*pp)->next;
    if (*pp)
        *pp = op->next;
    if (op->deliver)
        event_free(op->deliver);
    json_decref(op->result);
    free(op);
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent_op *op = arg;
    if (!op->forgotten && op->done)
        op->done(op->ctx, op->err.code ? NULL : op->result, op->err.code ? &op->err : NULL);
    op_unlink_free(op);
}

void agent_op_reply(struct agent_op *op, json_t *result, const struct yerr *err)
{
    if (op->replied) {
        json_decref(result);
        return;
    }
    op->replied = true;
    if (err && err->code) {
        op->err = *err;
        json_decref(result);
    } else {
        op->result = result ? result : json_object();
        /* a VM ended or removed has no QEMU left to find again */
        if (op->vm[0] &&
            (op->verb == AV_VM_REMOVE || json_is_true(json_object_get(op->result, "ended")))) {
            agent_record_forget(op->al->record, op->vm, 0);
            agent_fence_unwatch(op->al->fence, op->vm);
        }
    }
    event_active(op->deliver, EV_TIMEOUT, 1);
}

void agent_op_ok(struct agent_op *op)
{
    agent_op_reply(op, json_object(), NULL);
}

void agent_op_fail(struct agent_op *op, enum yerr_code code, const char *fmt, ...)
{
    struct yerr e;
    char msg[sizeof e.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    yerr_set(&e, code, "%s", msg);
    agent_op_reply(op, NULL, &e);
}

void agent_op_progress(struct agent_op *op, uint64_t done, uint64_t total)
{
    if (!op->replied && !op->forgotten && op->progress)
        op->progress(op->ctx, done, total);
}

void agent_op_on_cancel(struct agent_op *op, agent_op_cancel_fn fn, void *arg)
{
    op->cancel_fn = fn;
    op->cancel_arg = arg;
}

bool agent_op_cancelled(const struct agent_op *op)
{
    return op->cancelled;
}
uint64_t agent_op_id(const struct agent_op *op)
{
    return op->id;
}
struct engine *agent_op_host(struct agent_local *al, struct agent_op *op)
{
    if (!al->host)
        agent_op_fail(op, YE_UNAVAILABLE, "agent: no compute engine on this host");
    return al->host;
}

const char *agent_op_vm_id(struct agent_op *op, json_t *args)
{
    const char *id = json_string_value(json_object_get(args, "vm"));
    if (!id || !id[0] || strlen(id) > 36 || strspn(id, "0123456789abcdef-") != strlen(id)) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: \"vm\" must be a VM id");
        return NULL;
    }
    return id;
}

struct agent_local *agent_op_agent(struct agent_op *op)
{
    return op->al;
}

static uint64_t local_call(struct agent *a, enum agent_verb v, json_t *args, agent_reply_fn done,
                           agent_progress_fn progress, void *ctx)
{
    struct agent_local *al = agent_local_of(a);
    struct agent_op *op = calloc(1, sizeof *op);
    if (!op) {
        json_decref(args);
        log_err("agent: out of memory");
        return 0;
    }
    op->al = al;
    op->id = ++al->next_id;
    op->verb = v;
    op->done = done;
    op->progress = progress;
    op->ctx = ctx;
    op->deliver = event_new(al->base, -1, 0, deliver_cb, op);
    if (!op->deliver) {
        free(op);
        json_decref(args);
        return 0;
    }
    op->next = al->ops;
    al->ops = op;
    if (!args)
        args = json_object();
    const struct agent_verb_def *d = agent_local_verb(v);
    if ((v == AV_VM_END || v == AV_VM_REMOVE) && json_is_object(args))
        snprintf(op->vm, sizeof op->vm, "%s",
                 json_string_value(json_object_get(args, "vm"))
                     ? json_string_value(json_object_get(args, "vm"))
                     : "");
    if (!json_is_object(args))
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: arguments must be a JSON object");
    else if (!d || !d->run)
        agent_op_fail(op, YE_NOT_IMPLEMENTED, "agent: verb %d is not implemented here", (int)v);
    else
        d->run(al, op, args);
    json_decref(args);
    return op->id;
}

static int local_cancel(struct agent *a, uint64_t id)
{
    for (struct agent_op *op = agent_local_of(a)->ops; op; op = op->next)
        if (op->id == id) {
            if (op->replied || !op->cancel_fn)
                return -1;
            if (!op->cancelled) {
                op->cancelled = true;
                op->cancel_fn(op, op->cancel_arg);
            }
            return 0;
        }
    return -1;
}

static void local_forget(struct agent *a, void *ctx)
{
    for (struct agent_op *op = agent_local_of(a)->ops; op; op = op->next)
        if (op->ctx == ctx)
            op->forgotten = true;
}

static void local_free(struct agent *a)
{
    struct agent_local *al = agent_local_of(a);
    agent_fetch_free(al); /* their threads ended first */
    agent_link_free(al);
    agent_xfer_free(al);
    /* Calls still running (a wait on a timer) are cancelled, so their
     * state goes with them; the rest are undelivered replies. */
    for (struct agent_op *op = al->ops; op; op = op->next)
        if (!op->replied && op->cancel_fn && !op->cancelled) {
            op->cancelled = true;
            op->forgotten = true;
            op->cancel_fn(op, op->cancel_arg);
        }
    while (al->ops) {
        struct agent_op *op = al->ops;
        if (!op->replied)
            log_warn("agent: call %llu (%s) still running at shutdown", (unsigned long long)op->id,
                     agent_verb_name(op->verb));
        op->forgotten = true;
        op_unlink_free(op);
    }
    agent_sample_free(al);
    agent_attach_free(al);
    agent_conhub_free(al);
    agent_balloon_free(al);
    free(al);
}

static const struct agent_ops local_ops = {.call = local_call,
                                           .cancel = local_cancel,
                                           .forget = local_forget,
                                           .free = local_free,
                                           .console_open = agent_conhub_open,
                                           .console_forget = agent_conhub_forget};

/* The engine's host events (a QEMU event, an exit) go to the subscribers
 * as they are: plain JSON naming the VM. */
static void on_host_notify(void *ctx, const char *type, json_t *ev)
{
    struct agent_local *al = ctx;
    if (!strcmp(type, "vm.exited")) {
        const char *vm = json_string_value(json_object_get(ev, "vm"));
        agent_record_forget(al->record, vm, (pid_t)json_integer_value(json_object_get(ev, "pid")));
        if (vm)
            agent_fence_unwatch(al->fence, vm);
    }
    agent_emit(&al->pub, type, ev);
}

struct agent *agent_local_new(struct event_base *base, const struct yun_config *cfg, void *host)
{
    struct agent_local *al = calloc(1, sizeof *al);
    if (!al)
        return NULL;
    al->pub.ops = &local_ops;
    snprintf(al->pub.host, sizeof al->pub.host, "local");
    al->base = base;
    al->cfg = cfg;
    al->host = host;
    struct engine *e = host;
    if (e) {
        e->notify = on_host_notify;
        e->notify_ctx = al;
    }
    agent_disk_end_orphans(al);
    agent_merge_attach(al);
    agent_balloon_start(al);
    return &al->pub;
}
