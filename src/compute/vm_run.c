/*
 * vm_run.c - running VMs: start, stop, pause, resume, reboot, and what
 * happens when QEMU reports an event or exits.
 *
 * Start is the controller's (ctl/vms_start.c) over the agent's vm.launch
 * (agent/agent_launch.c). QEMU exiting is noticed by EOF on the QMP event
 * socket, at once.
 */
#include "compute/confine.h"
#include "compute/engine.h"
#include "compute/guest.h"
#include "compute/housekeeping.h"
#include "compute/qemu_argv.h"
#include "compute/vm_disks.h"
#include "compute/qmp.h"
#include "compute/qemu_proc.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void engine_vm_limits(const struct vm_rec *vm, struct cg_limits *l)
{
    memset(l, 0, sizeof(*l));
    l->cpu_weight = vm->cpu_weight;
    l->cpu_quota_us = vm->cpu_quota_us;
    l->cpu_period_us = vm->cpu_period_us;
    /* QEMU itself needs memory beyond guest RAM (device emulation, block
     * caches): give the group headroom so the limit bounds a runaway, not
     * normal operation. Under TCG add the translation cache, which QEMU
     * sizes at 1 GiB by default and fills as the guest runs new code (a
     * 1 GiB Debian guest writing a disk full was OOM-killed without it). */
    l->memory_bytes = (vm->memory_mb << 20) + (256ULL << 20) + (vm->memory_mb << 20) / 4;
    if (strcmp(vm->accel_used, "kvm"))
        l->memory_bytes += 1ULL << 30;
    snprintf(l->cpuset, sizeof(l->cpuset), "%s", vm->cpuset);
}

/* ---- QMP event watch ---- */

static void on_qmp_event(void *ctx, const char *event, json_t *data)
{
    struct vm_rt *rt = ctx;
    struct engine *e = rt->eng;
    struct vm_rec vm;
    if (store_vm_get(e->store, rt->id, &vm) != 0)
        return;
    if (!strcmp(event, "DEVICE_DELETED") || !strncmp(event, "BLOCK_JOB_", 10)) {
        vm_disks_on_event(e, &vm, event, data);
        return;
    }
    if (!strcmp(event, "SHUTDOWN"))
        rt->shutdown_seen = true;
    engine_status_note(rt, event);
    if (!strcmp(event, "VSERPORT_CHANGE")) {
        const char *id = json_string_value(json_object_get(data, "id"));
        if (id && !strcmp(id, "qga0port")) {
            rt->agent_open = json_is_true(json_object_get(data, "open"));
            engine_event(e, "vm", vm.name, "guest-agent", "info", "%s",
                         rt->agent_open ? "connected" : "disconnected");
            guest_agent_changed(rt);
        }
        return;
    }
    enum vm_state ns = vm_state_on_qmp_event(vm.state, event);
    static const char *const noted[] = {"SHUTDOWN", "STOP",           "RESUME",
                                        "RESET",    "GUEST_PANICKED", "POWERDOWN"};
    bool note = false;
    for (size_t i = 0; i < sizeof(noted) / sizeof(noted[0]); i++)
        note |= !strcmp(event, noted[i]);
    if (note) {
        const char *reason = "";
        json_t *r = data ? json_object_get(data, "reason") : NULL;
        if (json_is_string(r))
            reason = json_string_value(r);
        char act[32];
        snprintf(act, sizeof(act), "qmp:%s", event);
        for (char *p = act; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        /* rate-limited; notices a reset loop */
        engine_guard_qmp_event(e, rt, &vm, event, act,
                               !strcmp(event, "GUEST_PANICKED") ? "error" : "info", reason, data);
    }
    /* during a start the launch's reply moves the row on (with the pid) */
    if (ns != vm.state && !rt->launch) {
        vm.state = ns;
        engine_store_update(e, &vm);
    }
}

static void exit_check(evutil_socket_t fd, short what, void *arg);

static void on_qmp_eof(void *ctx)
{
    struct vm_rt *rt = ctx;
    qmp_watch_close(rt->watch);
    rt->watch = NULL;
    rt->reattaching = false; /* its query-status gets no answer now */
    if (rt->launch_lost) {
        /* a start in progress (agent_launch.c) settles its own failure */
        rt->launch_lost(rt->launch);
        return;
    }
    /* QEMU closes its sockets a moment before the process is gone; wait for
     * the pid to disappear so "stopped" is never said of a live QEMU. */
    if (!rt->exit_timer)
        rt->exit_timer = event_new(rt->eng->base, -1, 0, exit_check, rt);
    struct timeval tv = {0, 0};
    event_add(rt->exit_timer, &tv);
}

static void exit_check(evutil_socket_t fd, short what, void *arg)
{
    struct vm_rt *rt = arg;
    struct vm_rec vm;
    uint32_t uid = store_vm_get(rt->eng->store, rt->id, &vm) == 0 ? vm.uid : 0;
    if (rt->pid > 0 && qemu_pid_state(rt->pid, rt->id, uid) != PID_GONE) {
        struct timeval tv = {0, 20 * 1000};
        event_add(rt->exit_timer, &tv);
        return;
    }
    char id[37];
    snprintf(id, sizeof(id), "%s", rt->id);
    engine_vm_handle_exit(rt->eng, id, false);
}

static void on_status(void *ctx, json_t *ret, const char *err)
{
    struct vm_rt *rt = ctx;
    const char *st = json_string_value(json_object_get(ret, "status"));
    if (st)
        snprintf(rt->qmp_status, sizeof(rt->qmp_status), "%s", st);
}

/* The cached run state follows QEMU's events: STOP and RESUME say it, the
 * others that change it are answered by a query-status on the event
 * connection (no connect, no wait). */
void engine_status_note(struct vm_rt *rt, const char *event)
{
    if (!strcmp(event, "STOP"))
        snprintf(rt->qmp_status, sizeof(rt->qmp_status), "paused");
    else if (!strcmp(event, "RESUME"))
        snprintf(rt->qmp_status, sizeof(rt->qmp_status), "running");
    static const char *const changes[] = {"STOP",   "SHUTDOWN", "RESET",          "SUSPEND",
                                          "WAKEUP", "RESUME",   "GUEST_PANICKED", NULL};
    for (const char *const *c = changes; *c; c++)
        if (!strcmp(event, *c) && rt->watch) {
            qmp_watch_command(rt->watch, "query-status", NULL, on_status, rt);
            return;
        }
}

/* After a yund restart no VSERPORT_CHANGE comes: ask whether the guest
 * side of the agent's port is open. */
static void on_chardevs(void *ctx, json_t *ret, const char *err)
{
    struct vm_rt *rt = ctx;
    size_t i;
    json_t *c;
    json_array_foreach(ret, i, c)
    {
        const char *label = json_string_value(json_object_get(c, "label"));
        if (label && !strcmp(label, "qga0")) {
            rt->agent_open = json_is_true(json_object_get(c, "frontend-open"));
            guest_agent_changed(rt);
        }
    }
}

bool engine_vm_agent(struct engine *e, const struct vm_rec *vm, char *sock, size_t len)
{
    struct vm_rt *rt = engine_rt_find(e, vm->id);
    if (!rt || !rt->watch || !rt->agent_open || !vm_state_has_process(vm->state))
        return false;
    return engine_vm_path(e, vm, VMDIR_QGA, sock, len) == 0;
}

int engine_attach_watch(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm)
{
    char err[256];
    if (engine_try_watch(e, rt, vm, err, sizeof(err)) < 0) {
        log_warn("vm %s: cannot watch QMP events: %s", vm->name, err);
        return -1;
    }
    return 0;
}

int engine_try_watch(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm, char *err,
                     size_t len)
{
    if (rt->watch)
        return 0;
    char path[512];
    if (engine_vm_path(e, vm, VMDIR_QMPEV, path, sizeof(path)) < 0) {
        snprintf(err, len, "path too long");
        return -1;
    }
    rt->watch = qmp_watch_open(e->base, path, on_qmp_event, on_qmp_eof, rt, err, len);
    if (!rt->watch)
        return -1;
    rt->agent_open = false;
    rt->qmp_status[0] = 0;
    qmp_watch_command(rt->watch, "query-chardev", NULL, on_chardevs, rt);
    qmp_watch_command(rt->watch, "query-status", NULL, on_status, rt);
    return 0;
}

static void restart_fire(evutil_socket_t fd, short what, void *arg)
{
    struct vm_rt *rt = arg;
    struct engine *e = rt->eng;
    struct vm_rec vm;
    struct yerr err;
    if (store_vm_get(e->store, rt->id, &vm) != 0)
        return;
    if (vm.state != VM_STOPPED || vm.desired != WANT_RUNNING)
        return;
    vm.restarts++;
    engine_store_update(e, &vm);
    /* the controller's start (ctl/vms_start.c): it records "restart ok" or
     * "restart error" when the start has finished */
    if (!e->start)
        yerr_set(&err, YE_UNAVAILABLE, "no controller to start it");
    if (!e->start || e->start(e->start_ctx, vm.id, &err) < 0)
        engine_event(e, "vm", vm.name, "restart", "error", "%s", err.message);
}

/* QEMU of VM id is gone. while_down: it died while yund was not running. */
void engine_vm_handle_exit(struct engine *e, const char *id, bool while_down)
{
    struct vm_rec vm;
    if (store_vm_get(e->store, id, &vm) != 0)
        return;
    struct vm_rt *rt = engine_rt_find(e, id);
    bool clean = (rt && rt->shutdown_seen) || vm.state == VM_STOPPING || vm.desired == WANT_STOPPED;
    if (vm.state == VM_DELETING || vm.state == VM_CREATING)
        return;
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
    if (rt)
        engine_guard_exit(e, rt, &vm); /* yund ended a reset loop: crashed, with the cause */
    bool restart = vm_should_restart(&vm, clean);
    if (!restart && clean)
        vm.desired = WANT_STOPPED;
    engine_store_update(e, &vm);
    char group[48];
    engine_vm_cgroup(&vm, group);
    /* on a timer while busy; a restart's launch takes the group over
     * (engine_cgroup_keep), so the two never race */
    engine_cgroup_remove(e, group);
    vm_disks_on_exit(e, &vm);
    if (clean)
        engine_event(e, "vm", vm.name, "exit", "ok", "guest stopped (was %s)",
                     vm_state_name(before));
    else
        engine_event(e, "vm", vm.name, "exit", "error", "%s (was %s)", vm.last_error,
                     vm_state_name(before));
    if (rt) {
        guest_forget(rt); /* drops the guest facts, cancels agent exchanges */
        qmp_watch_close(rt->watch);
        rt->watch = NULL;
        rt->shutdown_seen = false;
        rt->pid = 0;
        rt->qmp_status[0] = 0;
    }
    if (restart) {
        rt = engine_rt_get(e, &vm);
        if (!rt)
            return;
        if (!rt->restart_timer)
            rt->restart_timer = event_new(e->base, -1, 0, restart_fire, rt);
        /* Back off a little more with each restart so a crash loop does not
         * eat the host: 1 s, 2 s, 4 s ... capped at 60 s. */
        int delay = 1 << (vm.restarts < 6 ? vm.restarts : 6);
        struct timeval tv = {delay > 60 ? 60 : delay, 0};
        event_add(rt->restart_timer, &tv);
    }
}

/* ---- stop (the controller's, ctl/vms_stop.c) and the other actions ---- */

int engine_vm_qmp(struct engine *e, const struct vm_rec *vm, const char *cmd, json_t *args,
                  json_t **ret, struct yerr *err)
{
    char qmp[512], why[256];
    engine_vm_path(e, vm, VMDIR_QMP, qmp, sizeof(qmp));
    if (qmp_command(qmp, cmd, args, ret, 5000, why, sizeof(why)) < 0)
        return yerr_set(err, YE_QEMU_ERROR, "QMP %s: %s", cmd, why);
    return 0;
}

/* What a command that succeeded made of QEMU's run state (its event may
 * come a moment later). */
static void status_set(struct engine *e, const struct vm_rec *vm, const char *st)
{
    struct vm_rt *rt = engine_rt_find(e, vm->id);
    if (rt)
        snprintf(rt->qmp_status, sizeof(rt->qmp_status), "%s", st);
}

static int qmp_simple(struct engine *e, struct vm_rec *vm, const char *cmd, struct yerr *err)
{
    return engine_vm_qmp(e, vm, cmd, NULL, NULL, err);
}

int engine_vm_action(struct engine *e, const char *name, enum vm_action a, bool force,
                     struct vm_rec *out, struct yerr *err)
{
    struct vm_rec vm;
    if (engine_vm_get(e, name, &vm, err) < 0)
        return -1;
    char why[256];
    if (a == ACT_DELETE)
        return yerr_set(err, YE_INVALID_ARGUMENT, "delete is the controller's (ctl_vm_delete)");
    if (vm_action_check(&vm, a, force, why, sizeof(why)) < 0)
        return yerr_set(err, YE_CONFLICT, "%s", why);
    const char *an = vm_action_name(a);
    switch (a) {
    case ACT_START:
        return yerr_set(err, YE_INVALID_ARGUMENT, "start is the controller's (ctl_vm_start)");
    case ACT_STOP:
    case ACT_FORCE_STOP:
        return yerr_set(err, YE_INVALID_ARGUMENT, "stop is the controller's (ctl_vm_stop)");
    case ACT_REBOOT:
        if (qmp_simple(e, &vm, "system_reset", err) < 0)
            goto failed;
        engine_event(e, "vm", vm.name, an, "ok", "%s", "");
        break;
    case ACT_PAUSE:
        if (qmp_simple(e, &vm, "stop", err) < 0)
            goto failed;
        status_set(e, &vm, "paused");
        vm.state = VM_PAUSED;
        vm.desired = WANT_PAUSED;
        engine_store_update(e, &vm);
        engine_event(e, "vm", vm.name, an, "ok", "%s", "");
        break;
    case ACT_RESUME:
        if (qmp_simple(e, &vm, "cont", err) < 0)
            goto failed;
        status_set(e, &vm, "running");
        vm.state = VM_RUNNING;
        vm.desired = WANT_RUNNING;
        engine_store_update(e, &vm);
        engine_event(e, "vm", vm.name, an, "ok", "%s", "");
        break;
    default:
        return yerr_set(err, YE_INVALID_ARGUMENT, "unknown action");
    }
    if (out)
        store_vm_get(e->store, vm.id, out);
    return 0;
failed:
    engine_event(e, "vm", vm.name, an, "error", "%s", err->message);
    return -1;
}
