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
#include "compute/qemu_argv.h"
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
    /* the memory policy: a locked VM never swaps; the soft limit is the
     * guest's share, QEMU's own headroom on top as for the hard limit */
    l->locked = vm->memory_lock != 0;
    l->swap_limit = vm->memory_lock || vm->memory_swap_mb >= 0;
    l->swap_bytes =
        !vm->memory_lock && vm->memory_swap_mb > 0 ? (uint64_t)vm->memory_swap_mb << 20 : 0;
    if (vm->memory_high_mb)
        l->high_bytes = (vm->memory_high_mb << 20) + (l->memory_bytes - (vm->memory_mb << 20));
}

/* ---- QMP event watch ---- */

/* Every QMP event goes to the controller as "vm.qmp_event" {"vm","event",
 * "data","launching"}: it owns what the event means for the row and the
 * event log. Here only the host's own view moves on: the cached run state,
 * a clean shutdown seen, the guest agent's port, and a block job's end for
 * the agent (agent_merge.c). */
static void on_qmp_event(void *ctx, const char *event, json_t *data)
{
    struct vm_rt *rt = ctx;
    struct engine *e = rt->eng;
    if (!strncmp(event, "BLOCK_JOB_", 10) && e->on_block_job)
        e->on_block_job(e->on_block_job_ctx, rt->id, event, data);
    if (!strcmp(event, "SHUTDOWN"))
        rt->shutdown_seen = true;
    engine_status_note(rt, event);
    if (!strcmp(event, "VSERPORT_CHANGE")) {
        const char *id = json_string_value(json_object_get(data, "id"));
        if (id && !strcmp(id, "qga0port")) {
            rt->agent_open = json_is_true(json_object_get(data, "open"));
            guest_agent_changed(rt);
        }
    }
    json_t *ev = json_pack("{s:s,s:s,s:O?,s:b}", "vm", rt->id, "event", event, "data", data,
                           "launching", rt->launch != NULL);
    engine_notify(e, "vm.qmp_event", ev);
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
    if (rt->pid > 0 && qemu_pid_state(rt->pid, rt->id, rt->uid) != PID_GONE) {
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

void engine_vm_handle_exit(struct engine *e, const char *id, bool while_down)
{
    struct vm_rt *rt = engine_rt_find(e, id);
    pid_t pid = rt ? rt->pid : 0;
    bool shutdown_seen = rt && rt->shutdown_seen;
    /* The group goes on a timer while busy; a restart's launch takes it
     * over (engine_cgroup_keep), so the two never race. */
    char group[48];
    struct vm_rec probe = {0};
    snprintf(probe.id, sizeof probe.id, "%s", id);
    engine_vm_cgroup(&probe, group);
    engine_cgroup_remove(e, group);
    if (rt) {
        guest_forget(rt); /* drops the guest facts, cancels agent exchanges */
        qmp_watch_close(rt->watch);
        rt->watch = NULL;
        rt->shutdown_seen = false;
        rt->pid = 0;
        rt->qmp_status[0] = 0;
    }
    json_t *ev = json_pack("{s:s,s:I,s:b,s:b}", "vm", id, "pid", (json_int_t)pid, "shutdown_seen",
                           shutdown_seen, "while_down", while_down);
    engine_notify(e, "vm.exited", ev);
}
