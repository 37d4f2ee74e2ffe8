/*
 * ha.c - HA restart of a lost host's VMs on other hosts (ha.h).
 */
#include "ctl/ha.h"
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/images_fetch.h"
#include "ctl/place.h"
#include "ctl/pools.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A lapsed host waiting out the margin. */
struct ha_wait {
    struct ha_wait *next;
    struct ctl *c;
    struct event *timer;
    char host[37];
    int64_t lease_until;
};

/* One VM's restart in flight (after its intent was written). */
struct ha_run {
    struct ha_run *next;
    struct ctl *c;
    struct vm_rec vm;
};

struct ctl_ha {
    struct ha_wait *waits;
    struct ha_run *runs;
};

static struct ctl_ha *ha_of(struct ctl *c)
{
    if (!c->ha)
        c->ha = calloc(1, sizeof(struct ctl_ha));
    return c->ha;
}

static bool running_here(struct ctl *c, const char *vm_id)
{
    for (struct ha_run *r = c->ha ? c->ha->runs : NULL; r; r = r->next)
        if (!strcmp(r->vm.id, vm_id))
            return true;
    return false;
}

static void run_free(struct ha_run *r)
{
    struct ctl_ha *h = r->c->ha;
    for (struct ha_run **pp = &h->runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    free(r);
}

static void on_started(void *ctx, const struct vm_rec *vm, const struct yerr *err)
{
    struct ha_run *r = ctx;
    struct ctl *c = r->c;
    if (err) {
        ctl_event(c, "vm", r->vm.name, "ha.restarted", "error", "start on %s failed: %s",
                  ctl_host_label(c, r->vm.host), err->message);
        run_free(r);
        return;
    }
    struct vm_rec now;
    if (store_vm_get(c->store, r->vm.id, &now) == 0 && now.ha_from[0]) {
        char from[37];
        snprintf(from, sizeof from, "%s", now.ha_from);
        now.ha_from[0] = 0;
        if (store_vm_update(c->store, &now) != 0)
            log_warn("vm %s: cannot clear ha_from: %s", now.name, store_errmsg(c->store));
        ctl_event(c, "vm", now.name, "ha.restarted", "ok", "running on %s (pid %d), was on %s",
                  ctl_host_label(c, now.host), (int)(vm ? vm->pid : now.pid),
                  ctl_host_label(c, from));
    }
    run_free(r);
}

static void start_it(struct ha_run *r)
{
    struct yerr err = {0};
    if (ctl_vm_start(r->c, r->vm.id, 0, on_started, r, &err) < 0) {
        ctl_event(r->c, "vm", r->vm.name, "ha.restarted", "error", "start on %s refused: %s",
                  ctl_host_label(r->c, r->vm.host), err.message);
        run_free(r);
    }
}

static void on_prepared(void *ctx, json_t *res, const struct yerr *err)
{
    (void)res;
    struct ha_run *r = ctx;
    if (err) {
        ctl_event(r->c, "vm", r->vm.name, "ha.restarted", "error",
                  "its directory on %s: %s (the next reconcile pass tries again)",
                  ctl_host_label(r->c, r->vm.host), err->message);
        run_free(r);
        return;
    }
    FAILPOINT("ha.after_prepare");
    start_it(r);
}

/* From the intent on: the new host's directory (the disk is the pool's),
 * then the start. */
static void go_on(struct ctl *c, const struct vm_rec *vm)
{
    struct ctl_ha *h = ha_of(c);
    struct ha_run *r = h ? calloc(1, sizeof *r) : NULL;
    if (!r)
        return;
    r->c = c;
    r->vm = *vm;
    r->next = h->runs;
    h->runs = r;
    struct yerr err = {0};
    struct vm_rec v = *vm;
    if (ctl_pool_disk_dir(c, &v, &err) < 0) {
        ctl_event(c, "vm", vm->name, "ha.restarted", "error", "%s", err.message);
        run_free(r);
        return;
    }
    json_t *a = json_pack("{s:s,s:s,s:I,s:s,s:s,s:b,s:s,s:b}", "vm", v.id, "name", v.name,
                          "disk_bytes", (json_int_t)v.disk_bytes, "image_path", "/", "image_format",
                          "qcow2", "seed", 0, "disk_dir", v.disk_dir, "existing", 1);
    struct image_rec img;
    if (a && store_image_get(c->store, v.image, &img) == 0) {
        ctl_image_on_host(c, v.host, &img);
        json_object_set_new(a, "image_path", json_string(img.path));
        json_object_set_new(a, "image_format", json_string(img.format));
    }
    if (!ctl_vm_call(c, &v, AV_VM_PREPARE, a, on_prepared, NULL, r))
        run_free(r);
}

/* Decide and write the intent for one HA VM of the lost host. */
static void restart_one(struct ctl *c, struct vm_rec *vm, const char *from)
{
    struct vm_spec s;
    vm_spec_of_running(&s, vm);
    char to[37];
    json_t *why = NULL;
    struct yerr err = {0};
    if (ctl_place(c, &s, "", to, &why, &err) < 0 || ctl_host_same(c, to, from)) {
        ctl_event(c, "vm", vm->name, "ha.restarting", "error", "no host takes it: %s",
                  err.message[0] ? err.message : "placement chose its lost host");
        json_decref(why);
        return;
    }
    /* the reason: placement's verdict for the chosen host, as short text */
    char reason[200] = "placement";
    json_t *rs = json_object_get(why, "reason");
    if (json_is_string(rs))
        snprintf(reason, sizeof reason, "%s", json_string_value(rs));
    json_decref(why);
    FAILPOINT("ha.after_decide");
    snprintf(vm->ha_from, sizeof vm->ha_from, "%s", from);
    snprintf(vm->host, sizeof vm->host, "%s", to);
    vm->pid = 0;
    vm->state = VM_STOPPED;
    vm->desired = WANT_RUNNING;
    vm->updated_at = now_ms();
    if (store_vm_update(c->store, vm) != 0) {
        ctl_event(c, "vm", vm->name, "ha.restarting", "error", "cannot write the intent: %s",
                  store_errmsg(c->store));
        return;
    }
    ctl_place_invalidate(c);
    ctl_event(c, "vm", vm->name, "ha.restarting", "info", "on %s because %s (from %s)",
              ctl_host_label(c, to), reason, ctl_host_label(c, from));
    go_on(c, vm);
}

static void on_margin(evutil_socket_t fd, short what, void *arg)
{
    struct ha_wait *w = arg;
    struct ctl *c = w->c;
    for (struct ha_wait **pp = &c->ha->waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    struct host_rec h;
    bool down = store_host_get(c->store, w->host, &h) == 0 && !strcmp(h.state, "down");
    struct vm_rec *vms = NULL;
    size_t n = 0;
    if (down && store_vm_list_host(c->store, w->host, &vms, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (vms[i].ha && vms[i].state == VM_UNKNOWN && vms[i].desired == WANT_RUNNING &&
                !running_here(c, vms[i].id)) {
                ctl_event(c, "vm", vms[i].name, "ha.lease_lapsed", "info",
                          "host %s lease ended at %lld, +%d ms margin passed",
                          ctl_host_label(c, w->host), (long long)w->lease_until,
                          c->cfg->ha_restart_margin_ms);
                restart_one(c, &vms[i], w->host);
            }
    } else if (!down) {
        log_info("ha: host %s is back before the margin passed: nothing restarted",
                 ctl_host_label(c, w->host));
    }
    free(vms);
    event_free(w->timer);
    free(w);
}

void ctl_ha_host_down(struct ctl *c, const char *host_id, int64_t lease_until)
{
    struct ctl_ha *h = ha_of(c);
    struct ha_wait *w = h ? calloc(1, sizeof *w) : NULL;
    if (!w)
        return;
    w->c = c;
    snprintf(w->host, sizeof w->host, "%s", host_id);
    w->lease_until = lease_until;
    /* counted from when this controller saw the lapse (never before the
     * lease's end on the database clock) */
    int ms = c->cfg->ha_restart_margin_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    w->timer = evtimer_new(c->base, on_margin, w);
    if (!w->timer || evtimer_add(w->timer, &tv) < 0) {
        if (w->timer)
            event_free(w->timer);
        free(w);
        return;
    }
    w->next = h->waits;
    h->waits = w;
}

void ctl_ha_settle(struct ctl *c)
{
    struct vm_rec *vms = NULL;
    size_t n = 0;
    if (store_vm_list_ha_pending(c->store, &vms, &n) < 0) {
        log_warn("ha: %s", store_errmsg(c->store));
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!running_here(c, vms[i].id) && vms[i].state == VM_STOPPED) {
            ctl_event(c, "vm", vms[i].name, "ha.restarting", "info",
                      "going on after a restart of the controller: on %s",
                      ctl_host_label(c, vms[i].host));
            go_on(c, &vms[i]);
        }
    free(vms);
}

void ctl_ha_shutdown(struct ctl *c)
{
    struct ctl_ha *h = c->ha;
    if (!h)
        return;
    while (h->waits) {
        struct ha_wait *w = h->waits;
        h->waits = w->next;
        event_free(w->timer);
        free(w);
    }
    while (h->runs) { /* their calls are forgotten with the agents (ctl_forget) */
        struct ha_run *r = h->runs;
        h->runs = r->next;
        free(r);
    }
    free(h);
    c->ha = NULL;
}
