/*
 * volumes_detach.c - detaching volumes, controller side: the checks
 * against running tasks, and the detach of a volume a running QEMU holds
 * as the task "volume.detach" (attach: volumes_attach.c).
 *
 * A volume of a VM without a QEMU is detached at once (200, no task). Else:
 * task_begin (holds the volume), the row "detaching", then the agent's
 * vm.volume_unplug (device_del over the event connection; QEMU's
 * DEVICE_DELETED may come before its reply, so the wait is set up before
 * it is sent), and the task runs until the controller records the volume's
 * "detach ok" event (QEMU reported DEVICE_DELETED, the VM stopped or was
 * deleted, or the reconcile pass found the device gone): succeeded with
 * the volume. No release within detach_timeout (config, 60 s): failed (the volume stays
 * "detaching" and is freed whenever the guest lets go). Fault points:
 *   volume_detach.after_begin       task running, row attached
 *   volume_detach.after_device_del  row detaching, device_del sent
 * After a restart the task is succeeded when the volume is free, else
 * failed; the reconcile pass settles the row by asking QEMU.
 */
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "compute/qemu_argv.h"
#include "ctl/tasks.h"
#include "ctl/volumes.h"
#include "lib/failpoint.h"
#include "storage/volstate.h"
#include "storage/volumes.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dwait {
    struct ctl *c;
    struct dwait *next;
    char task[37], volume[37], name[64];
    struct event *timer;
};

static struct dwait *waiting; /* one loop per process */

static void dwait_free(struct dwait *w)
{
    for (struct dwait **p = &waiting; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    if (w->timer)
        event_free(w->timer);
    free(w);
}

static void detach_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct dwait *w = arg;
    struct yerr err;
    yerr_set(&err, YE_TIMEOUT,
             "volume '%s': the guest has not released the device yet (still detaching)", w->name);
    task_fail(w->c->tasks, w->task, &err);
    dwait_free(w);
}

void ctl_volumes_on_event(struct ctl *c, const struct event_rec *ev)
{
    if (strcmp(ev->object_type, "volume") || strcmp(ev->action, "detach") ||
        strcmp(ev->result, "ok"))
        return;
    for (struct dwait *w = waiting; w; w = w->next) {
        if (w->c != c || strcmp(w->name, ev->object))
            continue;
        struct volume_rec v;
        struct yerr ignore;
        json_t *j =
            ctl_volume_get(c, w->volume, &v, &ignore) == 0 ? ctl_volume_to_json(c, &v) : NULL;
        task_succeed(c->tasks, w->task, j);
        dwait_free(w);
        return;
    }
}

/* The agent's vm.volume_unplug (device_del) in flight. */
struct unplug {
    struct ctl *c;
    char task[37], volume[37], vm[37];
};

static struct dwait *dwait_of(struct ctl *c, const char *task)
{
    for (struct dwait *w = waiting; w; w = w->next)
        if (w->c == c && !strcmp(w->task, task))
            return w;
    return NULL;
}

/* device_del answered. The row is read again: DEVICE_DELETED (or the VM's
 * exit) may have freed the volume first, and then there is nothing to do. */
static void unplugged(void *ctx, json_t *result, const struct yerr *aerr)
{
    struct unplug *u = ctx;
    struct ctl *c = u->c;
    struct volume_rec v;
    struct vm_rec vm;
    bool ours = store_volume_get(c->store, u->volume, &v) == 0 && v.state == VOL_DETACHING &&
                !strcmp(v.attached_to, u->vm) && store_vm_get(c->store, u->vm, &vm) == 0;
    if (!ours) {
        free(u);
        return;
    }
    if (aerr && !strstr(aerr->message, "no answer")) {
        /* QEMU refused: the device stays, so does the attachment */
        struct yerr ignore;
        ctl_volume_save(c, &v, VOL_ATTACHED, vm.id, &ignore);
        struct dwait *w = dwait_of(c, u->task);
        if (w) {
            task_fail(c->tasks, w->task, aerr);
            dwait_free(w);
        }
    } else if (aerr) {
        /* no answer: the timer fails the task; the reconcile pass asks QEMU */
    } else if (json_is_true(json_object_get(result, "gone"))) {
        /* gone already (an earlier request got through); the agent closed the node */
        ctl_volume_detached(c, &vm, &v, "");
    } else {
        ctl_event(c, "volume", v.name, "detach", "info", "vm %s: asked the guest to release it",
                  vm.name);
        FAILPOINT("volume_detach.after_device_del");
    }
    free(u);
}

int ctl_volume_detach(struct ctl *c, const char *name, struct volume_rec *out,
                      struct task_rec *task, struct yerr *err)
{
    struct volume_rec v;
    struct vm_rec vm;
    if (ctl_volume_get(c, name, &v, err) < 0 || ctl_volume_idle(c, name, err) < 0)
        return -1;
    bool held = v.attached_to[0] && store_vm_get(c->store, v.attached_to, &vm) == 0 &&
                vm_state_has_process(vm.state);
    if (!held)
        return ctl_volume_detach_idle(c, name, out, err) < 0 ? -1 : 0;
    if (!vm_state_live(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    struct dwait *w = calloc(1, sizeof *w);
    if (!w || !(w->timer = evtimer_new(c->base, detach_timeout, w))) {
        free(w);
        return yerr_set(err, YE_INTERNAL, "out of memory");
    }
    w->c = c;
    snprintf(w->volume, sizeof w->volume, "%s", v.id);
    snprintf(w->name, sizeof w->name, "%s", v.name);
    if (task_begin(c->tasks, "volume.detach", "volume", v.id, v.name, task, err) < 0) {
        event_free(w->timer);
        free(w);
        return -1;
    }
    snprintf(w->task, sizeof w->task, "%s", task->id);
    json_t *p = json_pack("{s:s}", "vm", vm.id);
    task_set_params(c->tasks, task->id, p);
    json_decref(p);
    FAILPOINT("volume_detach.after_begin");
    if (ctl_volume_save(c, &v, VOL_DETACHING, vm.id, err) < 0) {
        task_fail(c->tasks, task->id, err);
        event_free(w->timer);
        free(w);
        return -1;
    }
    struct unplug *u = calloc(1, sizeof *u);
    if (!u) {
        struct yerr ignore;
        ctl_volume_save(c, &v, VOL_ATTACHED, vm.id, &ignore);
        yerr_set(err, YE_INTERNAL, "out of memory");
        task_fail(c->tasks, task->id, err);
        event_free(w->timer);
        free(w);
        return -1;
    }
    /* Waiting before device_del goes: DEVICE_DELETED may come before its reply. */
    w->next = waiting;
    waiting = w;
    struct timeval tv = {c->cfg->detach_timeout_s > 0 ? c->cfg->detach_timeout_s : 60, 0};
    evtimer_add(w->timer, &tv);
    u->c = c;
    snprintf(u->task, sizeof u->task, "%s", task->id);
    snprintf(u->volume, sizeof u->volume, "%s", v.id);
    snprintf(u->vm, sizeof u->vm, "%s", vm.id);
    char node[24], dev[24], serial[24];
    volume_qemu_ids(&v, node, dev, serial);
    ctl_vm_call(c, &vm, AV_VM_VOLUME_UNPLUG,
                json_pack("{s:s,s:s,s:s}", "vm", vm.id, "device", dev, "node", node), unplugged,
                NULL, u);
    *out = v;
    return 1;
}

/* yund stopped while the guest was asked: done when the volume is free,
 * else failed (the reconcile pass asks QEMU and settles the row). */
static int recover_detach(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    struct volume_rec v;
    int rc = store_volume_get(c->store, k->object_id, &v);
    if (rc != 0 && rc != STORE_NOTFOUND)
        return yerr_db(err, store_errmsg(c->store));
    if (rc == 0 && v.state == VOL_READY && !v.attached_to[0]) {
        k->state = TASK_SUCCEEDED;
        json_t *j = ctl_volume_to_json(c, &v);
        k->result = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    return 0;
}

void ctl_volumes_detach_shutdown(struct ctl *c)
{
    /* the tasks stay running in the store: the next start recovers them */
    struct dwait **p = &waiting;
    while (*p) {
        struct dwait *w = *p;
        if (w->c != c) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        event_free(w->timer);
        free(w);
    }
}

void ctl_volumes_detach_init(struct ctl *c)
{
    tasks_register_kind(c->tasks, "volume.detach", recover_detach, c);
}
