/*
 * reconcile.c - making the state of record agree with reality. Runs once at
 * start-up (re-attaching to every QEMU that survived yund) and then every
 * reconcile_interval seconds:
 *  - "creating" rows are rolled back (yund died mid-create),
 *  - "deleting" rows are finished,
 *  - a live QEMU is re-attached and its QMP status becomes the state,
 *  - a row that says running but whose QEMU is gone becomes stopped (with an
 *    event, and a restart if the VM's policy asks for one),
 *  - a VM directory with no row is an orphan: its QEMU is ended, files removed.
 */
#include "compute/engine.h"
#include "compute/housekeeping.h"
#include "compute/qemu_argv.h"
#include "compute/vm_disks.h"
#include "compute/qmp.h"
#include "compute/qemu_proc.h"
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A row "starting" this recently, with no process of its VM in sight, may
 * be a start whose child has not exec'ed QEMU yet: it is given this long. */
#define START_HOLD_MS 15000

/* One walk of /proc per pass, made only when some VM needs it. */
struct pass {
    struct engine *e;
    struct qemu_scan scan;
    bool scanned;
};

static enum qemu_seen seek(struct pass *p, const struct vm_rec *vm, pid_t *pid)
{
    /* fast path: a pidfile naming a live QEMU of this VM needs no walk */
    enum qemu_seen seen = qemu_seek(p->e->vms_dir, vm->id, vm->uid, NULL, pid);
    if (seen == QEMU_UP)
        return seen;
    if (!p->scanned) {
        qemu_scan_run(p->e->vms_dir, &p->scan);
        p->scanned = true;
    }
    return qemu_seek(p->e->vms_dir, vm->id, vm->uid, &p->scan, pid);
}

/* The row after a re-attach, from QEMU's status (and cont's outcome). */
static void reattach_finish(struct engine *e, struct vm_rt *rt, struct vm_rec *vm, enum vm_state ns,
                            const char *status)
{
    pid_t pid = rt->pid;
    bool fresh = rt->reattach_fresh;
    rt->reattach_fresh = false;
    if (fresh && vm->pid == pid && ns == vm->state && vm->started_at)
        log_info("vm %s: re-attached to running qemu pid %d (%s)", vm->name, (int)pid, status);
    if (ns != vm->state || vm->pid != pid) {
        if (fresh)
            engine_event(e, "vm", vm->name, "reattach", "info", "qemu pid %d, %s -> %s", (int)pid,
                         vm_state_name(vm->state), vm_state_name(ns));
        vm->state = ns;
        vm->pid = pid;
        if (!vm->started_at)
            vm->started_at = now_ms();
        engine_store_update(e, vm);
    }
    engine_stop_rearm(e, vm);
}

static void on_reattach_cont(void *ctx, json_t *ret, const char *err)
{
    struct vm_rt *rt = ctx;
    struct engine *e = rt->eng;
    rt->reattaching = false;
    struct vm_rec vm;
    if (store_vm_get(e->store, rt->id, &vm) != 0)
        return;
    enum vm_state ns = vm.state;
    if (!err) {
        ns = VM_RUNNING;
        snprintf(rt->qmp_status, sizeof(rt->qmp_status), "running");
        engine_event(e, "vm", vm.name, "start", "ok", "start finished after yund restart");
    } else if (!strcmp(rt->qmp_status, "prelaunch")) {
        ns = VM_PAUSED;
    }
    reattach_finish(e, rt, &vm, ns, rt->qmp_status);
}

/* QEMU's status, asked over the event connection (no blocking exchange). */
static void on_reattach_status(void *ctx, json_t *ret, const char *err)
{
    struct vm_rt *rt = ctx;
    struct engine *e = rt->eng;
    rt->reattaching = false;
    struct vm_rec vm;
    if (store_vm_get(e->store, rt->id, &vm) != 0)
        return;
    pid_t pid = rt->pid;
    const char *st = json_string_value(json_object_get(ret, "status"));
    if (err || !st) {
        log_warn("vm %s: pid %d alive but QMP unreachable: %s", vm.name, (int)pid,
                 err ? err : "query-status reply has no status");
        /* still: the row names that pid (so a stop can end it), and a stop
         * in progress keeps its deadline */
        if (vm.pid != pid && vm_state_has_process(vm.state)) {
            vm.pid = pid;
            engine_store_update(e, &vm);
        }
        engine_stop_rearm(e, &vm);
        return;
    }
    char status[32];
    snprintf(status, sizeof(status), "%s", st);
    snprintf(rt->qmp_status, sizeof(rt->qmp_status), "%s", status);
    enum vm_state ns = vm.state;
    if (rt->reattach_fresh && e->cg.mode != CG_NONE) {
        /* A QEMU found again is put back under its VM's limits: after an
         * interrupted start it still has the start-up boost, and one started
         * by an older yund sits in a group of the old naming. */
        char group[48], why[256];
        struct cg_limits lim;
        engine_vm_cgroup(&vm, group);
        engine_vm_limits(&vm, &lim);
        if (cg_vm_setup(&e->cg, group, &lim, why, sizeof(why)) < 0 ||
            cg_vm_attach(&e->cg, group, pid, why, sizeof(why)) < 0)
            log_warn("vm %s: cgroup: %s", vm.name, why);
    }
    bool interrupted = !strcmp(status, "prelaunch") || vm.state == VM_STARTING;
    if (interrupted && vm.desired == WANT_STOPPED) {
        /* a start yund did not finish, and since then the VM was asked to
         * stop: the guest never ran, so end its QEMU; the next pass sees it
         * gone and says stopped */
        rt->reattach_fresh = false;
        engine_event(e, "vm", vm.name, "stop", "info",
                     "ending the qemu of an interrupted start: the vm is to be stopped");
        if (e->end_qemu) {
            e->end_qemu(e->vm_hooks_ctx, &vm); /* reconcile again once it is gone */
            return;
        }
        engine_qemu_end(e, &vm); /* no controller (unit tests): blocking */
        engine_reconcile_soon(e);
        return;
    }
    if (interrupted) {
        /* yund died between spawning QEMU and letting the guest run. */
        if (vm.desired == WANT_RUNNING && rt->watch &&
            qmp_watch_command(rt->watch, "cont", NULL, on_reattach_cont, rt) == 0) {
            rt->reattaching = true; /* until cont is answered */
            return;
        }
        if (!strcmp(status, "prelaunch"))
            ns = VM_PAUSED;
    } else if (!strcmp(status, "running")) {
        /* a graceful stop in progress stays one: its deadline is re-armed */
        ns = vm.state == VM_STOPPING ? VM_STOPPING : VM_RUNNING;
    } else if (!strcmp(status, "paused") || !strcmp(status, "suspended")) {
        ns = vm.state == VM_STOPPING ? VM_STOPPING : VM_PAUSED;
    } else if (!strcmp(status, "shutdown")) {
        ns = VM_STOPPING;
    } else if (!strcmp(status, "guest-panicked") || !strcmp(status, "internal-error")) {
        ns = VM_CRASHED;
    }
    reattach_finish(e, rt, &vm, ns, status);
}

static void reattach(struct engine *e, struct vm_rec *vm, pid_t pid)
{
    struct vm_rt *rt = engine_rt_get(e, vm);
    if (!rt || rt->reattaching)
        return; /* its status is on the way */
    bool was_watched = rt->watch != NULL;
    rt->pid = pid;
    /* a QEMU found by the process table gets its pidfile back, so later
     * passes take the fast path */
    if (!was_watched && qemu_pidfile_write(e->vms_dir, vm->id, pid) < 0)
        log_warn("vm %s: cannot write its pidfile: %s", vm->name, strerror(errno));
    engine_attach_watch(e, rt, vm);
    rt->reattach_fresh |= !was_watched;
    /* the rest when QEMU answers on the event connection */
    if (rt->watch &&
        qmp_watch_command(rt->watch, "query-status", NULL, on_reattach_status, rt) == 0) {
        rt->reattaching = true;
        return;
    }
    log_warn("vm %s: pid %d alive but QMP unreachable", vm->name, (int)pid);
    if (vm->pid != pid && vm_state_has_process(vm->state)) {
        vm->pid = pid;
        engine_store_update(e, vm);
    }
    engine_stop_rearm(e, vm);
}

static void sweep_orphans(struct pass *p, const struct vm_rec *vms, size_t n)
{
    struct engine *e = p->e;
    DIR *d = opendir(e->vms_dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        bool known = false;
        for (size_t i = 0; i < n && !known; i++)
            known = !strcmp(vms[i].id, de->d_name);
        if (known)
            continue;
        struct vm_rec ghost = {0};
        snprintf(ghost.id, sizeof(ghost.id), "%.36s", de->d_name);
        snprintf(ghost.name, sizeof(ghost.name), "%.36s", de->d_name);
        pid_t pid = 0;
        enum qemu_seen seen = seek(p, &ghost, &pid);
        if (seen != QEMU_GONE && e->end_qemu) {
            /* its files go on a later pass, once the agent has ended it */
            engine_event(e, "vm", ghost.id, "orphan", "info",
                         "ending the qemu of a directory with no vm record");
            e->end_qemu(e->vm_hooks_ctx, &ghost);
            continue;
        }
        if (seen != QEMU_GONE && engine_qemu_end(e, &ghost) < 0)
            continue; /* never remove files under a QEMU that may live */
        char dir[512];
        if (snprintf_checked(dir, sizeof(dir), "%s/%s", e->vms_dir, de->d_name) < 0)
            continue;
        remove_tree(dir);
        engine_event(e, "vm", ghost.id, "orphan", "info", "removed directory with no vm record%s",
                     pid ? " and ended its qemu" : "");
    }
    closedir(d);
}

void engine_reconcile(struct engine *e)
{
    /* volume rows and pool files: ctl_volumes_reconcile (ctl/volumes.c),
     * which knows which rows a running task owns */
    struct vm_rec *vms;
    size_t n;
    if (store_vm_list(e->store, &vms, &n) != 0) {
        log_err("reconcile: %s", store_errmsg(e->store));
        return;
    }
    struct pass p = {.e = e};
    bool again = false;
    for (size_t i = 0; i < n; i++) {
        struct vm_rec *vm = &vms[i];
        if ((vm->state == VM_CREATING || vm->state == VM_DELETING) && e->finish_delete) {
            /* the controller finishes it through the agent (vm.end,
             * vm.remove), never waiting here */
            e->finish_delete(e->vm_hooks_ctx, vm);
            continue;
        }
        if (vm->state == VM_CREATING || vm->state == VM_DELETING) {
            bool creating = vm->state == VM_CREATING;
            if (engine_vm_finish_delete(e, vm) < 0)
                continue; /* a QEMU may live: the row stays for the next pass */
            engine_event(e, "vm", vm->name, creating ? "create" : "delete",
                         creating ? "error" : "ok", "%s",
                         creating ? "rolled back: yund stopped before the create finished"
                                  : "finished after yund restart");
            continue;
        }
        struct vm_rt *rt = engine_rt_find(e, vm->id);
        if (rt && rt->exit_timer && evtimer_pending(rt->exit_timer, NULL))
            continue; /* its exit is being handled right now */
        if (rt && rt->launch)
            continue; /* a start in progress (agent_launch.c) settles it */
        pid_t pid = 0;
        switch (seek(&p, vm, &pid)) {
        case QEMU_UP:
            if (!rt || !rt->watch || vm->state == VM_STARTING || vm->pid != pid ||
                !vm_state_has_process(vm->state))
                reattach(e, vm, pid);
            else
                engine_stop_rearm(e, vm);
            break;
        case QEMU_COMING:
            /* A start that yund did not see finish (it died in it, or a
             * wrapper has yet to exec QEMU): a row that says no QEMU is held
             * in "starting" so no second start can run (a stopping one stays
             * stopping: its deadline ends what comes), and looked at again
             * shortly. */
            again = true;
            engine_stop_rearm(e, vm);
            if (vm->state == VM_STOPPED || vm->state == VM_CRASHED) {
                engine_event(e, "vm", vm->name, "reattach", "info",
                             "a qemu of this vm is starting (pid %d): %s -> starting", (int)pid,
                             vm_state_name(vm->state));
                vm->state = VM_STARTING;
                engine_store_update(e, vm);
            }
            break;
        case QEMU_UNSURE:
            log_warn("reconcile: cannot tell whether vm %s has a qemu (/proc unreadable); "
                     "leaving it as %s",
                     vm->name, vm_state_name(vm->state));
            again = true;
            break;
        case QEMU_GONE:
            if (vm->state == VM_STARTING && now_ms() - vm->updated_at < START_HOLD_MS) {
                /* Between fork and exec the child still wears yund's command
                 * line: a start this recent may yet show its QEMU. */
                again = true;
                break;
            }
            if (vm_state_has_process(vm->state)) {
                engine_vm_handle_exit(e, vm->id, !rt || !rt->watch);
                break;
            }
            if (!e->cgroups_swept) {
                /* a yund killed between an exit's row and the removal of
                 * its cgroup left the group: the first pass removes it */
                char group[48];
                engine_vm_cgroup(vm, group);
                engine_cgroup_remove(e, group);
            }
            if (rt && !rt->watch && !rt->launch)
                engine_rt_drop(e, rt); /* a restart's timer is the controller's */
            break;
        }
    }
    e->cgroups_swept = true;
    /* Reload: the loop above may have deleted rows. */
    free(vms);
    if (store_vm_list(e->store, &vms, &n) == 0) {
        sweep_orphans(&p, vms, n);
        vm_disks_reconcile(e, vms, n);
        engine_housekeeping(e, vms, n);
        free(vms);
    }
    if (p.scanned)
        qemu_scan_free(&p.scan);
    if (again)
        engine_reconcile_soon(e);
}

static void settle_expired(evutil_socket_t fd, short what, void *arg)
{
    *(bool *)arg = true;
}

static bool any_reattaching(struct engine *e)
{
    for (struct vm_rt *rt = e->rts; rt; rt = rt->next)
        if (rt->reattaching)
            return true;
    return false;
}

void engine_reconcile_settle(struct engine *e, int timeout_ms)
{
    bool expired = false;
    struct event *t = evtimer_new(e->base, settle_expired, &expired);
    if (!t)
        return;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (!expired && any_reattaching(e) && event_base_loop(e->base, EVLOOP_ONCE) == 0)
        ;
    event_free(t);
}
