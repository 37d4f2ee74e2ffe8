/*
 * vm_volumes.c - what compute owns of volumes attached to VMs: whether a
 * QEMU holds a volume, the row settled when QEMU reports DEVICE_DELETED,
 * when the VM's QEMU exits or the VM is deleted, and the reconcile pass's
 * settling of "attaching"/"detaching" rows by asking QEMU (qom-list over
 * the event connection, never a blocking exchange).
 *
 * The hot-plug itself (add-fd, blockdev-add, device_add) and the device_del
 * of a detach are the agent's verbs (agent/agent_hotplug.c), called by the
 * controller (ctl/volumes_attach.c, ctl/volumes_detach.c), which holds the
 * volume from the reconcile pass while one is in flight (vm_volume_hold).
 *
 * Volume states around attachment: ready -> attaching -> attached ->
 * detaching -> ready. attaching and detaching are also what a crash leaves
 * behind; vm_volumes_reconcile() settles them.
 */
#include "compute/qmp.h"
#include "compute/qemu_argv.h"
#include "compute/vm_disks.h"
#include "lib/log.h"
#include "storage/volumes.h"
#include "storage/volstate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int volume_save(struct engine *e, struct volume_rec *v, enum vol_state state,
                       const char *attached_to, struct yerr *err)
{
    if (v->state != state && !vol_state_can(v->state, state))
        log_warn("volume %s: %s -> %s is not a transition of the volume state machine", v->name,
                 vol_state_name(v->state), vol_state_name(state));
    v->state = state;
    snprintf(v->attached_to, sizeof(v->attached_to), "%s", attached_to);
    if (store_volume_update(e->store, v) != 0)
        return yerr_db(err, store_errmsg(e->store));
    return 0;
}

bool vm_volume_in_use(struct engine *e, const struct volume_rec *v, struct vm_rec *vm)
{
    if (!v->attached_to[0] || store_vm_get(e->store, v->attached_to, vm) != 0)
        return false;
    return vm_state_has_process(vm->state);
}

/* Volumes whose attach or detach the controller has in flight with the
 * agent (vm_volume_hold): the reconcile pass leaves their rows alone. */
#define HELD_MAX 64
static char held[HELD_MAX][37]; /* one loop per process */

void vm_volume_hold(const char *volume_id, bool on)
{
    for (int i = 0; i < HELD_MAX; i++) {
        if (on && !held[i][0]) {
            snprintf(held[i], sizeof held[i], "%s", volume_id);
            return;
        }
        if (!on && !strcmp(held[i], volume_id)) {
            held[i][0] = 0;
            return;
        }
    }
}

static bool is_held(const char *volume_id)
{
    for (int i = 0; i < HELD_MAX; i++)
        if (held[i][0] && !strcmp(held[i], volume_id))
            return true;
    return false;
}

static void ignore_reply(void *ctx, json_t *ret, const char *err)
{
    (void)ctx;
    (void)ret;
    (void)err;
}

/* Closes a volume's block node after its device is gone; a node that is
 * not there (QEMU restarted, or it was closed already) is fine. Sent over
 * the event connection, not waited for. */
static void close_node(struct engine *e, const struct vm_rec *vm, const struct volume_rec *v)
{
    struct vm_rt *rt = engine_rt_find(e, vm->id);
    if (!rt || !rt->watch)
        return;
    char node[24], dev[24], serial[24];
    volume_qemu_ids(v, node, dev, serial);
    json_t *args = json_pack("{s:s}", "node-name", node);
    qmp_watch_command(rt->watch, "blockdev-del", args, ignore_reply, NULL);
    json_decref(args);
}

int vm_volume_save(struct engine *e, struct volume_rec *v, enum vol_state state,
                   const char *attached_to, struct yerr *err)
{
    return volume_save(e, v, state, attached_to, err);
}

/* The device is gone (or there never was a QEMU): close the node if a
 * QEMU still has it and free the volume. */
static void finish_detach(struct engine *e, const struct vm_rec *vm, bool qemu_up,
                          struct volume_rec *v, const char *how)
{
    struct yerr ignore;
    if (vm && qemu_up)
        close_node(e, vm, v);
    volume_save(e, v, VOL_READY, "", &ignore);
    engine_event(e, "volume", v->name, "detach", "ok", "vm %s%s", vm ? vm->name : "(gone)", how);
}

void vm_volume_detached(struct engine *e, const struct vm_rec *vm, struct volume_rec *v,
                        const char *how)
{
    finish_detach(e, vm, false, v, how);
}

int engine_volume_detach(struct engine *e, const char *volume, struct volume_rec *out,
                         struct yerr *err)
{
    struct volume_rec v;
    struct vm_rec vm;
    if (volume_get(e->store, volume, &v, err) < 0)
        return -1;
    if (!v.attached_to[0])
        return yerr_set(err, YE_CONFLICT, "volume '%s' is not attached", v.name);
    bool known = store_vm_get(e->store, v.attached_to, &vm) == 0;
    if (known && vm_state_has_process(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' has a QEMU: its device goes first", vm.name);
    finish_detach(e, known ? &vm : NULL, false, &v, "");
    *out = v;
    return 0;
}

/* ---- hooks ---- */

void vm_volumes_on_event(struct engine *e, const struct vm_rec *vm, const char *event, json_t *data)
{
    const char *device = json_string_value(json_object_get(data, "device"));
    if (strcmp(event, "DEVICE_DELETED") || !device)
        return;
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list_attached(e->store, vm->id, &vs, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char node[24], dev[24], serial[24];
        volume_qemu_ids(&vs[i], node, dev, serial);
        if (!strcmp(dev, device))
            finish_detach(e, vm, true, &vs[i], " (the guest released it)");
    }
    free(vs);
}

static bool has_device(json_t *devs, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        if (name && !strcmp(name, id))
            return true;
    }
    return false;
}

/* qom-list's answer for one VM: its attaching and detaching volumes are
 * settled by what QEMU has (the rows read again: they may have moved). */
static void on_devices(void *ctx, json_t *ret, const char *err)
{
    struct vm_rt *rt = ctx;
    struct engine *e = rt->eng;
    struct vm_rec vm;
    if (err || !json_is_array(ret) || store_vm_get(e->store, rt->id, &vm) != 0 ||
        !vm_state_live(vm.state))
        return; /* ask again next pass */
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list_attached(e->store, vm.id, &vs, &n) != 0)
        return;
    struct yerr ignore;
    for (size_t i = 0; i < n; i++) {
        struct volume_rec *v = &vs[i];
        bool attaching = v->state == VOL_ATTACHING, detaching = v->state == VOL_DETACHING;
        if ((!attaching && !detaching) || is_held(v->id))
            continue;
        char node[24], dev[24], serial[24];
        volume_qemu_ids(v, node, dev, serial);
        bool present = has_device(ret, dev);
        if (attaching && present) {
            volume_save(e, v, VOL_ATTACHED, vm.id, &ignore);
            engine_event(e, "volume", v->name, "attach", "ok", "vm %s (finished after restart)",
                         vm.name);
        } else if (!present) {
            close_node(e, &vm, v);
            volume_save(e, v, VOL_READY, "", &ignore);
            engine_event(e, "volume", v->name, attaching ? "attach" : "detach",
                         attaching ? "error" : "ok", "vm %s: %s", vm.name,
                         attaching ? "rolled back: yund stopped mid-way" : "device gone");
        }
        /* detaching and still present: the guest has not let go yet */
    }
    free(vs);
}

void vm_volumes_reconcile(struct engine *e)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(e->store, &vs, &n) != 0)
        return;
    char asked[16][37]; /* VMs whose QEMU was asked this pass */
    int nasked = 0;
    for (size_t i = 0; i < n; i++) {
        struct volume_rec *v = &vs[i];
        bool attaching = v->state == VOL_ATTACHING, detaching = v->state == VOL_DETACHING;
        if ((!attaching && !detaching) || is_held(v->id))
            continue;
        struct vm_rec vm;
        struct yerr ignore;
        bool known = store_vm_get(e->store, v->attached_to, &vm) == 0;
        if (known && vm_state_has_process(vm.state) && !vm_state_live(vm.state))
            continue; /* starting or stopping: a QEMU still has it; next pass */
        if (!known || !vm_state_live(vm.state)) {
            /* no QEMU holds it: an attach that never finished is undone,
             * a detach is complete */
            volume_save(e, v, VOL_READY, "", &ignore);
            engine_event(e, "volume", v->name, attaching ? "attach" : "detach",
                         attaching ? "error" : "ok", "%s",
                         attaching ? "rolled back: the vm stopped or yund restarted mid-way"
                                   : "the vm is not running");
            continue;
        }
        /* Ask QEMU what it has, over the event connection; the answer
         * settles every such volume of the VM (on_devices). */
        bool dup = false;
        for (int k = 0; k < nasked; k++)
            dup = dup || !strcmp(asked[k], vm.id);
        struct vm_rt *rt = engine_rt_find(e, vm.id);
        if (dup || nasked == 16 || !rt || !rt->watch)
            continue; /* no connection yet: next pass */
        json_t *args = json_pack("{s:s}", "path", "/machine/peripheral");
        if (qmp_watch_command(rt->watch, "qom-list", args, on_devices, rt) == 0)
            snprintf(asked[nasked++], sizeof asked[0], "%s", vm.id);
        json_decref(args);
    }
    free(vs);
}

/* The VM's QEMU is gone (exit) or the VM itself is (deleted): settle its
 * volumes' attachments. */
static void settle_attachments(struct engine *e, const struct vm_rec *vm, bool deleted)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list_attached(e->store, vm->id, &vs, &n) != 0)
        return;
    struct yerr ignore;
    for (size_t i = 0; i < n; i++) {
        if (deleted) {
            volume_save(e, &vs[i], VOL_READY, "", &ignore);
            engine_event(e, "volume", vs[i].name, "detach", "ok", "vm %s was deleted", vm->name);
        } else if (vs[i].state == VOL_DETACHING) {
            finish_detach(e, vm, false, &vs[i], " (the vm stopped)");
        } else if (vs[i].state == VOL_ATTACHING) {
            volume_save(e, &vs[i], VOL_READY, "", &ignore);
        }
    }
    free(vs);
}

void vm_volumes_on_exit(struct engine *e, const struct vm_rec *vm)
{
    settle_attachments(e, vm, false);
}

void vm_volumes_forget(struct engine *e, const struct vm_rec *vm)
{
    settle_attachments(e, vm, true);
}
