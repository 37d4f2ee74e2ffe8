/*
 * vm_run.c - running VMs: start, stop, pause, resume, reboot, and what
 * happens when QEMU reports an event or exits.
 *
 * Start writes "starting" before QEMU is spawned; QEMU starts with its vCPUs
 * stopped, is moved into the VM's cgroup, watched over QMP, and only then
 * continued. QEMU exiting is noticed by EOF on the QMP event socket, at once.
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
    if (ns != vm.state) {
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
    if (rt->watch)
        return 0;
    char path[512], err[256];
    if (engine_vm_path(e, vm, VMDIR_QMPEV, path, sizeof(path)) < 0)
        return -1;
    rt->watch = qmp_watch_open(e->base, path, on_qmp_event, on_qmp_eof, rt, err, sizeof(err));
    if (!rt->watch) {
        log_warn("vm %s: cannot watch QMP events: %s", vm->name, err);
        return -1;
    }
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
    if (engine_vm_start(e, &vm, &err) < 0)
        engine_event(e, "vm", vm.name, "restart", "error", "%s", err.message);
    else
        engine_event(e, "vm", vm.name, "restart", "ok", "restart policy %s (restart #%d)",
                     restart_policy_name(vm.restart), vm.restarts);
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
    cg_vm_destroy(&e->cg, group);
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

/* ---- start ---- */

struct cg_entry {
    struct engine *e;
    const char *vm;
    char err[256];
};

/* Runs in the forked child before exec: joining the cgroup now, while the
 * child is a single small thread, costs microseconds; moving a running QEMU
 * with its threads and memory costs 10-20 ms on cgroup v1. */
static int enter_cgroup(void *arg)
{
    struct cg_entry *c = arg;
    if (cg_vm_attach(&c->e->cg, c->vm, getpid(), c->err, sizeof(c->err)) < 0) {
        (void)!write(2, c->err, strlen(c->err));
        (void)!write(2, "\n", 1);
        return -1;
    }
    return 0;
}

static int read_pidfile(const char *path, pid_t *pid)
{
    char *s = read_file(path, 64, NULL);
    if (!s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    bool ok = v > 1 && (!*end || *end == '\n');
    free(s);
    if (!ok)
        return -1;
    *pid = (pid_t)v;
    return 0;
}

int engine_vm_start(struct engine *e, struct vm_rec *vm, struct yerr *err)
{
    int64_t t_begin = monotonic_ms();
    struct image_rec img;
    int rc = store_image_get(e->store, vm->image, &img);
    if (rc != 0)
        return rc == STORE_NOTFOUND ? yerr_set(err, YE_CONFLICT, "image '%s' of vm '%s' is missing",
                                               vm->image, vm->name)
                                    : yerr_db(err, store_errmsg(e->store));
    if (engine_image_memory_check(&img, vm->memory_mb, err) < 0)
        return -1; /* it would only reset for ever */
    if (e->admit && e->admit(e->admit_ctx, vm, err) < 0)
        return -1; /* capacity: the controller's decision */

    const char *accel = strcmp(vm->accel, "auto") ? vm->accel : e->accel;
    pid_t pid = 0;
    char dir[512], pidfile[512], why[256];
    engine_vm_path(e, vm, NULL, dir, sizeof(dir));
    engine_vm_path(e, vm, VMDIR_PIDFILE, pidfile, sizeof(pidfile));
    /* Never a second QEMU of one VM, and never the files of a live one
     * removed: the process table, not only the pidfile, must show none. */
    pid_t other = 0;
    switch (qemu_seek(e->vms_dir, vm->id, vm->uid, NULL, &other)) {
    case QEMU_GONE:
        break;
    case QEMU_UNSURE:
        return yerr_set(err, YE_UNAVAILABLE,
                        "cannot tell whether vm '%s' still has a qemu (/proc unreadable); "
                        "not starting another",
                        vm->name);
    default:
        engine_reconcile_soon(e);
        return yerr_set(err, YE_CONFLICT,
                        "vm '%s' still has a qemu (pid %d); yund is re-attaching to it", vm->name,
                        (int)other);
    }
    static const char *const stale[] = {VMDIR_QMP, VMDIR_QMPEV, VMDIR_CONSOLE, VMDIR_PIDFILE};
    for (size_t i = 0; i < 4; i++) {
        char p[512];
        engine_vm_path(e, vm, stale[i], p, sizeof(p));
        unlink(p);
    }

    /* Intent before side effects. */
    vm->state = VM_STARTING;
    vm->desired = WANT_RUNNING;
    vm->last_error[0] = 0;
    vm->stop_deadline = 0;
    snprintf(vm->accel_used, sizeof(vm->accel_used), "%s", accel);
    if (engine_store_update(e, vm) != 0)
        return yerr_db(err, store_errmsg(e->store));
    FAILPOINT("vm_start.after_row");

    char group[48];
    engine_vm_cgroup(vm, group);
    struct cg_limits lim;
    engine_vm_limits(vm, &lim);
    /* QEMU's start-up, before the guest runs, is yund's work and not the
     * guest's: it runs at the highest weight and without the VM's quota, so
     * busy neighbours do not slow every start. The VM's CPU policy applies
     * from "cont" on; its memory limit from the first instruction. */
    struct cg_limits boot = lim;
    boot.cpu_weight = 10000;
    boot.cpu_quota_us = 0;
    if (e->cg.mode != CG_NONE && cg_vm_setup(&e->cg, group, &boot, why, sizeof(why)) < 0) {
        yerr_set(err, YE_CGROUP_ERROR, "%s", why);
        goto fail;
    }
    /* confinement: the VM's uid claimed, its files given to it */
    FAILPOINT("vm_start.after_cgroup");
    struct vm_confine conf;
    if (vm_confine_prepare(e, vm, &conf, err) < 0)
        goto fail;
    FAILPOINT("vm_start.after_confine");
    struct qemu_argv qa;
    struct volume_rec *vols = NULL;
    size_t nvols = 0;
    if (store_volume_list_attached(e->store, vm->id, &vols, &nvols) != 0) {
        yerr_db(err, store_errmsg(e->store));
        goto fail;
    }
    int built = qemu_argv_build(e->cfg->qemu_binary, vm, &img, dir, accel, vols, nvols, &conf, &qa,
                                why, sizeof(why));
    free(vols);
    if (built < 0) {
        yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
        goto fail;
    }
    /* QEMU's own errors go to qemu.log once it daemonises (-D), not to
     * stderr: remember where this start's part of the log begins. */
    char qemulog[512];
    engine_vm_path(e, vm, VMDIR_QEMULOG, qemulog, sizeof(qemulog));
    struct stat lst;
    off_t log_off = stat(qemulog, &lst) == 0 ? lst.st_size : 0;
    struct proc_result pr;
    int64_t t_spawn = monotonic_ms();
    struct cg_entry ce = {.e = e, .vm = group};
    int st = vm_confine_spawn(e, vm, &conf, qa.argv, e->cg.mode != CG_NONE ? enter_cgroup : NULL,
                              &ce, &pr);
    t_spawn = monotonic_ms() - t_spawn;
    qemu_argv_free(&qa);
    FAILPOINT("vm_start.after_spawn");
    char line[400];
    proc_last_line(pr.err, line, sizeof(line));
    proc_result_free(&pr);
    if (st != 0) {
        /* QEMU's own words first: what it wrote to qemu.log in this start */
        char said[400];
        qemu_log_since(qemulog, log_off, said, sizeof(said));
        yerr_set(err, YE_QEMU_ERROR, "qemu failed to start: %s",
                 said[0]   ? said
                 : line[0] ? line
                           : "no message (see qemu.log)");
        goto fail;
    }
    /* QEMU's parent exits once the monitors listen; the daemon child writes
     * the pidfile a moment later, so allow it a little time. */
    for (int i = 0; i < 500 && read_pidfile(pidfile, &pid) < 0; i++) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (pid <= 0) {
        yerr_set(err, YE_QEMU_ERROR, "qemu started but wrote no pidfile");
        goto fail;
    }
    vm->pid = pid;
    vm->started_at = now_ms();
    engine_store_update(e, vm);
    FAILPOINT("vm_start.after_pid");
    struct vm_rt *rt = engine_rt_get(e, vm);
    if (!rt) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        goto fail_kill;
    }
    rt->pid = pid;
    rt->shutdown_seen = false;
    if (engine_attach_watch(e, rt, vm) < 0) {
        yerr_set(err, YE_QEMU_ERROR, "cannot connect to QMP event monitor");
        goto fail_kill;
    }
    FAILPOINT("vm_start.after_watch");
    char qmp[512];
    engine_vm_path(e, vm, VMDIR_QMP, qmp, sizeof(qmp));
    if (qmp_command(qmp, "cont", NULL, NULL, 5000, why, sizeof(why)) < 0) {
        yerr_set(err, YE_QEMU_ERROR, "QMP cont: %s", why);
        goto fail_kill;
    }
    if (e->cg.mode != CG_NONE && cg_vm_setup(&e->cg, group, &lim, why, sizeof(why)) < 0) {
        yerr_set(err, YE_CGROUP_ERROR, "%s", why);
        goto fail_kill;
    }
    FAILPOINT("vm_start.after_cont");
    snprintf(rt->qmp_status, sizeof(rt->qmp_status), "running");
    vm->state = VM_RUNNING;
    engine_store_update(e, vm);
    log_debug("vm %s start: qemu spawn %lld ms, total %lld ms", vm->name, (long long)t_spawn,
              (long long)(monotonic_ms() - t_begin));
    engine_event(e, "vm", vm->name, "start", "ok", "pid %d, accel %s", (int)pid, accel);
    return 0;

fail_kill:
fail:
    /* Whatever got as far as spawning QEMU must not leave it behind; if it
     * cannot be ended, the row stays "starting" for reconcile to settle. */
    if (engine_qemu_end(e, vm) < 0) {
        /* desired stopped: reconcile ends that QEMU rather than continue it */
        vm->desired = WANT_STOPPED;
        snprintf(vm->last_error, sizeof(vm->last_error), "%s", err->message);
        engine_store_update(e, vm);
        engine_event(e, "vm", vm->name, "start", "error", "%s (its qemu may still run)",
                     err->message);
        engine_reconcile_soon(e);
        return -1;
    }
    if (e->cg.mode != CG_NONE)
        cg_vm_destroy(&e->cg, group);
    {
        struct vm_rt *r = engine_rt_find(e, vm->id);
        if (r)
            engine_rt_drop(e, r);
    }
    vm->state = VM_STOPPED;
    vm->desired = WANT_STOPPED;
    vm->pid = 0;
    vm->started_at = 0;
    snprintf(vm->last_error, sizeof(vm->last_error), "%s", err->message);
    engine_store_update(e, vm);
    engine_event(e, "vm", vm->name, "start", "error", "%s", err->message);
    return -1;
}

/* ---- stop (the controller's, ctl/vms_stop.c) and the other actions ---- */

void engine_stop_rearm(struct engine *e, struct vm_rec *vm)
{
    if (vm->state != VM_STOPPING)
        return;
    if (!vm->stop_deadline) {
        /* a row from before deadlines were stored: start the grace now */
        vm->stop_deadline = now_ms() + (int64_t)e->cfg->stop_timeout_s * 1000;
        engine_store_update(e, vm);
    }
    if (e->stop_deadline)
        e->stop_deadline(e->vm_hooks_ctx, vm);
}

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
        if (engine_vm_start(e, &vm, err) < 0)
            return -1;
        break;
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
