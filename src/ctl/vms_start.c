/*
 * vms_start.c - the controller's side of starting a VM: the state of record
 * (the image row and its memory check, capacity admission, the intent row
 * "starting" / desired running before any side effect, the row and events
 * when it ends, the vm.start task that keeps other operations off the VM)
 * around the agent's vm.launch (agent/agent_launch.c), never waited for on
 * the loop. The API's start, create with start=true and the engine's
 * restart-policy restarts all come here.
 *
 * The two-QEMU guard (qemu_seek over the process table) is the agent's
 * first step: only the host can see its processes, and there it runs right
 * before anything is done, with nothing in between.
 */
#include "agent/agent.h"
#include "ctl/pools.h"
#include "ctl/hosts.h"
#include "agent/agent_wire.h"
#include "compute/engine.h"
#include "ctl/ctl.h"
#include "ctl/images_fetch.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_start {
    struct ctl_start *next;
    struct ctl *c;
    struct task_rec task;
    char vm_id[37], vm_name[64];
    enum vm_state before_state;
    enum vm_desired before_desired;
    bool restart;
    ctl_vm_fn done;
    void *ctx;
    uint64_t call;
};

static void task_end(struct ctl *c, const struct task_rec *task, const struct vm_rec *vm,
                     const struct yerr *err)
{
    if (!c->tasks || !task->id[0])
        return;
    if (err && err->code)
        task_fail(c->tasks, task->id, err);
    else
        task_succeed(c->tasks, task->id,
                     vm ? json_pack("{s:s,s:s}", "vm", vm->name, "state", vm_state_name(vm->state))
                        : NULL);
}

static void unlink_start(struct ctl *c, struct ctl_start *k)
{
    for (struct ctl_start **pp = &c->starts; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            return;
        }
}

/* ---- the spec the agent gets ---- */

/* Each attached volume with the volumes it is a linked clone of. */
static int spec_volumes(struct ctl *c, const struct vm_rec *vm, struct launch_spec *s,
                        struct yerr *err)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list_attached(c->store, vm->id, &vs, &n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    int rc = 0;
    if (n > LAUNCH_VOLS_MAX)
        rc = yerr_set(err, YE_CONFLICT, "vm '%s' has more than %d volumes", vm->name,
                      LAUNCH_VOLS_MAX);
    s->vols = rc == 0 && n ? calloc(n, sizeof *s->vols) : NULL;
    if (rc == 0 && n && !s->vols)
        rc = yerr_set(err, YE_INTERNAL, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct launch_vol *lv = &s->vols[i];
        s->nvols = i + 1;
        if (!ctl_host_same(c, vs[i].host, vm->host)) {
            rc = yerr_set(err, YE_CONFLICT, "volume '%s' is on another host than vm '%s'",
                          vs[i].name, vm->name);
            break;
        }
        lv->rec = vs[i];
        lv->layers = calloc(LAUNCH_CHAIN_MAX, sizeof *lv->layers);
        if (!lv->layers) {
            rc = yerr_set(err, YE_INTERNAL, "out of memory");
            break;
        }
        struct volume_rec layer = vs[i];
        for (;;) {
            if (lv->n == LAUNCH_CHAIN_MAX) {
                rc = yerr_set(err, YE_CONFLICT, "volume '%s' is a linked clone too deep",
                              vs[i].name);
                break;
            }
            snprintf(lv->layers[lv->n].path, sizeof lv->layers[0].path, "%s", layer.path);
            snprintf(lv->layers[lv->n].format, sizeof lv->layers[0].format, "%s", layer.format);
            lv->n++;
            if (!layer.backing[0])
                break;
            char name[64];
            snprintf(name, sizeof(name), "%s", layer.backing);
            if (store_volume_get(c->store, name, &layer) != 0) {
                rc = yerr_set(err, YE_INTERNAL, "volume '%s': its backing volume '%s' is missing",
                              vs[i].name, name);
                break;
            }
        }
    }
    free(vs);
    return rc;
}

/* ---- the reply ---- */

static void on_launch(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct ctl_start *k = ctx;
    struct ctl *c = k->c;
    unlink_start(c, k);
    struct yerr err = {0};
    struct vm_rec vm;
    int rc = ctl_vm_get(c, k->vm_id, &vm, &err);
    const char *ev = k->restart ? "restart" : "start";
    if (rc == 0 && !aerr) {
        const char *accel = json_string_value(json_object_get(r, "accel"));
        /* a QMP event may have moved the row on already (RESUME); an exit
         * told between the launch's end and this reply made it stopped,
         * and a stopped row names no pid */
        if (vm_state_has_process(vm.state)) {
            vm.pid = (pid_t)json_integer_value(json_object_get(r, "pid"));
            vm.started_at = now_ms();
        }
        if (vm.state == VM_STARTING)
            vm.state = VM_RUNNING;
        vm.updated_at = now_ms();
        if (store_vm_update(c->store, &vm) != 0)
            rc = yerr_db(&err, store_errmsg(c->store));
        ctl_event(c, "vm", vm.name, "start", "ok", "pid %d, accel %s", (int)vm.pid,
                  accel ? accel : vm.accel_used);
        if (k->restart)
            ctl_event(c, "vm", vm.name, "restart", "ok", "restart policy %s (restart #%d)",
                      restart_policy_name(vm.restart), vm.restarts);
    } else if (rc == 0) {
        err = *aerr;
        rc = -1;
        if (err.code == YE_UNAVAILABLE) {
            /* its QEMU may still run (or /proc could not tell): the row
             * stays "starting" with desired stopped, so reconcile ends that
             * QEMU rather than continue it */
            vm.desired = WANT_STOPPED;
        } else if (err.code == YE_CONFLICT) {
            /* refused before or undone after any side effect: the row is
             * what it was (a QEMU found is reconcile's to re-attach) */
            vm.state = k->before_state;
            vm.desired = k->before_desired;
        } else {
            vm.state = VM_STOPPED;
            vm.desired = WANT_STOPPED;
            vm.pid = 0;
            vm.started_at = 0;
        }
        snprintf(vm.last_error, sizeof(vm.last_error), "%s", err.message);
        vm.updated_at = now_ms();
        if (store_vm_update(c->store, &vm) != 0)
            log_err("vm %s: %s", vm.name, store_errmsg(c->store));
        ctl_event(c, "vm", vm.name, ev, "error", "%s", err.message);
    } else {
        ctl_event(c, "vm", k->vm_name, ev, "error", "%s", err.message);
    }
    task_end(c, &k->task, rc == 0 ? &vm : NULL, rc == 0 ? NULL : &err);
    if (k->done)
        k->done(k->ctx, rc == 0 ? &vm : NULL, rc == 0 ? NULL : &err);
    free(k);
}

/* ---- the start ---- */

int ctl_vm_start(struct ctl *c, const char *name, unsigned flags, ctl_vm_fn done, void *ctx,
                 struct yerr *err)
{
    struct vm_rec vm;
    char why[256];
    if (ctl_vm_get(c, name, &vm, err) < 0)
        return -1;
    if (vm_action_check(&vm, ACT_START, false, why, sizeof(why)) < 0)
        return yerr_set(err, YE_CONFLICT, "%s", why);
    if (!ctl_vm_agent(c, &vm, err))
        return -1; /* its host is down: 503, nothing changed */
    struct ctl_start *k = calloc(1, sizeof(*k));
    if (!k)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    k->c = c;
    k->restart = flags & CTL_START_RESTART;
    k->done = done;
    k->ctx = ctx;
    k->before_state = vm.state;
    k->before_desired = vm.desired;
    snprintf(k->vm_id, sizeof(k->vm_id), "%s", vm.id);
    snprintf(k->vm_name, sizeof(k->vm_name), "%s", vm.name);
    k->task.id[0] = 0;
    /* one operation per VM at a time: a stop or delete meanwhile is told
     * which task holds it */
    if (c->tasks && task_begin(c->tasks, "vm.start", "vm", vm.id, vm.name, &k->task, err) < 0) {
        free(k);
        return -1;
    }
    struct launch_spec spec;
    memset(&spec, 0, sizeof spec);
    json_t *args = NULL;
    int rc = store_image_get(c->store, vm.image, &spec.img);
    if (rc != 0) {
        if (rc == STORE_NOTFOUND)
            yerr_set(err, YE_CONFLICT, "image '%s' of vm '%s' is missing", vm.image, vm.name);
        else
            yerr_db(err, store_errmsg(c->store));
        goto refused;
    }
    if (engine_image_memory_check(&spec.img, vm.memory_mb, err) < 0)
        goto refused; /* it would only reset for ever */
    /* on a host with a library of its own: its copy */
    ctl_image_on_host(c, vm.host, &spec.img);
    if (ctl_capacity_admit(c, &vm, err) < 0)
        goto refused; /* capacity: this host's share is taken */
    snprintf(vm.accel_used, sizeof(vm.accel_used), "%s",
             strcmp(vm.accel, "auto") ? vm.accel : ctl_vm_facts(c, &vm)->accel);
    spec.vm = vm;
    if (ctl_pool_disk_dir(c, &spec.vm, err) < 0)
        goto refused;
    if (spec_volumes(c, &vm, &spec, err) < 0)
        goto refused;
    args = launch_spec_to_json(&spec);
    launch_spec_free(&spec);
    if (args && vm.ha) /* the agent's fence keeper watches its QEMU */
        json_object_set_new(args, "ha", json_true());
    if (!args) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        goto refused;
    }

    /* Intent before side effects. */
    vm.state = VM_STARTING;
    vm.desired = WANT_RUNNING;
    vm.last_error[0] = 0;
    vm.stop_deadline = 0;
    vm.updated_at = now_ms();
    if (store_vm_update(c->store, &vm) != 0) {
        yerr_db(err, store_errmsg(c->store));
        goto refused;
    }
    FAILPOINT("vm_start.after_row");
    k->call = ctl_vm_call(c, &vm, AV_VM_LAUNCH, args, on_launch, NULL, k);
    args = NULL;
    if (!k->call) {
        yerr_set(err, YE_INTERNAL, "agent: the call could not be made");
        vm.state = k->before_state;
        vm.desired = k->before_desired;
        store_vm_update(c->store, &vm);
        goto refused;
    }
    k->next = c->starts;
    c->starts = k;
    return 0;

refused:
    launch_spec_free(&spec);
    json_decref(args);
    task_end(c, &k->task, NULL, err);
    free(k);
    return -1;
}

void ctl_vm_uid_seen(struct ctl *c, json_t *ev)
{
    const char *id = json_string_value(json_object_get(ev, "vm"));
    json_t *uid = json_object_get(ev, "uid");
    struct vm_rec vm;
    if (!id || !json_is_integer(uid) || store_vm_get(c->store, id, &vm) != 0)
        return;
    if (json_is_true(json_object_get(ev, "incoming")))
        return; /* a migration's target: the row takes its uid at the commit */
    vm.uid = (uint32_t)json_integer_value(uid);
    vm.updated_at = now_ms();
    if (store_vm_update(c->store, &vm) != 0)
        log_err("vm %s: uid %u not recorded: %s", vm.name, vm.uid, store_errmsg(c->store));
}

void ctl_starts_forget(struct ctl *c, void *ctx)
{
    for (struct ctl_start *k = c->starts; k; k = k->next)
        if (k->ctx == ctx)
            k->done = NULL;
}

void ctl_starts_shutdown(struct ctl *c)
{
    while (c->starts) {
        struct ctl_start *k = c->starts;
        c->starts = k->next;
        ctl_agents_forget(c, k);
        /* the row stays "starting": the next yund's reconcile settles it */
        struct yerr e;
        yerr_set(&e, YE_CANCELLED, "yund stopped");
        task_end(c, &k->task, NULL, &e);
        free(k);
    }
}
