/*
 * routes_hosts.c - the rows of /v1/hosts: the cluster's hosts (facts,
 * state, lease, usage, VM count), an operator's maintenance and activate,
 * the removal of a host with no VMs (409 while VM rows name it), and its
 * drain (202 with the host.drain task, ctl/host_drain.h).
 */
#include "api/api.h"
#include "api/routes.h"
#include "api/routes_tasks.h"
#include "ctl/host_drain.h"
#include "ctl/hosts.h"
#include "monitor/monitor.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *host_memory_json(struct api *api, const char *host_id, unsigned long long committed)
{
    struct host_memory_view v;
    if (!api->mon || monitor_host_memory(api->mon, host_id, &v) < 0)
        return json_pack("{s:I,s:b}", "committed", (json_int_t)committed, "sampled", 0);
    json_t *j =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:b}", "committed", (json_int_t)v.committed, "resident",
                  (json_int_t)v.resident, "ballooned", (json_int_t)v.ballooned, "shared",
                  (json_int_t)v.shared, "swapped", (json_int_t)v.swapped, "sampled", 1);
    if (j && v.have_ksm)
        json_object_set_new(j, "ksm_run", json_integer(v.ksm_run));
    return j;
}

static json_t *host_json(struct api *api, const struct host_rec *h, int vms)
{
    struct ctl *ctl = api->ctl;
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:i,s:I,s:s,s:s,s:o,s:o,s:I,s:{s:f,s:I},"
        "s:i,s:s,s:s,s:I,s:I}",
        "id", h->id, "name", h->name, "address", h->address, "agent_url", h->agent_url, "state",
        h->state, "maintenance", h->maintenance != 0, "local", !strcmp(h->id, ctl_local_host(ctl)),
        "cpus", h->cpus, "memory", (json_int_t)h->memory, "accel", h->accel, "cpu_model",
        h->cpu_model, "cpu_flags", json_text(h->cpu_flags), "labels", config_labels_json(h->labels),
        "lease_until", (json_int_t)h->lease_until, "usage", "cpu_load", h->cpu_load, "mem_used",
        (json_int_t)h->mem_used, "vms", vms, "vms_dir", h->vms_dir, "images_dir", h->images_dir,
        "joined_at", (json_int_t)h->joined_at, "updated_at", (json_int_t)h->updated_at);
    if (j)
        json_object_set_new(j, "cpu_models", json_string(h->cpu_models));
    return j;
}

static void hosts_list(struct route_ctx *c)
{
    struct host_rec *rows = NULL;
    int *vms = NULL;
    size_t n = 0;
    struct yerr err = {0};
    if (ctl_host_list(c->api->ctl, &rows, &n, &vms, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, host_json(c->api, &rows[i], vms[i]));
    free(rows);
    free(vms);
    reply_json(c->req, 200, json_pack("{s:o}", "hosts", arr));
}

static void host_get(struct route_ctx *c)
{
    struct host_rec h;
    int vms = 0;
    struct yerr err = {0};
    if (ctl_host_get(c->api->ctl, route_param(c, "name"), &h, &vms, &err) < 0)
        reply_error(c->req, &err);
    else {
        /* only here, not in the list: it reads the host's VM rows */
        json_t *j = host_json(c->api, &h, vms);
        if (j) /* "memory" is already the host's size */
            json_object_set_new(j, "memory_view", host_memory_json(c->api, h.id, 0));
        reply_json(c->req, 200, j);
    }
}

static void set_maintenance(struct route_ctx *c, bool on)
{
    struct host_rec h;
    int vms = 0;
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    if (ctl_host_maintenance(c->api->ctl, name, on, &h, &err) < 0 ||
        ctl_host_get(c->api->ctl, h.id, &h, &vms, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, host_json(c->api, &h, vms));
}

static void host_maintenance(struct route_ctx *c)
{
    set_maintenance(c, true);
}

static void host_activate(struct route_ctx *c)
{
    set_maintenance(c, false);
}

static void host_remove(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    if (ctl_host_remove(c->api->ctl, name, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, json_pack("{s:s}", "deleted", name));
}

/* {"parallel": 1..16, "strategy": S}: both optional, nothing else. */
static int drain_body(json_t *b, int *parallel, char strategy[16], struct yerr *err)
{
    *parallel = 1;
    strategy[0] = 0;
    if (!b)
        return 0;
    if (!json_is_object(b))
        return yerr_set(err, YE_INVALID_ARGUMENT, "the body must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (!strcmp(k, "parallel")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > DRAIN_MAX_PARALLEL)
                return yerr_set(err, YE_INVALID_ARGUMENT, "parallel must be an integer 1..%d",
                                DRAIN_MAX_PARALLEL);
            *parallel = (int)json_integer_value(v);
        } else if (!strcmp(k, "strategy")) {
            if (!json_is_string(v) || strlen(json_string_value(v)) >= 16 ||
                !ctl_drain_strategy_valid(json_string_value(v)))
                return yerr_set(err, YE_INVALID_ARGUMENT,
                                "strategy must be a placement policy (least-loaded, round-robin, "
                                "random, pack, spread, ...)");
            snprintf(strategy, 16, "%s", json_string_value(v));
        } else {
            return yerr_set(err, YE_INVALID_ARGUMENT, "unknown member '%s'", k);
        }
    }
    return 0;
}

static int check_drain(json_t *body, struct yerr *err)
{
    int p;
    char st[16];
    return drain_body(body, &p, st, err);
}

static void host_drain(struct route_ctx *c)
{
    struct yerr err = {0};
    int parallel;
    char strategy[16];
    struct task_rec task = {0};
    if (drain_body(c->body, &parallel, strategy, &err) < 0 ||
        ctl_host_drain(c->api->ctl, route_param(c, "name"), parallel, strategy, &task, &err) < 0) {
        reply_error_task(c->req, &err);
        return;
    }
    reply_task(c->req, 202, &task);
}

const struct route routes_hosts[] = {
    {EVHTTP_REQ_GET, "/v1/hosts", hosts_list, 0,
     "List the cluster's hosts: facts, state, lease, usage, VM count", NULL},
    {EVHTTP_REQ_GET, "/v1/hosts/{name}", host_get, 0, "Show a host", NULL},
    {EVHTTP_REQ_POST, "/v1/hosts/{name}/maintenance", host_maintenance, ROUTE_ADMIN,
     "Put a host in maintenance: it takes no new VMs (kept across a lease lapse)", NULL},
    {EVHTTP_REQ_POST, "/v1/hosts/{name}/activate", host_activate, ROUTE_ADMIN,
     "Take a host out of maintenance", NULL},
    {EVHTTP_REQ_POST, "/v1/hosts/{name}/drain", host_drain, ROUTE_BODY | ROUTE_ASYNC | ROUTE_ADMIN,
     "Drain a host: move its VMs off (live, or cold when stopped), then keep it in maintenance "
     "(a host.drain task)",
     check_drain},
    {EVHTTP_REQ_DELETE, "/v1/hosts/{name}", host_remove, ROUTE_ADMIN,
     "Remove a host (refused while VMs are on it)", NULL},
};
const size_t routes_hosts_count = sizeof(routes_hosts) / sizeof(routes_hosts[0]);
