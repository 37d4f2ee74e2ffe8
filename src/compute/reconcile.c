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
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pid_t live_qemu_pid(struct engine *e, const struct vm_rec *vm)
{
    char pidfile[512];
    pid_t pid = vm->pid;
    if (engine_vm_path(e, vm, VMDIR_PIDFILE, pidfile, sizeof(pidfile)) == 0) {
        char *s = read_file(pidfile, 64, NULL);
        if (s) {
            long v = strtol(s, NULL, 10);
            if (v > 1)
                pid = (pid_t)v;
            free(s);
        }
    }
    /* A recycled pid belongs to some other program: check it is our QEMU. */
    if (pid > 0 && pid_alive(pid) && pid_cmdline_contains(pid, vm->id))
        return pid;
    return 0;
}

static void reattach(struct engine *e, struct vm_rec *vm, pid_t pid)
{
    struct vm_rt *rt = engine_rt_get(e, vm);
    if (!rt)
        return;
    bool was_watched = rt->watch != NULL;
    rt->pid = pid;
    engine_attach_watch(e, rt, vm);
    char qmp[512], status[32], err[256];
    engine_vm_path(e, vm, VMDIR_QMP, qmp, sizeof(qmp));
    if (qmp_query_status(qmp, status, sizeof(status), err, sizeof(err)) < 0) {
        log_warn("vm %s: pid %d alive but QMP unreachable: %s", vm->name, (int)pid, err);
        return;
    }
    enum vm_state ns = vm->state;
    if (!strcmp(status, "prelaunch") || vm->state == VM_STARTING) {
        /* yund died between spawning QEMU and letting the guest run. */
        char why[256];
        if (e->cg.mode != CG_NONE)
            cg_vm_attach(&e->cg, vm->name, pid, why, sizeof(why));
        if (vm->desired == WANT_RUNNING &&
            qmp_command(qmp, "cont", NULL, NULL, 5000, why, sizeof(why)) == 0) {
            ns = VM_RUNNING;
            engine_event(e, "vm", vm->name, "start", "ok", "start finished after yund restart");
        } else if (!strcmp(status, "prelaunch")) {
            ns = VM_PAUSED;
        }
    } else if (!strcmp(status, "running")) {
        ns = VM_RUNNING;
    } else if (!strcmp(status, "paused") || !strcmp(status, "suspended")) {
        ns = vm->state == VM_STOPPING ? VM_STOPPING : VM_PAUSED;
    } else if (!strcmp(status, "shutdown")) {
        ns = VM_STOPPING;
    } else if (!strcmp(status, "guest-panicked") || !strcmp(status, "internal-error")) {
        ns = VM_CRASHED;
    }
    if (!was_watched && vm->pid == pid && ns == vm->state && vm->started_at)
        log_info("vm %s: re-attached to running qemu pid %d (%s)", vm->name, (int)pid, status);
    if (ns != vm->state || vm->pid != pid) {
        if (!was_watched)
            engine_event(e, "vm", vm->name, "reattach", "info", "qemu pid %d, %s -> %s", (int)pid,
                         vm_state_name(vm->state), vm_state_name(ns));
        vm->state = ns;
        vm->pid = pid;
        if (!vm->started_at)
            vm->started_at = now_ms();
        engine_store_update(e, vm);
    }
}

static void sweep_orphans(struct engine *e, const struct vm_rec *vms, size_t n)
{
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
        pid_t pid = live_qemu_pid(e, &ghost);
        if (pid)
            engine_qemu_kill(e, &ghost, pid);
        char dir[512];
        if (snprintf_checked(dir, sizeof(dir), "%s/%s", e->vms_dir, de->d_name) < 0)
            continue;
        remove_tree(dir);
        engine_event(e, "vm", ghost.id, "orphan", "info", "removed directory with no vm record%s",
                     pid ? " and ended its qemu" : "");
    }
    closedir(d);
}

/* Volumes: finish or undo what a crash interrupted, and remove files in the
 * pool that no row owns (a create that died before its row, a compact's
 * temporary copy). */
static void reconcile_volumes(struct engine *e)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(e->store, &vs, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(vs[i].state, "creating") || !strcmp(vs[i].state, "deleting")) {
            if (unlink(vs[i].path) < 0 && errno != ENOENT)
                log_warn("cannot remove %s: %s", vs[i].path, strerror(errno));
            store_volume_delete(e->store, vs[i].id);
            engine_event(e, "volume", vs[i].name, vs[i].state[0] == 'c' ? "create" : "delete",
                         vs[i].state[0] == 'c' ? "error" : "ok", "%s",
                         vs[i].state[0] == 'c' ? "rolled back: yund stopped before it finished"
                                               : "finished after yund restart");
            vs[i].path[0] = 0;
        }
    }
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/pools/default", e->cfg->state_dir);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char path[800];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            bool owned = false;
            for (size_t i = 0; i < n && !owned; i++)
                owned = !strcmp(vs[i].path, path);
            if (!owned) {
                unlink(path);
                engine_event(e, "volume", de->d_name, "orphan", "info",
                             "removed a pool file with no volume record");
            }
        }
        closedir(d);
    }
    free(vs);
}

void engine_reconcile(struct engine *e)
{
    reconcile_volumes(e);
    struct vm_rec *vms;
    size_t n;
    if (store_vm_list(e->store, &vms, &n) != 0) {
        log_err("reconcile: %s", store_errmsg(e->store));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct vm_rec *vm = &vms[i];
        if (vm->state == VM_CREATING) {
            engine_vm_finish_delete(e, vm);
            engine_event(e, "vm", vm->name, "create", "error",
                         "rolled back: yund stopped before the create finished");
            continue;
        }
        if (vm->state == VM_DELETING) {
            engine_vm_finish_delete(e, vm);
            engine_event(e, "vm", vm->name, "delete", "ok", "finished after yund restart");
            continue;
        }
        struct vm_rt *rt = engine_rt_find(e, vm->id);
        if (rt && rt->exit_timer && evtimer_pending(rt->exit_timer, NULL))
            continue; /* its exit is being handled right now */
        pid_t pid = live_qemu_pid(e, vm);
        if (pid) {
            if (!rt || !rt->watch || vm->state == VM_STARTING || vm->pid != pid)
                reattach(e, vm, pid);
        } else if (vm_state_has_process(vm->state)) {
            engine_vm_handle_exit(e, vm->id, !rt || !rt->watch);
        } else if (rt && !rt->watch &&
                   !(rt->restart_timer && evtimer_pending(rt->restart_timer, NULL))) {
            engine_rt_drop(e, rt);
        }
    }
    /* Reload: the loop above may have deleted rows. */
    free(vms);
    if (store_vm_list(e->store, &vms, &n) == 0) {
        sweep_orphans(e, vms, n);
        vm_disks_reconcile(e, vms, n);
        engine_housekeeping(e, vms, n);
        free(vms);
    }
}
