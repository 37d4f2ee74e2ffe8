/*
 * agent_vm.c - verbs about one VM's QEMU and its guest agent, over
 * src/compute, with no store access: everything a verb needs comes in its
 * arguments (the VM's id; its name only for messages).
 *
 *   vm.status  {"vm"} -> {"qmp": "running"|...|null, "guest": {...}|null}
 *              QEMU's run state as the open event connection last told it,
 *              and the guest facts cache (guest.c). Never waits on QEMU or
 *              the guest: "qmp" is null when yund holds no connection.
 *   vm.qmp     {"vm","command","arguments"?} -> {"return": ...}
 *              One QMP command over the event connection yund keeps open
 *              (qmp_watch_command: no connect, no handshake); an error when
 *              QEMU refuses it, YE_QEMU_ERROR when it gives no answer in 5 s
 *              or yund holds no connection to it.
 *   guest.exec {"vm","name","argv":[...],"timeout":S,"input":"..."}
 *              -> {"exitcode": n|null, "signal": n|null, "out_b64", "err_b64",
 *                  "truncated"}
 *              guest-exec, then guest-exec-status on a timer until the
 *              process exits or the timeout passes; every exchange goes
 *              through the VM's asynchronous agent client (qga.h). Raises
 *              "vm.exec" {vm, name, pid, cmd} once the guest process runs.
 *              Cancellable (the caller left): polling stops, the guest
 *              process runs on.
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/guest.h"
#include "compute/qga.h"
#include "compute/qmp.h"
#include "lib/base64.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_POLL_MS   100
#define EXEC_RETRIES   40
#define EXEC_MAX_S     3600
#define QGA_TIMEOUT_MS 3000

static json_t *facts_json(const struct guest_facts *f)
{
    json_t *g = json_pack("{s:b,s:i,s:I}", "answering", f->answering, "pending", f->pending,
                          "fetched_at", (json_int_t)f->fetched_at);
    if (!g)
        return NULL;
    if (!f->answering && f->error[0])
        json_object_set_new(g, "error", json_string(f->error));
    if (f->os[0])
        json_object_set_new(g, "os", json_string(f->os));
    if (f->hostname[0])
        json_object_set_new(g, "hostname", json_string(f->hostname));
    if (f->ip_addresses)
        json_object_set(g, "ip_addresses", f->ip_addresses);
    return g;
}

static void vm_status(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    struct vm_rt *rt = engine_rt_find(e, id);
    json_t *r = json_object();
    if (rt && rt->watch)
        json_object_set_new(r, "qmp", json_string(rt->qmp_status[0] ? rt->qmp_status : "unknown"));
    else
        json_object_set_new(r, "qmp", json_null());
    const struct guest_facts *f = guest_facts_get(e, id);
    json_object_set_new(r, "guest", f ? facts_json(f) : json_null());
    agent_op_reply(op, r, NULL);
}

/* ---- vm.qmp ---- */

#define VM_QMP_TIMEOUT_MS 5000

struct qmp_call {
    struct agent_op *op;
    struct engine *e;
    struct event *timer;
    char vm_id[37];
    char cmd[64];
};

static void qmp_call_free(struct qmp_call *q)
{
    struct vm_rt *rt = engine_rt_find(q->e, q->vm_id);
    if (rt)
        qmp_watch_forget(rt->watch, q);
    event_free(q->timer);
    free(q);
}

static void on_qmp_reply(void *ctx, json_t *ret, const char *err)
{
    struct qmp_call *q = ctx;
    if (err)
        agent_op_fail(q->op, YE_QEMU_ERROR, "QMP %s: %s", q->cmd, err);
    else
        agent_op_reply(q->op, json_pack("{s:O}", "return", ret ? ret : json_null()), NULL);
    qmp_call_free(q);
}

static void qmp_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct qmp_call *q = arg;
    /* QEMU gone (its connection closed with the command unanswered) or
     * too busy: the command may still take effect; the caller is told. */
    agent_op_fail(q->op, YE_QEMU_ERROR, "QMP %s: no answer from QEMU in %d s", q->cmd,
                  VM_QMP_TIMEOUT_MS / 1000);
    qmp_call_free(q);
}

static void qmp_cancel(struct agent_op *op, void *arg)
{
    struct qmp_call *q = arg;
    agent_op_fail(op, YE_CANCELLED, "QMP %s: cancelled", q->cmd);
    qmp_call_free(q);
}

static void vm_qmp(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    const char *cmd = json_string_value(json_object_get(args, "command"));
    json_t *qargs = json_object_get(args, "arguments");
    if (!cmd || !cmd[0] || strlen(cmd) >= 64 || (qargs && !json_is_object(qargs))) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.qmp takes a command (a string) and arguments (an object)");
        return;
    }
    struct vm_rt *rt = engine_rt_find(e, id);
    if (!rt || !rt->watch) {
        agent_op_fail(op, YE_QEMU_ERROR, "QMP %s: yund holds no connection to this VM's QEMU", cmd);
        return;
    }
    struct qmp_call *q = calloc(1, sizeof(*q));
    if (!q || !(q->timer = evtimer_new(al->base, qmp_timeout, q))) {
        free(q);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    q->op = op;
    q->e = e;
    snprintf(q->vm_id, sizeof(q->vm_id), "%s", id);
    snprintf(q->cmd, sizeof(q->cmd), "%s", cmd);
    if (qmp_watch_command(rt->watch, cmd, qargs, on_qmp_reply, q) < 0) {
        event_free(q->timer);
        free(q);
        agent_op_fail(op, YE_QEMU_ERROR, "QMP %s: too many commands in flight", cmd);
        return;
    }
    struct timeval tv = {VM_QMP_TIMEOUT_MS / 1000, 0};
    evtimer_add(q->timer, &tv);
    agent_op_on_cancel(op, qmp_cancel, q);
}

/* ---- guest.exec ---- */

struct exec_op {
    struct agent_op *op;
    struct agent_local *al;
    struct engine *e;
    struct event *timer;
    char vm_id[37];
    char vm[64];
    char cmd[128]; /* argv[0], for the event */
    long long pid;
    int64_t deadline;
    int failures; /* consecutive polls the agent did not answer */
};

static void exec_free(struct exec_op *x)
{
    event_free(x->timer);
    free(x);
}

static void exec_fail(struct exec_op *x, enum yerr_code code, const char *msg)
{
    agent_op_fail(x->op, code, "%s", msg);
    exec_free(x);
}

static void exec_gone(struct exec_op *x)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "vm '%s' stopped, or its guest agent went away, while guest pid %lld ran", x->vm,
             x->pid);
    exec_fail(x, YE_GUEST_AGENT, msg);
}

static void exec_cancel(struct agent_op *op, void *arg)
{
    struct exec_op *x = arg;
    agent_op_fail(op, YE_CANCELLED, "exec in vm '%s' cancelled", x->vm);
    /* an answer still on its way is dropped; the guest process runs on */
    qga_cancel(guest_agent(x->e, x->vm_id), x);
    exec_free(x);
}

static void exec_poll_later(struct exec_op *x, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(x->timer, &tv);
}

static void on_exec_status(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct exec_op *x = ctx;
    if (st == QGA_CANCELLED) {
        exec_gone(x);
        return;
    }
    /* A QEMU busy with a guest's heavy I/O (under TCG) can be slow to take
     * the agent socket's next client (refused, or closed at once); the
     * command runs on in the guest, so keep asking, backing off to once a
     * second, for up to about half a minute before giving up. */
    if (st == QGA_FAILED && ++x->failures <= EXEC_RETRIES && monotonic_ms() < x->deadline) {
        int ms = EXEC_POLL_MS * x->failures > 1000 ? 1000 : EXEC_POLL_MS * x->failures;
        exec_poll_later(x, ms);
        return;
    }
    char msg[400];
    if (st != QGA_OK) {
        snprintf(msg, sizeof msg, "guest-exec-status: %s", err);
        exec_fail(x, YE_GUEST_AGENT, msg);
        return;
    }
    x->failures = 0;
    if (json_is_true(json_object_get(ret, "exited"))) {
        json_t *code = json_object_get(ret, "exitcode"), *sig = json_object_get(ret, "signal");
        json_t *out = json_object_get(ret, "out-data"), *errd = json_object_get(ret, "err-data");
        json_t *r = json_pack("{s:O,s:O,s:s,s:s,s:b}", "exitcode",
                              json_is_integer(code) ? code : json_null(), "signal",
                              json_is_integer(sig) ? sig : json_null(), "out_b64",
                              json_is_string(out) ? json_string_value(out) : "", "err_b64",
                              json_is_string(errd) ? json_string_value(errd) : "", "truncated",
                              json_is_true(json_object_get(ret, "out-truncated")) ||
                                  json_is_true(json_object_get(ret, "err-truncated")));
        agent_op_reply(x->op, r, NULL);
        exec_free(x);
        return;
    }
    if (monotonic_ms() > x->deadline) {
        snprintf(msg, sizeof msg,
                 "command still running in vm '%s' after its timeout (guest pid %lld)", x->vm,
                 x->pid);
        exec_fail(x, YE_TIMEOUT, msg);
        return;
    }
    exec_poll_later(x, EXEC_POLL_MS);
}

static void exec_poll(evutil_socket_t fd, short what, void *arg)
{
    struct exec_op *x = arg;
    json_t *args = json_pack("{s:I}", "pid", (json_int_t)x->pid);
    int rc = qga_call(guest_agent(x->e, x->vm_id), "guest-exec-status", args, 0, QGA_TIMEOUT_MS,
                      on_exec_status, x);
    json_decref(args);
    if (rc < 0)
        exec_gone(x);
}

static void on_exec_started(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct exec_op *x = ctx;
    json_t *pid = json_object_get(ret, "pid");
    if (st != QGA_OK || !json_is_integer(pid)) {
        char msg[400];
        snprintf(msg, sizeof msg, "guest-exec: %s",
                 st == QGA_OK ? "the agent returned no pid" : err);
        exec_fail(x, YE_GUEST_AGENT, msg);
        return;
    }
    x->pid = json_integer_value(pid);
    json_t *ev = json_pack("{s:s,s:s,s:I,s:s}", "vm", x->vm_id, "name", x->vm, "pid",
                           (json_int_t)x->pid, "cmd", x->cmd);
    if (ev)
        agent_emit(&x->al->pub, "vm.exec", ev);
    json_decref(ev);
    exec_poll_later(x, 20);
}

static void guest_exec(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    const char *name = json_string_value(json_object_get(args, "name"));
    json_t *argv = json_object_get(args, "argv"), *to = json_object_get(args, "timeout"),
           *input = json_object_get(args, "input");
    size_t i;
    json_t *a;
    bool ok = json_is_array(argv) && json_array_size(argv) > 0 && json_array_size(argv) <= 256;
    json_array_foreach(argv, i, a) ok &= json_is_string(a);
    if (!ok ||
        (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
                json_integer_value(to) > EXEC_MAX_S)) ||
        (input && !json_is_string(input))) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: guest.exec takes argv (1..256 strings), timeout (1..%d s) and "
                      "input (a string)",
                      EXEC_MAX_S);
        return;
    }
    struct qga_client *qga = guest_agent(e, id);
    if (!qga) {
        agent_op_fail(op, YE_NO_GUEST_AGENT,
                      "vm '%s' has no guest agent running (it needs qemu-guest-agent inside, "
                      "e.g. the debian image)",
                      name ? name : id);
        return;
    }
    struct exec_op *x = calloc(1, sizeof(*x));
    if (!x || !(x->timer = evtimer_new(al->base, exec_poll, x))) {
        free(x);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    x->op = op;
    x->al = al;
    x->e = e;
    snprintf(x->vm_id, sizeof(x->vm_id), "%s", id);
    snprintf(x->vm, sizeof(x->vm), "%s", name ? name : id);
    snprintf(x->cmd, sizeof(x->cmd), "%s", json_string_value(json_array_get(argv, 0)));
    x->deadline = monotonic_ms() + 1000LL * (to ? json_integer_value(to) : 60);
    json_t *qa = json_pack("{s:O,s:b}", "path", json_array_get(argv, 0), "capture-output", 1);
    json_t *rest = json_array();
    for (i = 1; i < json_array_size(argv); i++)
        json_array_append(rest, json_array_get(argv, i));
    json_object_set_new(qa, "arg", rest);
    if (input) {
        char *enc = base64_encode(json_string_value(input), strlen(json_string_value(input)));
        json_object_set_new(qa, "input-data", json_string(enc ? enc : ""));
        free(enc);
    }
    int rc = qga_call(qga, "guest-exec", qa, 0, QGA_TIMEOUT_MS, on_exec_started, x);
    json_decref(qa);
    if (rc < 0) {
        event_free(x->timer);
        free(x);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    agent_op_on_cancel(op, exec_cancel, x);
}

const struct agent_verb_def agent_vm_verbs[] = {
    {AV_VM_STATUS, "vm.status", vm_status},
    {AV_GUEST_EXEC, "guest.exec", guest_exec},
    {AV_VM_QMP, "vm.qmp", vm_qmp},
};
const size_t agent_vm_verbs_count = sizeof agent_vm_verbs / sizeof agent_vm_verbs[0];
