/*
 * vms_events.c - what the host's events mean for the state of record. The
 * agent raises them on its own (agent.h): "vm.qmp_event" (a QMP event of a
 * VM's QEMU), "vm.exited" (its QEMU is gone), "vm.guest" (the guest agent
 * fell silent or answers again), "vm.powerdown" (a power-off the guest
 * agent did not take), "vm.balloon" (the host's balloon policy moved a
 * target). Here they move the VM row on, are recorded in the
 * event log (rate-limited: vm_guard.c), and start what the VM's policy
 * asks for: a restart after a crash, the end of a reset loop.
 *
 * The controller keeps a little memory per VM (struct ctl_vmrt: the event
 * guard and the restart timer); everything durable is the row.
 */
#include "agent/agent.h"
#include "compute/vm_guard.h"
#include "ctl/ctl.h"
#include "ctl/vms_int.h"
#include "ctl/volumes.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_vmrt {
    struct ctl_vmrt *next;
    struct ctl *c;
    char id[37];
    char name[64];
    struct vm_guard guard;       /* event rate limit, reset-loop detection */
    struct event *restart_timer; /* a restart policy's restart, backed off */
};

static struct ctl_vmrt *vmrt_find(struct ctl *c, const char *id)
{
    for (struct ctl_vmrt *r = c->vmrts; r; r = r->next)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

static struct ctl_vmrt *vmrt_get(struct ctl *c, const struct vm_rec *vm)
{
    struct ctl_vmrt *r = vmrt_find(c, vm->id);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        r->c = c;
        snprintf(r->id, sizeof r->id, "%s", vm->id);
        r->next = c->vmrts;
        c->vmrts = r;
    }
    snprintf(r->name, sizeof r->name, "%s", vm->name);
    return r;
}

static void emit_summary(struct ctl *c, const char *vm, const struct guard_summary *sum)
{
    ctl_event(c, "vm", vm, "suppressed", "info",
              "%d more identical %s events within %d s were not recorded", sum->suppressed,
              sum->key, GUARD_WINDOW_MS / 1000);
}

static void guard_flush(struct ctl_vmrt *r, bool all)
{
    struct guard_summary sum;
    while (vm_guard_expire(&r->guard, all ? INT64_MAX : monotonic_ms(), &sum))
        emit_summary(r->c, r->name, &sum);
}

static void vmrt_free(struct ctl_vmrt *r)
{
    guard_flush(r, true); /* held-back events are summed up, not lost */
    if (r->restart_timer)
        event_free(r->restart_timer);
    free(r);
}

void ctl_vm_guards_flush(struct ctl *c);

static void guard_timer_fire(evutil_socket_t fd, short what, void *arg)
{
    ctl_vm_guards_flush(arg);
}

/* An event was held back: its summary is due when the window ends, even if
 * no other event of the VM comes to close it. */
static void guard_timer_arm(struct ctl *c)
{
    if (!c->guard_timer)
        c->guard_timer = evtimer_new(c->base, guard_timer_fire, c);
    if (!c->guard_timer || evtimer_pending(c->guard_timer, NULL))
        return;
    struct timeval tv = {GUARD_WINDOW_MS / 1000, (GUARD_WINDOW_MS % 1000) * 1000 + 100000};
    evtimer_add(c->guard_timer, &tv);
}

void ctl_vm_guards_flush(struct ctl *c)
{
    /* a VM whose row is gone, or that is stopped with no restart coming,
     * needs no memory here any more */
    bool held = false;
    for (struct ctl_vmrt **pp = &c->vmrts; *pp;) {
        struct ctl_vmrt *r = *pp;
        struct vm_rec vm;
        bool gone = store_vm_get(c->store, r->id, &vm) != 0;
        bool idle = !gone && !vm_state_has_process(vm.state) &&
                    !(r->restart_timer && evtimer_pending(r->restart_timer, NULL));
        if (gone || idle) {
            *pp = r->next;
            vmrt_free(r);
            continue;
        }
        guard_flush(r, false);
        for (int i = 0; i < GUARD_SLOTS; i++)
            held |= r->guard.slots[i].suppressed > 0;
        pp = &r->next;
    }
    if (held)
        guard_timer_arm(c); /* a window still open holds some back */
}

void ctl_vm_events_shutdown(struct ctl *c)
{
    if (c->guard_timer)
        event_free(c->guard_timer);
    c->guard_timer = NULL;
    while (c->vmrts) {
        struct ctl_vmrt *r = c->vmrts;
        c->vmrts = r->next;
        vmrt_free(r);
    }
}

static int row_save(struct ctl *c, struct vm_rec *vm)
{
    vm->updated_at = now_ms();
    int rc = store_vm_update(c->store, vm);
    if (rc != 0)
        log_err("cannot update vm %s: %s", vm->name, store_errmsg(c->store));
    return rc;
}

/* ---- reset loops ---- */

static void on_loop_ended(void *ctx, json_t *r, const struct yerr *err)
{
    char *name = ctx;
    if (err)
        log_warn("vm %s: ending the qemu of a reset loop: %s", name, err->message);
    free(name);
}

/* The guest keeps resetting itself: say why and end QEMU; its exit
 * (ctl_vm_exited) makes the VM crashed with that cause instead of a clean
 * stop, and no restart follows a loop. */
static void end_reset_loop(struct ctl *c, struct ctl_vmrt *r, struct vm_rec *vm)
{
    snprintf(r->guard.crash, sizeof(r->guard.crash),
             "guest reset itself %d times within %d s: a reset loop (is its memory, %llu MiB, "
             "too little for the image?)",
             c->cfg->reset_loop_max, c->cfg->reset_loop_window_s,
             (unsigned long long)vm->memory_mb);
    vm_guard_reset_clear(&r->guard);
    snprintf(vm->last_error, sizeof(vm->last_error), "%s", r->guard.crash);
    row_save(c, vm);
    ctl_event(c, "vm", vm->name, "reset-loop", "error", "%s; ending qemu", r->guard.crash);
    /* SIGKILL: no SHUTDOWN comes, so the exit is not taken for a clean one */
    json_t *args = json_pack("{s:s,s:I,s:b}", "vm", vm->id, "uid", (json_int_t)vm->uid, "kill", 1);
    if (vm->pid > 0)
        json_object_set_new(args, "pid", json_integer(vm->pid));
    char *name = strdup(vm->name);
    if (!ctl_vm_call(c, vm, AV_VM_END, args, on_loop_ended, NULL, name))
        free(name);
}

/* Records a QMP event as `action` ("qmp:reset") unless the rate limit holds
 * it back; every reset the guest itself caused counts towards a loop. */
static void guard_qmp_event(struct ctl *c, struct ctl_vmrt *r, struct vm_rec *vm, const char *event,
                            const char *action, const char *result, const char *reason,
                            json_t *data)
{
    int64_t now = monotonic_ms();
    guard_flush(r, false);
    char key[96];
    snprintf(key, sizeof(key), "%s%s%s%s", action, reason[0] ? " (" : "", reason,
             reason[0] ? ")" : "");
    struct guard_summary sum;
    bool record = vm_guard_admit(&r->guard, key, now, &sum);
    if (sum.suppressed > 0)
        emit_summary(c, r->name, &sum);
    if (record)
        ctl_event(c, "vm", vm->name, action, result, "%s", reason);
    else
        guard_timer_arm(c);
    /* resets yund or the user asked for (guest: false) never count */
    if (!strcmp(event, "RESET") && json_is_true(json_object_get(data, "guest")) &&
        !r->guard.crash[0] &&
        vm_guard_reset(&r->guard, now, c->cfg->reset_loop_max,
                       (int64_t)c->cfg->reset_loop_window_s * 1000))
        end_reset_loop(c, r, vm);
}

/* ---- the events ---- */

/* The VM an event names, validated like any message from another host. */
static int event_vm(struct ctl *c, const char *type, json_t *ev, struct vm_rec *vm)
{
    const char *id = json_string_value(json_object_get(ev, "vm"));
    if (!id || !id[0] || strlen(id) > 36) {
        log_warn("agent: event %s without a valid vm id: ignored", type);
        return -1;
    }
    if (store_vm_get(c->store, id, vm) != 0)
        return -1; /* its row is gone (deleted meanwhile): nothing to say */
    return 0;
}

static void on_qmp_event(struct ctl *c, json_t *ev)
{
    struct vm_rec vm;
    const char *event = json_string_value(json_object_get(ev, "event"));
    json_t *data = json_object_get(ev, "data");
    if (!event || (data && !json_is_object(data)) || event_vm(c, "vm.qmp_event", ev, &vm) < 0)
        return;
    if (!strcmp(event, "DEVICE_DELETED")) {
        ctl_volumes_qmp_event(c, &vm, event, data);
        return;
    }
    if (!strncmp(event, "BLOCK_JOB_", 10))
        return; /* the agent's (agent_merge.c), raised as "vm.block_job" */
    if (!strcmp(event, "VSERPORT_CHANGE")) {
        const char *id = json_string_value(json_object_get(data, "id"));
        if (id && !strcmp(id, "qga0port"))
            ctl_event(c, "vm", vm.name, "guest-agent", "info", "%s",
                      json_is_true(json_object_get(data, "open")) ? "connected" : "disconnected");
        return;
    }
    enum vm_state ns = vm_state_on_qmp_event(vm.state, event);
    static const char *const noted[] = {"SHUTDOWN", "STOP",           "RESUME",
                                        "RESET",    "GUEST_PANICKED", "POWERDOWN"};
    bool note = false;
    for (size_t i = 0; i < sizeof(noted) / sizeof(noted[0]); i++)
        note |= !strcmp(event, noted[i]);
    if (note) {
        const char *reason = json_string_value(json_object_get(data, "reason"));
        char act[32];
        snprintf(act, sizeof(act), "qmp:%s", event);
        for (char *p = act; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        struct ctl_vmrt *r = vmrt_get(c, &vm);
        if (r)
            guard_qmp_event(c, r, &vm, event, act,
                            !strcmp(event, "GUEST_PANICKED") ? "error" : "info",
                            reason ? reason : "", data);
    }
    /* during a start the launch's reply moves the row on (with the pid) */
    if (ns != vm.state && !json_is_true(json_object_get(ev, "launching"))) {
        vm.state = ns;
        row_save(c, &vm);
    }
}

static void restart_fire(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_vmrt *r = arg;
    struct ctl *c = r->c;
    struct vm_rec vm;
    struct yerr err = {0};
    if (store_vm_get(c->store, r->id, &vm) != 0)
        return;
    if (vm.state != VM_STOPPED || vm.desired != WANT_RUNNING)
        return;
    vm.restarts++;
    row_save(c, &vm);
    /* ctl_vm_start records "restart ok" or "restart error" when the start
     * has finished */
    if (ctl_vm_start(c, vm.id, CTL_START_RESTART, NULL, NULL, &err) < 0)
        ctl_event(c, "vm", vm.name, "restart", "error", "%s", err.message);
}

void ctl_vm_exited(struct ctl *c, const char *vm_id, pid_t pid, bool shutdown_seen, bool while_down)
{
    struct vm_rec vm;
    if (store_vm_get(c->store, vm_id, &vm) != 0)
        return;
    if (!vm_state_has_process(vm.state) || (pid > 0 && vm.pid > 0 && pid != vm.pid)) {
        log_debug("vm %s: exit of qemu pid %d ignored: the row is %s (pid %d)", vm.name, (int)pid,
                  vm_state_name(vm.state), (int)vm.pid);
        return;
    }
    struct ctl_vmrt *r = vmrt_find(c, vm.id);
    bool looped = r && r->guard.crash[0];
    bool clean =
        !looped && (shutdown_seen || vm.state == VM_STOPPING || vm.desired == WANT_STOPPED);
    enum vm_state before = vm.state;
    vm.state = vm_state_on_exit(vm.state, clean);
    vm.pid = 0;
    vm.started_at = 0;
    vm.stop_deadline = 0;
    if (!clean && before == VM_STARTING && while_down)
        snprintf(vm.last_error, sizeof(vm.last_error),
                 "start interrupted: yund stopped before qemu came up, and no qemu of this vm "
                 "runs");
    else if (!clean)
        snprintf(vm.last_error, sizeof(vm.last_error), "qemu exited unexpectedly%s",
                 while_down ? " while yund was down" : "");
    if (r) {
        vm_guard_reset_clear(&r->guard); /* the next QEMU starts afresh */
        if (looped) {
            /* yund ended a reset loop: crashed, with the cause */
            vm.state = VM_CRASHED;
            snprintf(vm.last_error, sizeof(vm.last_error), "%s", r->guard.crash);
            r->guard.crash[0] = 0;
        }
    }
    bool restart = vm_should_restart(&vm, clean);
    if (!restart && clean)
        vm.desired = WANT_STOPPED;
    row_save(c, &vm);
    ctl_volumes_vm_exited(c, &vm);
    if (clean)
        ctl_event(c, "vm", vm.name, "exit", "ok", "guest stopped (was %s)", vm_state_name(before));
    else
        ctl_event(c, "vm", vm.name, "exit", "error", "%s (was %s)", vm.last_error,
                  vm_state_name(before));
    if (!restart)
        return;
    r = vmrt_get(c, &vm);
    if (!r)
        return;
    if (!r->restart_timer)
        r->restart_timer = event_new(c->base, -1, 0, restart_fire, r);
    if (!r->restart_timer)
        return;
    /* Back off a little more with each restart so a crash loop does not
     * eat the host: 1 s, 2 s, 4 s ... capped at 60 s. */
    int delay = 1 << (vm.restarts < 6 ? vm.restarts : 6);
    struct timeval tv = {delay > 60 ? 60 : delay, 0};
    event_add(r->restart_timer, &tv);
}

bool ctl_vm_restart_pending(struct ctl *c, const char *vm_id)
{
    struct ctl_vmrt *r = vmrt_find(c, vm_id);
    return r && r->restart_timer && evtimer_pending(r->restart_timer, NULL);
}

static void on_exited(struct ctl *c, json_t *ev)
{
    const char *id = json_string_value(json_object_get(ev, "vm"));
    if (!id || !id[0] || strlen(id) > 36)
        return;
    json_t *pj = json_object_get(ev, "pid");
    json_int_t pid = json_is_integer(pj) ? json_integer_value(pj) : 0;
    if (pid < 0 || pid > INT32_MAX)
        pid = 0;
    ctl_vm_exited(c, id, (pid_t)pid, json_is_true(json_object_get(ev, "shutdown_seen")),
                  json_is_true(json_object_get(ev, "while_down")));
}

static void on_guest(struct ctl *c, json_t *ev)
{
    struct vm_rec vm;
    const char *agent = json_string_value(json_object_get(ev, "agent"));
    const char *error = json_string_value(json_object_get(ev, "error"));
    if (!agent || event_vm(c, "vm.guest", ev, &vm) < 0)
        return;
    if (!strcmp(agent, "silent"))
        ctl_event(c, "vm", vm.name, "guest-agent", "error", "not answering: %s",
                  error ? error : "no answer");
    else if (!strcmp(agent, "answering"))
        ctl_event(c, "vm", vm.name, "guest-agent", "info", "answering again");
}

static void on_powerdown(struct ctl *c, json_t *ev)
{
    struct vm_rec vm;
    const char *agent_err = json_string_value(json_object_get(ev, "agent_error"));
    const char *acpi_err = json_string_value(json_object_get(ev, "acpi_error"));
    if (event_vm(c, "vm.powerdown", ev, &vm) < 0 || vm.state != VM_STOPPING)
        return;
    if (!agent_err)
        ctl_event(c, "vm", vm.name, "stop", "error", "QMP system_powerdown: %s",
                  acpi_err ? acpi_err : "failed");
    else if (acpi_err)
        ctl_event(c, "vm", vm.name, "stop", "error",
                  "agent: %s; then no QMP connection to press the ACPI button", agent_err);
    else
        ctl_event(c, "vm", vm.name, "stop", "ok",
                  "no power-off through the agent (%s): ACPI power button pressed", agent_err);
}

/* The host's balloon policy moved a VM's target (agent_balloon.c): target,
 * actual, min and size in bytes, and the policy's reason. */
static void on_balloon(struct ctl *c, json_t *ev)
{
    struct vm_rec vm;
    static const char *const keys[4] = {"target", "actual", "min", "size"};
    json_int_t n[4];
    for (int i = 0; i < 4; i++) {
        json_t *x = json_object_get(ev, keys[i]);
        if (!json_is_integer(x) || (n[i] = json_integer_value(x)) < 0)
            return;
    }
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    if (!reason || strlen(reason) > 200 || event_vm(c, "vm.balloon", ev, &vm) < 0)
        return;
    ctl_event(c, "vm", vm.name, "balloon", "info",
              "target %lld MiB, actual %lld MiB (min %lld MiB of %lld MiB): %s",
              (long long)(n[0] >> 20), (long long)(n[1] >> 20), (long long)(n[2] >> 20),
              (long long)(n[3] >> 20), reason);
}

/* TRANSITIONAL: a host step that words its own event ("host.event"). */
static void on_host_event(struct ctl *c, json_t *ev)
{
    const char *f[5];
    static const char *const keys[5] = {"type", "object", "action", "result", "reason"};
    for (int i = 0; i < 5; i++) {
        f[i] = json_string_value(json_object_get(ev, keys[i]));
        if (!f[i])
            return;
    }
    ctl_event(c, f[0], f[1], f[2], f[3], "%s", f[4]);
}

bool ctl_vm_host_event(struct ctl *c, const char *type, json_t *ev)
{
    if (!strcmp(type, "vm.qmp_event"))
        on_qmp_event(c, ev);
    else if (!strcmp(type, "vm.exited"))
        on_exited(c, ev);
    else if (!strcmp(type, "vm.guest"))
        on_guest(c, ev);
    else if (!strcmp(type, "vm.powerdown"))
        on_powerdown(c, ev);
    else if (!strcmp(type, "vm.balloon"))
        on_balloon(c, ev);
    else if (!strcmp(type, "host.event"))
        on_host_event(c, ev);
    else
        return false;
    return true;
}
