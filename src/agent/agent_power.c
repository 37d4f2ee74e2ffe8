/*
 * agent_power.c - the verbs that stop a VM's QEMU, over src/compute, none of
 * them waiting on the loop: every QMP exchange goes over the event
 * connection yund keeps open (qmp_watch_command), every wait for a process
 * to go is an evtimer with a deadline. No store access: the VM's id (and
 * the uid its confined QEMU runs as) come in the arguments.
 *
 *   vm.powerdown {"vm"} -> {"via": "agent"|"acpi"}
 *              Asks the guest to power off: through the guest agent when it
 *              is up (guest.c presses the ACPI button if the agent does not
 *              take it), else the ACPI power button (system_powerdown).
 *              YE_QEMU_ERROR when yund holds no connection to the VM's QEMU
 *              or QEMU does not answer in 5 s.
 *   vm.quit    {"vm"} -> {}
 *              QMP quit. YE_QEMU_ERROR without a connection or an answer in
 *              2 s (the caller then ends the processes: vm.end).
 *   vm.end     {"vm","uid","pid"?,"kill"?} -> {"ended": bool}
 *              Ends every process of the VM, found by the process table (and
 *              its pidfile, and pid when given): SIGTERM, SIGKILL after 2 s
 *              (with "kill": true SIGKILL at once, so QEMU raises no clean
 *              SHUTDOWN: the end of a guest's reset loop),
 *              each pid checked to still be this VM's QEMU before each
 *              signal (a recycled pid is never hit). ended is false, not an
 *              error, when one may still live after 5 s or /proc could not
 *              be read.
 * The VM files verbs (vm.prepare, vm.remove) are in agent_vmfiles.c.
 */
#include "agent/agent_power.h"
#include "compute/engine.h"
#include "compute/guest.h"
#include "compute/qemu_proc.h"
#include "compute/qmp.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POWERDOWN_TIMEOUT_MS 5000
#define QUIT_TIMEOUT_MS      2000
#define END_POLL_MS          20
#define END_KILL_MS          2000
#define END_DEADLINE_MS      5000
#define END_MAX_PIDS         18

int agent_power_uid_arg(struct agent_op *op, json_t *args, uint32_t *uid)
{
    json_t *u = json_object_get(args, "uid");
    if (!json_is_integer(u) || json_integer_value(u) < 0 ||
        json_integer_value(u) > (json_int_t)UINT32_MAX ||
        (json_integer_value(u) != 0 && json_integer_value(u) < (json_int_t)QEMU_UID_FLOOR)) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: \"uid\" must be 0 or a confined uid (at least %u)", QEMU_UID_FLOOR);
        return -1;
    }
    *uid = (uint32_t)json_integer_value(u);
    return 0;
}

/* ---- one QMP command over the event connection ---- */

struct pw_qmp {
    struct agent_op *op;
    struct engine *e;
    struct event *timer;
    char vm_id[37];
    char cmd[32];
    int timeout_ms;
};

static void pw_qmp_free(struct pw_qmp *q)
{
    struct vm_rt *rt = engine_rt_find(q->e, q->vm_id);
    if (rt)
        qmp_watch_forget(rt->watch, q);
    event_free(q->timer);
    free(q);
}

static void on_pw_reply(void *ctx, json_t *ret, const char *err)
{
    struct pw_qmp *q = ctx;
    if (err)
        agent_op_fail(q->op, YE_QEMU_ERROR, "QMP %s: %s", q->cmd, err);
    else if (!strcmp(q->cmd, "system_powerdown"))
        agent_op_reply(q->op, json_pack("{s:s}", "via", "acpi"), NULL);
    else
        agent_op_ok(q->op);
    pw_qmp_free(q);
}

static void pw_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pw_qmp *q = arg;
    agent_op_fail(q->op, YE_QEMU_ERROR, "QMP %s: no answer from QEMU in %d ms", q->cmd,
                  q->timeout_ms);
    pw_qmp_free(q);
}

static void pw_cancel(struct agent_op *op, void *arg)
{
    struct pw_qmp *q = arg;
    agent_op_fail(op, YE_CANCELLED, "QMP %s: cancelled", q->cmd);
    pw_qmp_free(q);
}

static void pw_send(struct agent_local *al, struct agent_op *op, struct engine *e, const char *id,
                    const char *cmd, int timeout_ms)
{
    struct vm_rt *rt = engine_rt_find(e, id);
    if (!rt || !rt->watch) {
        agent_op_fail(op, YE_QEMU_ERROR, "QMP %s: yund holds no connection to this VM's QEMU", cmd);
        return;
    }
    struct pw_qmp *q = calloc(1, sizeof *q);
    if (!q || !(q->timer = evtimer_new(al->base, pw_timeout, q))) {
        free(q);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    q->op = op;
    q->e = e;
    q->timeout_ms = timeout_ms;
    snprintf(q->vm_id, sizeof q->vm_id, "%s", id);
    snprintf(q->cmd, sizeof q->cmd, "%s", cmd);
    if (qmp_watch_command(rt->watch, cmd, NULL, on_pw_reply, q) < 0) {
        event_free(q->timer);
        free(q);
        agent_op_fail(op, YE_QEMU_ERROR, "QMP %s: too many commands in flight", cmd);
        return;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(q->timer, &tv);
    agent_op_on_cancel(op, pw_cancel, q);
}

static void vm_powerdown(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    struct vm_rt *rt = engine_rt_find(e, id);
    if (rt && rt->watch) {
        /* guest.c looks at the VM's runtime only (its agent socket); the
         * row's part is that it is stopping */
        struct vm_rec probe = {.state = VM_STOPPING};
        snprintf(probe.id, sizeof probe.id, "%s", id);
        snprintf(probe.name, sizeof probe.name, "%s", rt->name);
        if (guest_request_shutdown(e, &probe)) {
            agent_op_reply(op, json_pack("{s:s}", "via", "agent"), NULL);
            return;
        }
    }
    pw_send(al, op, e, id, "system_powerdown", POWERDOWN_TIMEOUT_MS);
}

static void vm_quit(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (id)
        pw_send(al, op, e, id, "quit", QUIT_TIMEOUT_MS);
}

/* ---- vm.end ---- */

struct end_op {
    struct agent_op *op;
    struct event *timer;
    char vm_id[37];
    uint32_t uid;
    pid_t pids[END_MAX_PIDS];
    size_t n;
    bool unsure; /* /proc unreadable, or more processes than we hold */
    bool killed;
    int64_t t0;
};

static void end_add(struct end_op *x, pid_t pid)
{
    if (pid <= 1)
        return;
    for (size_t i = 0; i < x->n; i++)
        if (x->pids[i] == pid)
            return;
    if (x->n == END_MAX_PIDS) {
        x->unsure = true;
        return;
    }
    x->pids[x->n++] = pid;
}

/* Signals every pid still this VM's; true when none is left. */
static bool end_signal(struct end_op *x, int sig)
{
    bool gone = true;
    for (size_t i = 0; i < x->n; i++) {
        if (!x->pids[i])
            continue;
        enum pid_state ps = qemu_pid_state(x->pids[i], x->vm_id, x->uid);
        if (ps == PID_GONE) {
            x->pids[i] = 0;
            continue;
        }
        gone = false;
        if (ps == PID_UNKNOWN)
            continue; /* never signal a pid we cannot identify */
        if (sig)
            kill(x->pids[i], sig);
    }
    return gone;
}

static void end_finish(struct end_op *x, bool ended)
{
    if (!ended)
        log_warn("vm %s: a qemu of it may still run", x->vm_id);
    agent_op_reply(x->op, json_pack("{s:b}", "ended", ended), NULL);
    event_free(x->timer);
    free(x);
}

static void end_tick(evutil_socket_t fd, short what, void *arg)
{
    struct end_op *x = arg;
    int64_t t = monotonic_ms() - x->t0;
    int sig = 0;
    if (t >= END_KILL_MS && !x->killed) {
        x->killed = true;
        sig = SIGKILL;
    }
    if (end_signal(x, sig)) {
        end_finish(x, !x->unsure);
        return;
    }
    if (t >= END_DEADLINE_MS) {
        end_finish(x, false);
        return;
    }
    struct timeval tv = {0, END_POLL_MS * 1000};
    evtimer_add(x->timer, &tv);
}

static void end_cancel(struct agent_op *op, void *arg)
{
    struct end_op *x = arg;
    agent_op_fail(op, YE_CANCELLED, "vm %s: ending its qemu cancelled", x->vm_id);
    event_free(x->timer);
    free(x);
}

static void vm_end(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    uint32_t uid;
    if (!id || agent_power_uid_arg(op, args, &uid) < 0)
        return;
    json_t *pj = json_object_get(args, "pid");
    if (pj && !json_is_null(pj) &&
        (!json_is_integer(pj) || json_integer_value(pj) < 0 || json_integer_value(pj) > INT_MAX)) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: \"pid\" must be a process id");
        return;
    }
    json_t *kj = json_object_get(args, "kill");
    if (kj && !json_is_boolean(kj)) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: \"kill\" must be true or false");
        return;
    }
    struct end_op *x = calloc(1, sizeof *x);
    if (!x || !(x->timer = evtimer_new(al->base, end_tick, x))) {
        free(x);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    x->op = op;
    x->uid = uid;
    x->t0 = monotonic_ms();
    snprintf(x->vm_id, sizeof x->vm_id, "%s", id);
    struct qemu_scan scan;
    if (qemu_scan_run(e->vms_dir, &scan) < 0)
        x->unsure = true;
    pid_t found[16];
    size_t n = qemu_scan_pids(&scan, id, uid, found, 16);
    if (n > 16)
        x->unsure = true;
    for (size_t i = 0; i < n && i < 16; i++)
        end_add(x, found[i]);
    /* the pidfile's pid too: a scan that missed it must not let it live */
    pid_t known = 0;
    enum qemu_seen seen = qemu_seek(e->vms_dir, id, uid, &scan, &known);
    qemu_scan_free(&scan);
    if (seen == QEMU_UNSURE)
        x->unsure = true;
    if (seen == QEMU_UP)
        end_add(x, known);
    if (json_is_integer(pj))
        end_add(x, (pid_t)json_integer_value(pj));
    /* QEMU takes SIGTERM as a quit (a clean SHUTDOWN event first) */
    x->killed = json_is_true(kj);
    if (end_signal(x, x->killed ? SIGKILL : SIGTERM)) {
        end_finish(x, !x->unsure);
        return;
    }
    struct timeval tv = {0, END_POLL_MS * 1000};
    evtimer_add(x->timer, &tv);
    agent_op_on_cancel(op, end_cancel, x);
}

const struct agent_verb_def agent_power_verbs[] = {
    {AV_VM_POWERDOWN, "vm.powerdown", vm_powerdown},
    {AV_VM_QUIT, "vm.quit", vm_quit},
    {AV_VM_END, "vm.end", vm_end},
    {AV_VM_PREPARE, "vm.prepare", agent_vm_prepare},
    {AV_VM_REMOVE, "vm.remove", agent_vm_remove},
};
const size_t agent_power_verbs_count = sizeof agent_power_verbs / sizeof agent_power_verbs[0];
