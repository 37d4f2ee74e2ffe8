/*
 * vms_hosts.c - the VMs' side of the hosts coming and going: every host's
 * agent events subscribed (and checked against the host they came from),
 * a host that went down leaves its VMs "unknown", one that came back gets
 * a reconcile pass. The registry itself (which hosts there are, their
 * agents, their leases) is ctl/hosts.c; it calls these.
 */
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/snapshots.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One subscription: the events of host's agent. */
struct ctl_hostsub {
    struct ctl_hostsub *next;
    struct ctl *c;
    struct agent *a;
    char host[37];
};

const char *ctl_host_label(struct ctl *c, const char *host_id)
{
    const char *n = ctl_host_name(c, host_id);
    if (n && n[0])
        return n;
    return host_id[0] ? host_id : "(local)";
}

bool ctl_host_same(const struct ctl *c, const char *a, const char *b)
{
    const char *local = ctl_local_host(c);
    if (!a[0])
        a = local;
    if (!b[0])
        b = local;
    return !strcmp(a, b);
}

/* The VM an event names is on the host it came from (or has no row: the
 * handlers ignore those, or it is an orphan of that host). A VM placed on
 * another host is not this agent's to speak for. */
static bool event_from_its_host(struct ctl_hostsub *s, const char *type, json_t *ev)
{
    json_t *idj = json_object_get(ev, "vm");
    if (!idj)
        return true; /* not about a VM */
    const char *id = json_string_value(idj);
    if (!id || !id[0] || strlen(id) > 36)
        return true; /* the handlers refuse it, and say so */
    struct vm_rec vm;
    if (store_vm_get(s->c->store, id, &vm) != 0)
        return true;
    if (ctl_host_same(s->c, vm.host, s->host))
        return true;
    log_warn("agent %s: event %s about vm %s, which is on host %s, not this one: ignored",
             ctl_host_label(s->c, s->host), type, vm.name, ctl_host_label(s->c, vm.host));
    return false;
}

static void on_host_event(void *ctx, const char *type, json_t *ev)
{
    struct ctl_hostsub *s = ctx;
    struct ctl *c = s->c;
    if (!type || !json_is_object(ev))
        return;
    if (!strcmp(type, "host.reconcile")) {
        ctl_vms_reconcile_host_soon(c, s->host); /* its agent restarted: a pass for it */
        return;
    }
    if (!strcmp(type, "host.sample")) { /* the monitor checks and takes it */
        if (c->on_host_sample)
            c->on_host_sample(c->on_host_sample_ctx, s->host, ev);
        return;
    }
    if (!strcmp(type, "vm.fenced")) {
        /* the host's keeper killed an HA QEMU as its lease ended; told
         * once the host reaches the controller again, whoever owns the
         * VM now. The times are the agent's (ms since the epoch). */
        const char *id = json_string_value(json_object_get(ev, "vm"));
        struct vm_rec vm;
        if (id && strlen(id) <= 36 && store_vm_get(c->store, id, &vm) == 0)
            ctl_event(c, "vm", vm.name, "fenced", "info",
                      "host %s fenced_at=%lld lease_end=%lld pid=%lld %s",
                      ctl_host_label(c, s->host),
                      (long long)json_integer_value(json_object_get(ev, "fenced_at")),
                      (long long)json_integer_value(json_object_get(ev, "lease_end")),
                      (long long)json_integer_value(json_object_get(ev, "pid")),
                      json_is_true(json_object_get(ev, "killed")) ? "killed" : "already gone");
        return;
    }
    if (!event_from_its_host(s, type, ev))
        return;
    if (ctl_vm_host_event(c, type, ev))
        return;
    if (!strcmp(type, "vm.uid"))
        ctl_vm_uid_seen(c, ev);
    else if (!strcmp(type, "vm.block_job"))
        ctl_snapshots_host_event(c, type, ev);
    else if (!strcmp(type, "vm.exec")) {
        const char *name = json_string_value(json_object_get(ev, "name"));
        const char *cmd = json_string_value(json_object_get(ev, "cmd"));
        ctl_event(c, "vm", name ? name : "?", "exec", "info", "guest pid %lld: %s",
                  (long long)json_integer_value(json_object_get(ev, "pid")), cmd ? cmd : "");
    }
}

int ctl_vms_host_attached(struct ctl *c, const char *host_id, struct agent *a)
{
    if (!a)
        return -1;
    for (struct ctl_hostsub *s = c->hostsubs; s; s = s->next)
        if (s->a == a && !strcmp(s->host, host_id))
            return 0; /* subscribed already */
    struct ctl_hostsub *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->c = c;
    s->a = a;
    snprintf(s->host, sizeof s->host, "%s", host_id);
    if (agent_subscribe(a, on_host_event, s) < 0) {
        log_err("host %s: cannot subscribe to its agent's events (too many subscribers)",
                host_id[0] ? host_id : "(local)");
        free(s);
        return -1;
    }
    s->next = c->hostsubs;
    c->hostsubs = s;
    return 0;
}

void ctl_vms_host_down(struct ctl *c, const char *host_id)
{
    struct vm_rec *vms;
    size_t n;
    /* a cluster host's own rows only (its index); the all-in-one's host
     * also has the rows from before the cluster ("") */
    int rc = ctl_host_same(c, host_id, "") ? store_vm_list(c->store, &vms, &n)
                                           : store_vm_list_host(c->store, host_id, &vms, &n);
    if (rc != 0) {
        log_err("host %s down: %s", host_id, store_errmsg(c->store));
        return;
    }
    int marked = 0;
    for (size_t i = 0; i < n; i++) {
        struct vm_rec *vm = &vms[i];
        if (!ctl_host_same(c, vm->host, host_id) || !vm_state_has_process(vm->state) ||
            vm->state == VM_UNKNOWN)
            continue;
        enum vm_state was = vm->state;
        vm->state = VM_UNKNOWN;
        vm->updated_at = now_ms();
        if (store_vm_update(c->store, vm) != 0) {
            log_err("cannot update vm %s: %s", vm->name, store_errmsg(c->store));
            continue;
        }
        marked++;
        ctl_event(c, "vm", vm->name, "host-down", "error",
                  "its host %s is down: %s -> unknown (reconcile settles it when the host is back)",
                  ctl_host_label(c, host_id), vm_state_name(was));
    }
    free(vms);
    if (marked)
        log_warn("host %s down: %d vm(s) now unknown", ctl_host_label(c, host_id), marked);
}

void ctl_vms_host_up(struct ctl *c, const char *host_id)
{
    log_info("host %s is up: a reconcile pass for it follows", ctl_host_label(c, host_id));
    ctl_vms_reconcile_host_soon(c, host_id);
}

/* hosts.c is about to free a host's remote agent (a reconnect, a removed
 * host): its subscriptions go first, so none names a freed agent, and a new
 * agent that malloc puts at the same address is subscribed afresh. */
void ctl_vms_host_detached(struct ctl *c, const char *host_id, struct agent *a)
{
    (void)host_id;
    struct ctl_hostsub **pp = &c->hostsubs;
    while (*pp) {
        struct ctl_hostsub *s = *pp;
        if (s->a == a) {
            *pp = s->next;
            free(s);
        } else {
            pp = &s->next;
        }
    }
}

void ctl_vms_hosts_shutdown(struct ctl *c)
{
    while (c->hostsubs) {
        struct ctl_hostsub *s = c->hostsubs;
        c->hostsubs = s->next;
        free(s); /* the agents go with the registry; no event runs after this */
    }
}

/* ---- a host named by a user ---- */

struct host_find {
    const char *want;
    char id[37];
    bool found;
};

static void match_host(struct ctl *c, const char *host_id, struct agent *a, void *arg)
{
    (void)a;
    struct host_find *f = arg;
    if (f->found)
        return;
    if (!strcmp(host_id, f->want) || !strcmp(ctl_host_name(c, host_id), f->want)) {
        snprintf(f->id, sizeof f->id, "%s", host_id);
        f->found = true;
    }
}

int ctl_host_resolve(struct ctl *c, const char *name, char id[37], struct yerr *err)
{
    struct host_find f = {.want = name};
    if (name && name[0] && strlen(name) < 64)
        ctl_hosts_each(c, match_host, &f);
    if (!f.found)
        return yerr_set(err, YE_NOT_FOUND, "host '%s' does not exist (see: yun host list)",
                        name ? name : "");
    snprintf(id, 37, "%s", f.id);
    return 0;
}

/* ---- host-less disk work ---- */

struct first_host {
    struct agent *a;
    char host[37];
    bool library; /* only a host whose images_dir is the cluster's library */
};

static void take_first(struct ctl *c, const char *host_id, struct agent *a, void *arg)
{
    struct first_host *f = arg;
    struct yerr down = {0};
    const struct ctl_host *h = ctl_host_facts(c, host_id);
    if (f->library && (!h || strcmp(h->images_dir, c->cfg->images_dir)))
        return;
    if (!f->a && a && ctl_host_agent(c, host_id, &down)) {
        f->a = a;
        snprintf(f->host, sizeof f->host, "%s", host_id);
    }
}

struct agent *ctl_disk_agent(struct ctl *c, char host_out[37], struct yerr *err)
{
    struct yerr ignored = {0};
    const char *local = ctl_local_host(c);
    struct agent *a = ctl_host_agent(c, local, &ignored);
    if (a) {
        snprintf(host_out, 37, "%s", local);
        return a;
    }
    /* image builds and imports write into the library: a host that mounts
     * it first (docs/cluster.md, "Images"), else any host (volumes) */
    struct first_host f = {.library = true};
    ctl_hosts_each(c, take_first, &f);
    if (!f.a) {
        f.library = false;
        ctl_hosts_each(c, take_first, &f);
    }
    if (!f.a) {
        yerr_set(err, YE_UNAVAILABLE, "no host is up to do the disk work on");
        return NULL;
    }
    snprintf(host_out, 37, "%s", f.host);
    return f.a;
}

const struct ctl_host *ctl_vm_facts(struct ctl *c, const struct vm_rec *vm)
{
    static const struct ctl_host none = {0};
    const struct ctl_host *h = ctl_host_facts(c, vm->host);
    return h ? h : &none;
}
