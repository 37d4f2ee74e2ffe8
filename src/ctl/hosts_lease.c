/*
 * hosts_lease.c - a host's lease: renewed by its heartbeats on the
 * database's clock (lease_until = now + host_dead_after), swept every so
 * often: a host whose lease lapsed is down (maintenance kept), its VMs'
 * side told; a heartbeat brings it back up. Also the hand-over of an
 * agent's pushed events to its remote agent.
 */
#include "ctl/hosts_int.h"
#include "ctl/ha.h"
#include "agent/agent.h"
#include "agent/agent_remote.h"
#include "lib/log.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void mark_up(struct ctl *c, struct host_entry *e, const struct host_rec *now)
{
    bool was_down = !strcmp(e->rec.state, "down");
    hosts_update(c, e, now);
    if (!was_down)
        return;
    ctl_place_invalidate(c);
    log_info("host %s is up again (%s)", now->name, now->state);
    ctl_event(c, "host", now->name, "up", "ok", "host %s is up again%s", now->name,
              now->maintenance ? " (in maintenance)" : "");
    if (!e->agent)
        hosts_connect(c, e);
    ctl_vms_host_up(c, now->id);
}

int ctl_host_heartbeat(struct ctl *c, const char *host_id, const char *run, double cpu_load,
                       uint64_t mem_used, char state[16], struct yerr *err)
{
    if (!(cpu_load >= 0 && cpu_load < 1e6))
        return yerr_set(err, YE_INVALID_ARGUMENT, "cpu_load: a number, 0 or more");
    int rc = store_host_renew(c->store, host_id, run, cpu_load, mem_used,
                              c->cfg->host_dead_after_ms, NULL);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_UNAUTHORIZED, "unknown host %.40s: join again", host_id);
    if (rc)
        return yerr_db(err, store_errmsg(c->store));
    struct host_entry *e = hosts_find(c, host_id);
    struct host_rec r;
    if (e) {
        /* the row as the UPDATE left it, without reading it back: this
         * controller is the only writer (the leader), and its entry holds
         * the rest (1,000 hosts every 5 s: one statement each, not two) */
        r = e->rec;
        snprintf(r.run, sizeof r.run, "%s", run);
        r.cpu_load = cpu_load;
        r.mem_used = mem_used;
        snprintf(r.state, sizeof r.state, "%s", r.maintenance ? "maintenance" : "up");
    } else if (store_host_get(c->store, host_id, &r) != 0) {
        return yerr_db(err, store_errmsg(c->store));
    }
    snprintf(state, 16, "%s", r.state);
    if (e)
        mark_up(c, e, &r);
    return 0;
}

json_t *ctl_host_events(struct ctl *c, const char *host_id, json_t *body, struct yerr *err)
{
    struct host_entry *e = hosts_find(c, host_id);
    if (!e || !e->agent) {
        yerr_set(err, YE_UNAVAILABLE, "host %.40s has no agent here", host_id);
        return NULL;
    }
    uint64_t ack = 0;
    const char *run = json_string_value(json_object_get(body, "run"));
    if (agent_remote_deliver(e->agent, json_object_get(body, "events"), run ? run : "", &ack, err) <
        0)
        return NULL;
    return json_pack("{s:I}", "ack", (json_int_t)ack);
}

void ctl_hosts_sweep(struct ctl *c)
{
    struct host_rec *rows = NULL;
    size_t n = 0;
    if (store_hosts_lapsed(c->store, &rows, &n) < 0) {
        log_warn("hosts: lease sweep: %s", store_errmsg(c->store));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct host_rec *r = &rows[i];
        if (store_host_set_state(c->store, r->id, "down", r->maintenance) != 0) {
            log_warn("hosts: cannot mark %s down: %s", r->name, store_errmsg(c->store));
            continue;
        }
        snprintf(r->state, sizeof r->state, "down");
        struct host_entry *e = hosts_find(c, r->id);
        if (e) {
            hosts_update(c, e, r);
            hosts_fail_pending(c, e);
        }
        ctl_place_invalidate(c);
        log_warn("host %s is down: no heartbeat for %d ms", r->name, c->cfg->host_dead_after_ms);
        ctl_event(c, "host", r->name, "down", "error", "host %s is down: no heartbeat for %d ms",
                  r->name, c->cfg->host_dead_after_ms);
        ctl_vms_host_down(c, r->id);
        ctl_ha_host_down(c, r->id, r->lease_until);
    }
    free(rows);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    ctl_hosts_sweep(arg);
}

int hosts_lease_init(struct ctl *c)
{
    int ms = c->cfg->host_dead_after_ms / 4;
    if (ms > 1000)
        ms = 1000;
    if (ms < 50)
        ms = 50;
    c->hosts->sweep = event_new(c->base, -1, EV_PERSIST, on_sweep, c);
    if (!c->hosts->sweep)
        return -1;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return event_add(c->hosts->sweep, &tv);
}

void hosts_lease_shutdown(struct ctl *c)
{
    if (c->hosts && c->hosts->sweep) {
        event_free(c->hosts->sweep);
        c->hosts->sweep = NULL;
    }
}
