/*
 * routes_place.c - placement's rows:
 *
 *   GET    /v1/groups                  the placement groups (with members)
 *   POST   /v1/groups                  {"name", "policy": "affinity"|"anti-affinity",
 *                                       "hard": bool, "max_per_host": N}
 *   GET    /v1/groups/{name}
 *   DELETE /v1/groups/{name}           refused (409) while VMs are in it
 *   GET    /v1/vms/{name}/placement    the last placement's explanation of a
 *                                      VM name (also of a create refused)
 *   POST   /v1/placement[?explain=1]   a dry run: where a VM with a create's
 *                                      body would go; nothing made or reserved
 */
#include "api/api.h"
#include "api/bodies.h"
#include "ctl/place.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *group_json(struct ctl *ctl, const struct group_rec *g)
{
    return json_pack("{s:s,s:s,s:b,s:i,s:I,s:i}", "name", g->name, "policy", g->policy, "hard",
                     g->hard != 0, "max_per_host", g->max_per_host, "created_at",
                     (json_int_t)g->created_at, "members", ctl_group_members(ctl, g->name));
}

static int group_body_from_json(json_t *b, struct group_rec *g, struct yerr *err)
{
    static const char *const known[] = {"name", "policy", "hard", "max_per_host", NULL};
    memset(g, 0, sizeof(*g));
    if (!b)
        return yerr_set(err, YE_INVALID_ARGUMENT, "request body with name and policy required");
    if (!body_keys_known(b, known, err))
        return -1;
    json_t *name = json_object_get(b, "name"), *pol = json_object_get(b, "policy"),
           *hard = json_object_get(b, "hard"), *max = json_object_get(b, "max_per_host");
    if (!json_is_string(name) || json_string_length(name) >= sizeof(g->name))
        return yerr_set(err, YE_INVALID_ARGUMENT, "name is required (a string, < 64 bytes)");
    if (!json_is_string(pol) || json_string_length(pol) >= sizeof(g->policy))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "policy is required: \"affinity\" or \"anti-affinity\"");
    if (hard && !json_is_boolean(hard))
        return yerr_set(err, YE_INVALID_ARGUMENT, "hard must be true or false");
    if (max &&
        (!json_is_integer(max) || json_integer_value(max) < 0 || json_integer_value(max) > 100000))
        return yerr_set(err, YE_INVALID_ARGUMENT, "max_per_host must be a whole number 0..100000");
    snprintf(g->name, sizeof(g->name), "%s", json_string_value(name));
    snprintf(g->policy, sizeof(g->policy), "%s", json_string_value(pol));
    if (strcmp(g->policy, "affinity") && strcmp(g->policy, "anti-affinity"))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "policy must be \"affinity\" or \"anti-affinity\", not '%s'", g->policy);
    g->hard = hard ? json_is_true(hard) : 1;
    g->max_per_host = max ? (int)json_integer_value(max) : 0;
    return 0;
}

static int check_group_create(json_t *body, struct yerr *err)
{
    struct group_rec g;
    return group_body_from_json(body, &g, err);
}

static void group_list(struct route_ctx *c)
{
    struct group_rec *gs;
    size_t n;
    struct yerr err = {0};
    if (ctl_group_list(c->api->ctl, &gs, &n, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, group_json(c->api->ctl, &gs[i]));
    free(gs);
    reply_json(c->req, 200, json_pack("{s:o}", "groups", arr));
}

static void group_create(struct route_ctx *c)
{
    struct yerr err = {0};
    struct group_rec g;
    if (group_body_from_json(c->body, &g, &err) < 0 ||
        ctl_group_create(c->api->ctl, &g, &err) < 0 ||
        ctl_group_get(c->api->ctl, g.name, &g, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(c->req, 201, group_json(c->api->ctl, &g));
}

static void group_show(struct route_ctx *c)
{
    struct yerr err = {0};
    struct group_rec g;
    if (ctl_group_get(c->api->ctl, route_param(c, "name"), &g, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, group_json(c->api->ctl, &g));
}

static void group_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    if (ctl_group_delete(c->api->ctl, name, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, json_pack("{s:s}", "deleted", name));
}

static void vm_placement(struct route_ctx *c)
{
    const char *name = route_param(c, "name");
    json_t *ex = ctl_place_explain(c->api->ctl, name);
    if (!ex) {
        reply_errorf(c->req, YE_NOT_FOUND,
                     "no placement of '%.64s' is known (kept in memory since yund started, for "
                     "the last 1024 creates)",
                     name);
        return;
    }
    reply_json(c->req, 200, json_incref(ex));
}

/* 200 {"host": {"id", "name"}, "score", "passed", "hosts_total", "reason",
 * "took_us", "placement"?}; no valid host is the create's 409 (counts per
 * reason in the message), with "placement" beside "error" when asked. */
static void placement_dry(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_spec s;
    if (placement_body_from_json(c->body, &s, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    const char *q = query_get(c, "explain");
    if (q && strcmp(q, "0") && strcmp(q, "1") && strcmp(q, "true") && strcmp(q, "false")) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "explain must be 0 or 1, not '%.32s'", q);
        return;
    }
    bool want = s.explain || (q && (!strcmp(q, "1") || !strcmp(q, "true")));
    json_t *out = NULL, *ex = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = ctl_place_dry(c->api->ctl, &s, &out, want ? &ex : NULL, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    json_int_t us =
        (json_int_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    if (rc < 0) {
        json_t *e = json_pack("{s:{s:s,s:o}}", "error", "code", yerr_name(&err), "message",
                              json_text(err.message));
        if (e && ex)
            json_object_set(e, "placement", ex);
        json_decref(ex);
        if (e)
            reply_json(c->req, yerr_status(&err), e);
        else
            reply_error(c->req, &err);
        return;
    }
    json_object_set_new(out, "took_us", json_integer(us));
    if (ex)
        json_object_set_new(out, "placement", ex);
    reply_json(c->req, 200, out);
}

const struct route routes_place[] = {
    {EVHTTP_REQ_GET, "/v1/groups", group_list, 0, "List placement groups", NULL},
    {EVHTTP_REQ_POST, "/v1/groups", group_create, ROUTE_BODY,
     "Create a placement group (affinity or anti-affinity, hard or soft)", check_group_create},
    {EVHTTP_REQ_GET, "/v1/groups/{name}", group_show, 0, "Show a placement group", NULL},
    {EVHTTP_REQ_DELETE, "/v1/groups/{name}", group_delete, 0,
     "Delete a placement group (refused while VMs are in it)", NULL},
    {EVHTTP_REQ_POST, "/v1/placement", placement_dry, ROUTE_BODY,
     "Dry-run placement: where a VM with this create body would go (nothing is made)",
     check_placement},
    {EVHTTP_REQ_GET, "/v1/vms/{name}/placement", vm_placement, 0,
     "Explain the last placement of a VM: every host's verdict", NULL},
};
const size_t routes_place_count = sizeof(routes_place) / sizeof(routes_place[0]);
