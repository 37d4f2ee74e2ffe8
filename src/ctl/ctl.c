/*
 * ctl.c - the controller service's set-up: the host's facts from its agent
 * (all-in-one; a controller has none of its own), the hosts registry,
 * the hooks that make the engine's events and start admission the
 * controller's, and the subscription to the local agent's events
 * (ctl_vms_host_attached, vms_hosts.c); a controller's hosts attach as
 * they are loaded or join (ctl/hosts.c).
 */
#include "ctl/ha.h"
#include "ctl/migrate.h"
#include "ctl/host_drain.h"
#include "ctl/ctl.h"
#include "ctl/images_fetch.h"
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/place.h"
#include "compute/engine.h"
#include "ctl/snapshots.h"
#include "ctl/volumes.h"
#include "lib/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

struct facts_wait {
    struct ctl *c;
    bool done;
    struct yerr err;
};

static void on_facts(void *ctx, json_t *r, const struct yerr *err)
{
    struct facts_wait *w = ctx;
    w->done = true;
    if (err) {
        w->err = *err;
        return;
    }
    struct ctl_host *h = &w->c->facts;
    h->cpus = (int)json_integer_value(json_object_get(r, "cpus"));
    h->memory = (uint64_t)json_integer_value(json_object_get(r, "memory"));
    const char *accel = json_string_value(json_object_get(r, "accel"));
    const char *cg = json_string_value(json_object_get(r, "cgroups"));
    const char *id = json_string_value(json_object_get(r, "yund_id"));
    const char *vms = json_string_value(json_object_get(r, "vms_dir"));
    const char *images = json_string_value(json_object_get(r, "images_dir"));
    snprintf(h->accel, sizeof h->accel, "%s", accel ? accel : "");
    snprintf(h->cgroups, sizeof h->cgroups, "%s", cg ? cg : "none");
    /* an agent from before the memory policy: not known (its launch checks) */
    json_t *sa = json_object_get(r, "swap_accounting"), *ml = json_object_get(r, "memlock_max");
    h->swap_acct = json_is_boolean(sa) ? json_is_true(sa) : -1;
    h->memlock_max = json_is_integer(ml) ? json_integer_value(ml) : -2;
    snprintf(h->yund_id, sizeof h->yund_id, "%s", id ? id : "");
    const char *models = json_string_value(json_object_get(r, "cpu_models"));
    snprintf(h->cpu_models, sizeof h->cpu_models, "%s", models ? models : "");
    if (h->cpus < 1 || !h->memory)
        yerr_set(&w->err, YE_INTERNAL, "agent: host.facts without cpus or memory");
    else if (!vms || vms[0] != '/' || strlen(vms) >= sizeof h->vms_dir || !images ||
             images[0] != '/' || strlen(images) >= sizeof h->images_dir)
        yerr_set(&w->err, YE_INTERNAL, "agent: host.facts without valid vms_dir and images_dir");
    else {
        snprintf(h->vms_dir, sizeof h->vms_dir, "%s", vms);
        snprintf(h->images_dir, sizeof h->images_dir, "%s", images);
    }
}

int ctl_init(struct ctl *c, struct event_base *base, struct store *st, const struct yun_config *cfg,
             struct agent *agent, struct engine *host, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->base = base;
    c->store = st;
    c->cfg = cfg;
    c->agent = agent;
    c->host = host;
    if (!agent) /* a controller: its hosts are rows, reached by remote agents */
        return ctl_hosts_init(c, err, errlen);
    /* Once, before the API accepts requests: the loop runs until the
     * agent's answer is in. */
    struct facts_wait w = {.c = c};
    if (!agent_call(agent, AV_HOST_FACTS, NULL, on_facts, NULL, &w)) {
        snprintf(err, errlen, "agent: cannot ask for the host's facts");
        return -1;
    }
    while (!w.done && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    if (!w.done || w.err.code) {
        agent_forget(agent, &w);
        snprintf(err, errlen, "%s", w.done ? w.err.message : "agent: no answer to host.facts");
        return -1;
    }
    /* This host's row (made on the first start), c->local_host. */
    if (ctl_hosts_init(c, err, errlen) < 0)
        return -1;
    if (ctl_vms_host_attached(c, ctl_local_host(c), agent) < 0) {
        snprintf(err, errlen, "agent: cannot subscribe to its events");
        return -1;
    }
    /* The task table is made after this (tasks_attach, with every kind). */
    return 0;
}

void ctl_shutdown(struct ctl *c)
{
    ctl_image_fetches_shutdown(c);
    ctl_calls_shutdown(c);
    ctl_vmops_shutdown(c);
    ctl_starts_shutdown(c);
    ctl_host_drains_shutdown(c);
    ctl_migrations_shutdown(c);
    ctl_vm_events_shutdown(c);
    ctl_volumes_detach_shutdown(c);
    ctl_volumes_settle_shutdown(c);
    ctl_place_shutdown(c);
    ctl_ha_shutdown(c);
    ctl_vms_hosts_shutdown(c);
    ctl_host_calls_shutdown(c);
    ctl_hosts_shutdown(c); /* last: the agents go with it */
    c->on_event = NULL;
}

void ctl_forget(struct ctl *c, void *ctx)
{
    ctl_calls_forget(c, ctx);
    ctl_vmops_forget(c, ctx);
    ctl_starts_forget(c, ctx);
    ctl_agents_forget(c, ctx);
}

int ctl_schema_version(struct ctl *c)
{
    return store_schema_version(c->store);
}
