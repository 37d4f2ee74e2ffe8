/*
 * volumes_settle.c - the state of record of volumes attached to VMs: the
 * row's transitions, whether a QEMU holds a volume, and the settling of
 * rows when QEMU reports DEVICE_DELETED, when a VM's QEMU exits, when a VM
 * is deleted (its snapshot rows go too) and on the reconcile pass, which
 * settles "attaching"/"detaching" rows by asking the agent what QEMU has
 * (vm.devices) and closes a gone device's block node (vm.node_close).
 *
 * The hot-plug itself and the device_del of a detach are the agent's verbs
 * (agent/agent_hotplug.c), called from volumes_attach.c and
 * volumes_detach.c, which hold the volume from the reconcile pass while
 * one is in flight (ctl_volume_hold).
 *
 * Volume states around attachment: ready -> attaching -> attached ->
 * detaching -> ready. attaching and detaching are also what a crash leaves
 * behind; ctl_volumes_settle() settles them.
 */
#include "agent/agent.h"
#include "compute/qemu_argv.h"
#include "ctl/ctl.h"
#include "ctl/volumes.h"
#include "lib/log.h"
#include "storage/volstate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A volume event, also told to the detach waits (volumes_detach.c). */
static void volume_event(struct ctl *c, const char *object, const char *action, const char *result,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void volume_event(struct ctl *c, const char *object, const char *action, const char *result,
                         const char *fmt, ...)
{
    struct event_rec ev;
    va_list ap;
    va_start(ap, fmt);
    event_rec_vfill(&ev, "volume", object, action, result, fmt, ap);
    va_end(ap);
    ctl_event_record(c, &ev);
    ctl_volumes_on_event(c, &ev);
}

int ctl_volume_save(struct ctl *c, struct volume_rec *v, enum vol_state state,
                    const char *attached_to, struct yerr *err)
{
    if (v->state != state && !vol_state_can(v->state, state))
        log_warn("volume %s: %s -> %s is not a transition of the volume state machine", v->name,
                 vol_state_name(v->state), vol_state_name(state));
    v->state = state;
    snprintf(v->attached_to, sizeof(v->attached_to), "%s", attached_to);
    if (store_volume_update(c->store, v) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

bool ctl_volume_in_use(struct ctl *c, const struct volume_rec *v, struct vm_rec *vm)
{
    if (!v->attached_to[0] || store_vm_get(c->store, v->attached_to, vm) != 0)
        return false;
    return vm_state_has_process(vm->state);
}

/* Volumes whose attach or detach the controller has in flight with the
 * agent (ctl_volume_hold): the reconcile pass leaves their rows alone. */
#define HELD_MAX 64
static char held[HELD_MAX][37]; /* one loop per process */

void ctl_volume_hold(const char *volume_id, bool on)
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

/* Closes a volume's block node after its device is gone; a node that is
 * not there (QEMU restarted, or it was closed already) is fine. Not waited
 * for. */
static void close_node(struct ctl *c, const struct vm_rec *vm, const struct volume_rec *v)
{
    char node[24], dev[24], serial[24];
    volume_qemu_ids(v, node, dev, serial);
    ctl_vm_call(c, vm, AV_VM_NODE_CLOSE, json_pack("{s:s,s:s}", "vm", vm->id, "node", node), NULL,
                NULL, NULL);
}

/* The device is gone (or there never was a QEMU): close the node if a
 * QEMU still has it and free the volume. */
static void finish_detach(struct ctl *c, const struct vm_rec *vm, bool qemu_up,
                          struct volume_rec *v, const char *how)
{
    struct yerr ignore;
    if (vm && qemu_up)
        close_node(c, vm, v);
    ctl_volume_save(c, v, VOL_READY, "", &ignore);
    volume_event(c, v->name, "detach", "ok", "vm %s%s", vm ? vm->name : "(gone)", how);
}

void ctl_volume_detached(struct ctl *c, const struct vm_rec *vm, struct volume_rec *v,
                         const char *how)
{
    finish_detach(c, vm, false, v, how);
}

int ctl_volume_detach_idle(struct ctl *c, const char *volume, struct volume_rec *out,
                           struct yerr *err)
{
    struct volume_rec v;
    struct vm_rec vm;
    if (ctl_volume_get(c, volume, &v, err) < 0)
        return -1;
    if (!v.attached_to[0])
        return yerr_set(err, YE_CONFLICT, "volume '%s' is not attached", v.name);
    bool known = store_vm_get(c->store, v.attached_to, &vm) == 0;
    if (known && vm_state_has_process(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' has a QEMU: its device goes first", vm.name);
    finish_detach(c, known ? &vm : NULL, false, &v, "");
    *out = v;
    return 0;
}

/* ---- what the host reports ---- */

void ctl_volumes_qmp_event(struct ctl *c, const struct vm_rec *vm, const char *event, json_t *data)
{
    const char *device = json_string_value(json_object_get(data, "device"));
    if (strcmp(event, "DEVICE_DELETED") || !device)
        return;
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list_attached(c->store, vm->id, &vs, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char node[24], dev[24], serial[24];
        volume_qemu_ids(&vs[i], node, dev, serial);
        if (!strcmp(dev, device))
            finish_detach(c, vm, true, &vs[i], " (the guest released it)");
    }
    free(vs);
}

/* A vm.devices question in flight (freed with its reply, or at shutdown). */
struct ask {
    struct ask *next;
    struct ctl *c;
    char vm_id[37];
};
static struct ask *asks; /* one loop per process */

static void ask_free(struct ask *a)
{
    for (struct ask **p = &asks; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    free(a);
}

static bool has_device(json_t *devs, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d)
    {
        const char *name = json_string_value(d);
        if (name && !strcmp(name, id))
            return true;
    }
    return false;
}

/* vm.devices' answer for one VM: its attaching and detaching volumes are
 * settled by what QEMU has (the rows read again: they may have moved). */
static void on_devices(void *ctx, json_t *result, const struct yerr *aerr)
{
    struct ask *a = ctx;
    struct ctl *c = a->c;
    struct vm_rec vm;
    json_t *devs = aerr ? NULL : json_object_get(result, "devices");
    struct volume_rec *vs = NULL;
    size_t n = 0;
    if (!json_is_array(devs) || store_vm_get(c->store, a->vm_id, &vm) != 0 ||
        !vm_state_live(vm.state) || store_volume_list_attached(c->store, vm.id, &vs, &n) != 0) {
        ask_free(a); /* ask again next pass */
        return;
    }
    ask_free(a);
    struct yerr ignore;
    for (size_t i = 0; i < n; i++) {
        struct volume_rec *v = &vs[i];
        bool attaching = v->state == VOL_ATTACHING, detaching = v->state == VOL_DETACHING;
        if ((!attaching && !detaching) || is_held(v->id))
            continue;
        char node[24], dev[24], serial[24];
        volume_qemu_ids(v, node, dev, serial);
        bool present = has_device(devs, dev);
        if (attaching && present) {
            ctl_volume_save(c, v, VOL_ATTACHED, vm.id, &ignore);
            volume_event(c, v->name, "attach", "ok", "vm %s (finished after restart)", vm.name);
        } else if (!present) {
            close_node(c, &vm, v);
            ctl_volume_save(c, v, VOL_READY, "", &ignore);
            volume_event(c, v->name, attaching ? "attach" : "detach", attaching ? "error" : "ok",
                         "vm %s: %s", vm.name,
                         attaching ? "rolled back: yund stopped mid-way" : "device gone");
        }
        /* detaching and still present: the guest has not let go yet */
    }
    free(vs);
}

static bool asking(const char *vm_id)
{
    for (struct ask *a = asks; a; a = a->next)
        if (!strcmp(a->vm_id, vm_id))
            return true;
    return false;
}

void ctl_volumes_settle(struct ctl *c)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(c->store, &vs, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct volume_rec *v = &vs[i];
        bool attaching = v->state == VOL_ATTACHING, detaching = v->state == VOL_DETACHING;
        if ((!attaching && !detaching) || is_held(v->id))
            continue;
        struct vm_rec vm;
        struct yerr ignore;
        bool known = store_vm_get(c->store, v->attached_to, &vm) == 0;
        if (known && vm_state_has_process(vm.state) && !vm_state_live(vm.state))
            continue; /* starting or stopping: a QEMU still has it; next pass */
        if (!known || !vm_state_live(vm.state)) {
            /* no QEMU holds it: an attach that never finished is undone,
             * a detach is complete */
            ctl_volume_save(c, v, VOL_READY, "", &ignore);
            volume_event(c, v->name, attaching ? "attach" : "detach", attaching ? "error" : "ok",
                         "%s",
                         attaching ? "rolled back: the vm stopped or yund restarted mid-way"
                                   : "the vm is not running");
            continue;
        }
        /* Ask the agent what QEMU has; the answer settles every such
         * volume of the VM (on_devices). One question per VM at a time. */
        if (asking(vm.id))
            continue;
        struct ask *a = calloc(1, sizeof *a);
        if (!a)
            continue;
        a->c = c;
        snprintf(a->vm_id, sizeof a->vm_id, "%s", vm.id);
        a->next = asks;
        asks = a;
        if (!ctl_vm_call(c, &vm, AV_VM_DEVICES, json_pack("{s:s}", "vm", vm.id), on_devices, NULL,
                         a))
            ask_free(a);
    }
    free(vs);
}

void ctl_volumes_settle_shutdown(struct ctl *c)
{
    struct ask **p = &asks;
    while (*p) {
        struct ask *a = *p;
        if (a->c != c) {
            p = &a->next;
            continue;
        }
        *p = a->next;
        ctl_agents_forget(c, a);
        free(a);
    }
}

/* The VM's QEMU is gone (exit) or the VM itself is (deleted): settle its
 * volumes' attachments. */
static void settle_attachments(struct ctl *c, const struct vm_rec *vm, bool deleted)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list_attached(c->store, vm->id, &vs, &n) != 0)
        return;
    struct yerr ignore;
    for (size_t i = 0; i < n; i++) {
        if (deleted) {
            ctl_volume_save(c, &vs[i], VOL_READY, "", &ignore);
            volume_event(c, vs[i].name, "detach", "ok", "vm %s was deleted", vm->name);
        } else if (vs[i].state == VOL_DETACHING) {
            finish_detach(c, vm, false, &vs[i], " (the vm stopped)");
        } else if (vs[i].state == VOL_ATTACHING) {
            ctl_volume_save(c, &vs[i], VOL_READY, "", &ignore);
        }
    }
    free(vs);
}

void ctl_volumes_vm_exited(struct ctl *c, const struct vm_rec *vm)
{
    settle_attachments(c, vm, false);
}

void ctl_volumes_vm_deleted(struct ctl *c, const struct vm_rec *vm)
{
    settle_attachments(c, vm, true);
    /* its snapshot rows go (their files go with the VM's directory) */
    struct snapshot_rec *s;
    size_t n;
    if (store_snapshot_list(c->store, vm->id, &s, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        store_snapshot_delete(c->store, s[i].id);
    free(s);
}
