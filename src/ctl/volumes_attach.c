/*
 * volumes_attach.c - attaching a volume to a VM, controller side: the
 * checks, the row, the events, and the hot-plug into a running QEMU
 * through the agent (vm.volume_plug: add-fd, blockdev-add, device_add over
 * the VM's event connection, undone by the agent on a failure).
 *
 * A VM without a QEMU: the row says attached (the next start's command
 * line carries the volume), answered at once. A running VM: the row goes
 * "attaching" (attached_to set) and the volume is held from the reconcile
 * pass (ctl_volume_hold) while the verb is in flight; its reply makes the
 * row "attached", or "ready" again when the plug failed. No answer from
 * QEMU ("no answer") leaves the row "attaching" for the reconcile pass,
 * which asks QEMU whether the device is there. Fault points:
 *   volume_attach.after_row   row attaching, nothing sent to QEMU
 *   volume_attach.after_plug  device in QEMU, row still attaching
 * After a restart the reconcile pass settles either (device there:
 * attached; not there: rolled back to ready).
 */
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/ctl.h"
#include "compute/qemu_argv.h"
#include "ctl/migrate.h"
#include "ctl/volumes.h"
#include "lib/failpoint.h"
#include "storage/volstate.h"
#include "storage/volumes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_MAX 16 /* linked clones of linked clones: deeper is refused */

struct plug {
    struct ctl *c;
    struct volume_rec v;
    char vm_id[37], vm_name[64];
    ctl_volume_fn done;
    void *ctx;
};

/* The volume and the volumes it is a linked clone of, top first, as the
 * agent's "chain" (NULL with err). */
static json_t *chain_of(struct ctl *c, const struct volume_rec *v, struct yerr *err)
{
    json_t *chain = json_array();
    struct volume_rec layer = *v;
    for (int depth = 0;; depth++) {
        if (depth == CHAIN_MAX) {
            yerr_set(err, YE_CONFLICT, "volume '%s' is a linked clone more than %d deep", v->name,
                     CHAIN_MAX);
            break;
        }
        json_array_append_new(chain,
                              json_pack("{s:s,s:s}", "path", layer.path, "format", layer.format));
        if (!layer.backing[0])
            return chain;
        char name[64];
        snprintf(name, sizeof name, "%s", layer.backing);
        if (store_volume_get(c->store, name, &layer) != 0) {
            yerr_set(err, YE_INTERNAL, "volume '%s': its backing volume '%s' is missing", v->name,
                     name);
            break;
        }
    }
    json_decref(chain);
    return NULL;
}

static void plug_end(struct plug *p, const struct yerr *err)
{
    ctl_volume_hold(p->v.id, false);
    if (p->done)
        p->done(p->ctx, err ? NULL : &p->v, err);
    free(p);
}

static void plugged(void *ctx, json_t *result, const struct yerr *aerr)
{
    struct plug *p = ctx;
    struct yerr err = {0};
    struct volume_rec now;
    memset(&now, 0, sizeof now);
    /* The row may have moved meanwhile (the VM stopped: the exit path
     * freed the volume). */
    bool ours = store_volume_get(p->c->store, p->v.id, &now) == 0 && now.state == VOL_ATTACHING &&
                !strcmp(now.attached_to, p->vm_id);
    if (!ours) {
        yerr_set(&err, YE_CONFLICT, "vm '%s' stopped while volume '%s' was being attached",
                 p->vm_name, p->v.name);
        if (now.id[0])
            p->v = now;
        return plug_end(p, &err);
    }
    p->v = now;
    if (aerr && strstr(aerr->message, "no answer")) {
        /* A lost reply is not "nothing happened": the reconcile pass asks QEMU. */
        ctl_event(p->c, "volume", p->v.name, "attach", "error",
                  "vm %s: QEMU does not answer; left for the reconcile pass", p->vm_name);
        return plug_end(p, aerr);
    }
    if (aerr) {
        struct yerr ignore;
        ctl_volume_save(p->c, &p->v, VOL_READY, "", &ignore);
        ctl_event(p->c, "volume", p->v.name, "attach", "error", "vm %s: %s", p->vm_name,
                  aerr->message);
        return plug_end(p, aerr);
    }
    (void)result;
    FAILPOINT("volume_attach.after_plug");
    if (ctl_volume_save(p->c, &p->v, VOL_ATTACHED, p->vm_id, &err) < 0)
        return plug_end(p, &err);
    ctl_event(p->c, "volume", p->v.name, "attach", "ok", "vm %s (hot-plugged)", p->vm_name);
    plug_end(p, NULL);
}

int ctl_volume_plug(struct ctl *c, const char *name, const char *vmname, struct volume_rec *out,
                    ctl_volume_fn done, void *ctx, struct yerr *err)
{
    struct volume_rec v;
    struct vm_rec vm;
    if (ctl_volume_idle(c, name, err) < 0 || ctl_volume_get(c, name, &v, err) < 0 ||
        ctl_vm_get(c, vmname, &vm, err) < 0)
        return -1;
    if (v.attached_to[0]) {
        struct vm_rec other;
        const char *who = store_vm_get(c->store, v.attached_to, &other) == 0 ? other.name : "?";
        return yerr_set(err, YE_CONFLICT, "volume '%s' is already attached to vm '%s'", v.name,
                        who);
    }
    if (v.state != VOL_READY)
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v.name, vol_state_name(v.state));
    if (ctl_migration_open(c, vm.id)) /* its target would not have it */
        return yerr_set(err, YE_CONFLICT, "vm '%s' is migrating: attach the volume after the move",
                        vm.name);
    if (!ctl_host_same(c, v.host, vm.host))
        return yerr_set(err, YE_CONFLICT,
                        "volume '%s' is on host %s and vm '%s' on host %s: a volume is attached "
                        "only on its own host",
                        v.name, ctl_host_label(c, v.host), vm.name, ctl_host_label(c, vm.host));
    if (ctl_volume_refuse_backing(
            c, &v, "writing to it would corrupt them (attach a clone instead)", err) < 0)
        return -1;
    bool live = vm_state_live(vm.state);
    if (!live && !vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    if (!live) {
        if (ctl_volume_save(c, &v, VOL_ATTACHED, vm.id, err) < 0)
            return -1;
        ctl_event(c, "volume", v.name, "attach", "ok", "vm %s", vm.name);
        *out = v;
        return 0;
    }
    json_t *chain = chain_of(c, &v, err);
    struct plug *p = chain ? calloc(1, sizeof *p) : NULL;
    if (!p) {
        json_decref(chain);
        return chain ? yerr_set(err, YE_INTERNAL, "out of memory") : -1;
    }
    char node[24], dev[24], serial[24];
    volume_qemu_ids(&v, node, dev, serial);
    if (ctl_volume_save(c, &v, VOL_ATTACHING, vm.id, err) < 0) {
        json_decref(chain);
        free(p);
        return -1;
    }
    FAILPOINT("volume_attach.after_row");
    p->c = c;
    p->v = v;
    snprintf(p->vm_id, sizeof p->vm_id, "%s", vm.id);
    snprintf(p->vm_name, sizeof p->vm_name, "%s", vm.name);
    p->done = done;
    p->ctx = ctx;
    ctl_volume_hold(v.id, true);
    ctl_vm_call(c, &vm, AV_VM_VOLUME_PLUG,
                json_pack("{s:s,s:s,s:s,s:s,s:o}", "vm", vm.id, "node", node, "device", dev,
                          "serial", serial, "chain", chain),
                plugged, NULL, p);
    return 1;
}
