/*
 * volumes_detach.c - detaching volumes, controller side: the checks
 * against running tasks, and the detach of a volume a running QEMU holds
 * as the task "volume.detach" (attach: volumes_attach.c).
 *
 * A volume of a VM without a QEMU is detached at once (200, no task). Else:
 * task_begin (holds the volume), the row "detaching", then the agent's
 * vm.volume_unplug (device_del over the event connection; QEMU's
 * DEVICE_DELETED may come before its reply, so the wait is set up before
 * it is sent), and the task runs until the engine records the volume's
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
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "ctl/ctl.h"
#include "compute/vm_disks.h"
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
    struct engine *e;
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
    task_fail(w->e->tasks, w->task, &err);
    dwait_free(w);
}

void ctl_volumes_on_event(struct engine *e, const struct event_rec *ev)
{
    if (strcmp(ev->object_type, "volume") || strcmp(ev->action, "detach") ||
        strcmp(ev->result, "ok"))
        return;
    for (struct dwait *w = waiting; w; w = w->next) {
        if (w->e != e || strcmp(w->name, ev->object))
            continue;
        struct volume_rec v;
        struct yerr ignore;
        json_t *j =
            volume_get(e->store, w->volume, &v, &ignore) == 0 ? volume_to_json(e, &v) : NULL;
        task_succeed(e->tasks, w->task, j);
        dwait_free(w);
        return;
    }
}

/* The agent's vm.volume_unplug (device_del) in flight. */
struct unplug {
    struct engine *e;
    char task[37], volume[37], vm[37];
};

static struct dwait *dwait_of(struct engine *e, const char *task)
{
    for (struct dwait *w = waiting; w; w = w->next)
        if (w->e == e && !strcmp(w->task, task))
            return w;
    return NULL;
}

/* device_del answered. The row is read again: DEVICE_DELETED (or the VM's
 * exit) may have freed the volume first, and then there is nothing to do. */
static void unplugged(void *ctx, json_t *result, const struct yerr *aerr)
{
    struct unplug *u = ctx;
    struct engine *e = u->e;
    struct volume_rec v;
    struct vm_rec vm;
    bool ours = store_volume_get(e->store, u->volume, &v) == 0 && v.state == VOL_DETACHING &&
                !strcmp(v.attached_to, u->vm) && store_vm_get(e->store, u->vm, &vm) == 0;
    if (!ours) {
        free(u);
        return;
    }
    if (aerr && !strstr(aerr->message, "no answer")) {
        /* QEMU refused: the device stays, so does the attachment */
        struct yerr ignore;
        vm_volume_save(e, &v, VOL_ATTACHED, vm.id, &ignore);
        struct dwait *w = dwait_of(e, u->task);
        if (w) {
            task_fail(e->tasks, w->task, aerr);
            dwait_free(w);
        }
    } else if (aerr) {
        /* no answer: the timer fails the task; the reconcile pass asks QEMU */
    } else if (json_is_true(json_object_get(result, "gone"))) {
        /* gone already (an earlier request got through); the agent closed the node */
        vm_volume_detached(e, &vm, &v, "");
    } else {
        engine_event(e, "volume", v.name, "detach", "info", "vm %s: asked the guest to release it",
                     vm.name);
        FAILPOINT("volume_detach.after_device_del");
    }
    free(u);
}

int ctl_volume_detach(struct ctl *ctl, const char *name, struct volume_rec *out,
                      struct task_rec *task, struct yerr *err)
{
    struct engine *e = ctl->host;
    struct volume_rec v;
    struct vm_rec vm;
    if (volume_get(e->store, name, &v, err) < 0 || ctl_volume_idle(e, name, err) < 0)
        return -1;
    bool held = v.attached_to[0] && store_vm_get(e->store, v.attached_to, &vm) == 0 &&
                vm_state_has_process(vm.state);
    if (!held)
        return engine_volume_detach(e, name, out, err) < 0 ? -1 : 0;
    if (!vm_state_live(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    struct dwait *w = calloc(1, sizeof *w);
    if (!w || !(w->timer = evtimer_new(e->base, detach_timeout, w))) {
        free(w);
        return yerr_set(err, YE_INTERNAL, "out of memory");
    }
    w->e = e;
    snprintf(w->volume, sizeof w->volume, "%s", v.id);
    snprintf(w->name, sizeof w->name, "%s", v.name);
    if (task_begin(e->tasks, "volume.detach", "volume", v.id, v.name, task, err) < 0) {
        event_free(w->timer);
        free(w);
        return -1;
    }
    snprintf(w->task, sizeof w->task, "%s", task->id);
    json_t *p = json_pack("{s:s}", "vm", vm.id);
    task_set_params(e->tasks, task->id, p);
    json_decref(p);
    FAILPOINT("volume_detach.after_begin");
    if (vm_volume_save(e, &v, VOL_DETACHING, vm.id, err) < 0) {
        task_fail(e->tasks, task->id, err);
        event_free(w->timer);
        free(w);
        return -1;
    }
    struct unplug *u = calloc(1, sizeof *u);
    if (!u) {
        struct yerr ignore;
        vm_volume_save(e, &v, VOL_ATTACHED, vm.id, &ignore);
        yerr_set(err, YE_INTERNAL, "out of memory");
        task_fail(e->tasks, task->id, err);
        event_free(w->timer);
        free(w);
        return -1;
    }
    /* Waiting before device_del goes: DEVICE_DELETED may come before its reply. */
    w->next = waiting;
    waiting = w;
    struct timeval tv = {e->cfg->detach_timeout_s > 0 ? e->cfg->detach_timeout_s : 60, 0};
    evtimer_add(w->timer, &tv);
    u->e = e;
    snprintf(u->task, sizeof u->task, "%s", task->id);
    snprintf(u->volume, sizeof u->volume, "%s", v.id);
    snprintf(u->vm, sizeof u->vm, "%s", vm.id);
    char node[24], dev[24], serial[24];
    volume_qemu_ids(&v, node, dev, serial);
    agent_call(e->agent, AV_VM_VOLUME_UNPLUG,
               json_pack("{s:s,s:s,s:s}", "vm", vm.id, "device", dev, "node", node), unplugged,
               NULL, u);
    *out = v;
    return 1;
}

/* yund stopped while the guest was asked: done when the volume is free,
 * else failed (the reconcile pass asks QEMU and settles the row). */
static int recover_detach(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct engine *e = ctx;
    struct volume_rec v;
    int rc = store_volume_get(e->store, k->object_id, &v);
    if (rc != 0 && rc != STORE_NOTFOUND)
        return yerr_db(err, store_errmsg(e->store));
    if (rc == 0 && v.state == VOL_READY && !v.attached_to[0]) {
        k->state = TASK_SUCCEEDED;
        json_t *j = volume_to_json(e, &v);
        k->result = json_dumps(j, JSON_COMPACT);
        json_decref(j);
    }
    return 0;
}

void ctl_volumes_detach_shutdown(struct engine *e)
{
    /* the tasks stay running in the store: the next start recovers them */
    struct dwait **p = &waiting;
    while (*p) {
        struct dwait *w = *p;
        if (w->e != e) {
            p = &w->next;
            continue;
        }
        *p = w->next;
        event_free(w->timer);
        free(w);
    }
}

void ctl_volumes_detach_init(struct engine *e)
{
    tasks_register_kind(e->tasks, "volume.detach", recover_detach, e);
}
