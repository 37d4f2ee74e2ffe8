/*
 * vm_volumes.c - attaching volumes to VMs and detaching them.
 *
 * A volume attached to a stopped VM is only a row (attached_to); the VM's
 * command line carries it from the next start on. On a running VM the
 * volume is hot-plugged: blockdev-add opens the file as a named node, then
 * device_add puts a virtio-blk device on it. Detaching a running VM's
 * volume needs the guest's consent: device_del asks the guest to release
 * the PCI device, and only when QEMU reports DEVICE_DELETED is the node
 * closed and the volume free. Until then it is "detaching".
 *
 * QEMU is handed the volume's files as open fds (add-fd, /dev/fdset/N),
 * the linked-clone chain below it spelled out node by node: a confined
 * QEMU cannot open anything outside its VM's directory by name.
 *
 * Volume states around attachment: ready -> attaching -> attached ->
 * detaching -> ready. attaching and detaching are also what a crash leaves
 * behind; vm_disks_reconcile() settles them by asking QEMU what it has.
 */
#include "compute/confine.h"
#include "compute/qemu_argv.h"
#include "compute/vm_disks.h"
#include "lib/log.h"
#include "storage/volumes.h"
#include "storage/volstate.h"
#include "lib/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_MAX 16 /* linked clones of linked clones: deeper is refused */

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

static json_t *qemu_devices(struct engine *e, const struct vm_rec *vm);
static bool has_device(json_t *devs, const char *id);

/* blockdev-add arguments for v and the volumes it is a linked clone of,
 * each file passed as an fd (read-write for v, read-only below it); the
 * fdsets made are put in sets[] (*nsets of them). NULL on error. */
static json_t *chain_args(struct engine *e, const struct vm_rec *vm, const struct volume_rec *v,
                          int64_t sets[CHAIN_MAX], int *nsets, struct yerr *err)
{
    struct volume_rec layer = *v;
    json_t *top = NULL, *above = NULL;
    for (int depth = 0;; depth++) {
        if (depth == CHAIN_MAX) {
            yerr_set(err, YE_CONFLICT, "volume '%s' is a linked clone more than %d deep", v->name,
                     CHAIN_MAX);
            break;
        }
        if (vm_qmp_add_fd(e, vm, layer.path, depth ? O_RDONLY : O_RDWR, &sets[*nsets], err) < 0)
            break;
        char fdset[32];
        snprintf(fdset, sizeof(fdset), "/dev/fdset/%lld", (long long)sets[(*nsets)++]);
        json_t *node = json_pack("{s:s,s:{s:s,s:s}}", "driver", layer.format, "file", "driver",
                                 "file", "filename", fdset);
        if (depth)
            json_object_set_new(node, "read-only", json_true());
        if (above)
            json_object_set_new(above, "backing", node);
        else
            top = node;
        above = node;
        if (!layer.backing[0])
            return top;
        char name[64];
        snprintf(name, sizeof(name), "%s", layer.backing);
        if (store_volume_get(e->store, name, &layer) != 0) {
            yerr_set(err, YE_INTERNAL, "volume '%s': its backing volume '%s' is missing", v->name,
                     name);
            break;
        }
    }
    json_decref(top);
    return NULL;
}

static int hotplug(struct engine *e, const struct vm_rec *vm, const struct volume_rec *v,
                   struct yerr *err)
{
    char node[24], dev[24], serial[24];
    volume_qemu_ids(v, node, dev, serial);
    int64_t sets[CHAIN_MAX];
    int nsets = 0;
    json_t *args = chain_args(e, vm, v, sets, &nsets, err);
    int rc = -1;
    if (args) {
        json_object_set_new(args, "node-name", json_string(node));
        json_object_set_new(args, "discard", json_string("unmap"));
        rc = engine_vm_qmp(e, vm, "blockdev-add", args, NULL, err);
        json_decref(args);
    }
    /* the nodes hold their own copies now; the sets go once those close */
    for (int i = 0; i < nsets; i++)
        vm_qmp_remove_fdset(e, vm, sets[i]);
    if (rc < 0)
        return -1;
    args = json_pack("{s:s,s:s,s:s,s:s}", "driver", "virtio-blk-pci", "id", dev, "drive", node,
                     "serial", serial);
    rc = engine_vm_qmp(e, vm, "device_add", args, NULL, err);
    json_decref(args);
    if (rc < 0) {
        struct yerr ignore;
        args = json_pack("{s:s}", "node-name", node);
        engine_vm_qmp(e, vm, "blockdev-del", args, NULL, &ignore);
        json_decref(args);
        return -1;
    }
    return 0;
}

/* Closes a volume's block node after its device is gone; a node that is
 * not there (QEMU restarted, or it was closed already) is fine. */
static void close_node(struct engine *e, const struct vm_rec *vm, const struct volume_rec *v)
{
    char node[24], dev[24], serial[24];
    volume_qemu_ids(v, node, dev, serial);
    json_t *args = json_pack("{s:s}", "node-name", node);
    struct yerr ignore;
    engine_vm_qmp(e, vm, "blockdev-del", args, NULL, &ignore);
    json_decref(args);
}

int engine_volume_attach(struct engine *e, const char *volume, const char *vmname,
                         struct volume_rec *out, struct yerr *err)
{
    struct volume_rec v;
    struct vm_rec vm;
    if (volume_get(e->store, volume, &v, err) < 0 || engine_vm_get(e, vmname, &vm, err) < 0)
        return -1;
    if (v.attached_to[0]) {
        struct vm_rec other;
        const char *who = store_vm_get(e->store, v.attached_to, &other) == 0 ? other.name : "?";
        return yerr_set(err, YE_CONFLICT, "volume '%s' is already attached to vm '%s'", v.name,
                        who);
    }
    if (v.state != VOL_READY)
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v.name, vol_state_name(v.state));
    if (volume_refuse_backing(e->store, &v,
                              "writing to it would corrupt them (attach a clone instead)", err) < 0)
        return -1;
    bool live = vm_state_live(vm.state);
    if (!live && !vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    if (volume_save(e, &v, live ? VOL_ATTACHING : VOL_ATTACHED, vm.id, err) < 0)
        return -1;
    if (live && hotplug(e, &vm, &v, err) < 0) {
        /* A lost reply (timeout) is not "nothing happened": ask QEMU. */
        char node[24], dev[24], serial[24];
        volume_qemu_ids(&v, node, dev, serial);
        json_t *devs = qemu_devices(e, &vm);
        bool there = devs && has_device(devs, dev);
        json_decref(devs);
        if (!devs) {
            engine_event(e, "volume", v.name, "attach", "error",
                         "vm %s: QEMU does not answer; left for the reconcile pass", vm.name);
            return -1;
        }
        if (!there) {
            struct yerr ignore;
            close_node(e, &vm, &v);
            volume_save(e, &v, VOL_READY, "", &ignore);
            engine_event(e, "volume", v.name, "attach", "error", "vm %s: %s", vm.name,
                         err->message);
            return -1;
        }
    }
    if (live && volume_save(e, &v, VOL_ATTACHED, vm.id, err) < 0)
        return -1;
    engine_event(e, "volume", v.name, "attach", "ok", "vm %s%s", vm.name,
                 live ? " (hot-plugged)" : "");
    *out = v;
    return 0;
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
    if (!known || !vm_state_has_process(vm.state)) {
        finish_detach(e, known ? &vm : NULL, false, &v, "");
        *out = v;
        return 0;
    }
    if (!vm_state_live(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    char node[24], dev[24], serial[24];
    volume_qemu_ids(&v, node, dev, serial);
    if (volume_save(e, &v, VOL_DETACHING, vm.id, err) < 0)
        return -1;
    json_t *args = json_pack("{s:s}", "id", dev);
    struct yerr qerr = {0};
    int rc = engine_vm_qmp(e, &vm, "device_del", args, NULL, &qerr);
    json_decref(args);
    if (rc < 0 && strstr(qerr.message, "in the process of unplug"))
        rc = 0; /* asked before; the guest has not let go yet */
    if (rc < 0 && strstr(qerr.message, "not found")) {
        /* the device is gone already (an earlier request got through) */
        finish_detach(e, &vm, true, &v, "");
        *out = v;
        return 0;
    }
    if (rc < 0) {
        struct yerr ignore;
        volume_save(e, &v, VOL_ATTACHED, vm.id, &ignore);
        *err = qerr;
        return -1;
    }
    engine_event(e, "volume", v.name, "detach", "info", "vm %s: asked the guest to release it",
                 vm.name);
    *out = v;
    return 1;
}

int vm_volume_resize_live(struct engine *e, const struct vm_rec *vm, const struct volume_rec *v,
                          uint64_t size, struct yerr *err)
{
    if (!vm_state_live(vm->state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm->name,
                        vm_state_name(vm->state));
    char node[24], dev[24], serial[24];
    volume_qemu_ids(v, node, dev, serial);
    json_t *args = json_pack("{s:s,s:I}", "node-name", node, "size", (json_int_t)size);
    int rc = engine_vm_qmp(e, vm, "block_resize", args, NULL, err);
    json_decref(args);
    return rc;
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

/* User-created devices QEMU has now (ids under /machine/peripheral). */
static json_t *qemu_devices(struct engine *e, const struct vm_rec *vm)
{
    json_t *args = json_pack("{s:s}", "path", "/machine/peripheral"), *ret = NULL;
    struct yerr ignore;
    engine_vm_qmp(e, vm, "qom-list", args, &ret, &ignore);
    json_decref(args);
    return json_is_array(ret) ? ret : (json_decref(ret), NULL);
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

void vm_volumes_reconcile(struct engine *e)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(e->store, &vs, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct volume_rec *v = &vs[i];
        bool attaching = v->state == VOL_ATTACHING, detaching = v->state == VOL_DETACHING;
        if (!attaching && !detaching)
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
        char node[24], dev[24], serial[24];
        volume_qemu_ids(v, node, dev, serial);
        json_t *devs = qemu_devices(e, &vm);
        if (!devs)
            continue; /* QEMU did not answer: ask again next pass */
        bool present = has_device(devs, dev);
        json_decref(devs);
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
