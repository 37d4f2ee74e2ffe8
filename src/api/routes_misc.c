/*
 * routes_misc.c - the rows of /healthz, /v1/version, /v1/host, /v1/images
 * (list, build, import, show, delete; bodies checked by body_images.c) and
 * /v1/events (with long-polling follow: ?after=ID&limit=N&object=NAME&wait=S).
 */
#include "api/api.h"
#include "agent/console_bridge.h"
#include "api/bodies.h"
#include "api/httpd.h"
#include "api/routes_tasks.h"
#include "ctl/hosts.h"
#include "ctl/images.h"
#include "lib/util.h"
#include "lib/version.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void image_list(struct route_ctx *c)
{
    struct image_rec *imgs;
    size_t n;
    struct yerr err = {0};
    if (ctl_image_list(c->api->ctl, &imgs, &n, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, image_to_json(&imgs[i]));
    free(imgs);
    reply_json(c->req, 200, json_pack("{s:o}", "images", arr));
}

static void image_build(struct route_ctx *c)
{
    struct yerr err = {0};
    struct image_rec m;
    const char *kind;
    struct task_rec k;
    int rc = image_build_from_json(c->body, &kind, &err);
    if (rc == 0)
        rc = ctl_image_build(c->api->ctl, kind, &m, &k, &err);
    if (rc < 0)
        reply_error_task(c->req, &err);
    else if (rc == 1)
        reply_task(c->req, 202, &k);
    else
        reply_json(c->req, 200, image_to_json(&m));
}

static void image_import(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name, *file, *fmt;
    if (image_import_from_json(c->body, &name, &file, &fmt, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    /* answered once the file is judged: 202 with its task, or the error */
    struct task_wait *w = task_wait_new(c);
    if (w && ctl_image_import(c->api->ctl, name, file, fmt, task_wait_done, w, &err) < 0)
        task_wait_refused(w, &err);
}

static void image_show(struct route_ctx *c)
{
    struct image_rec m;
    struct yerr err = {0};
    if (ctl_image_get(c->api->ctl, route_param(c, "name"), &m, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, image_to_json(&m));
}

/* Answered when the image's directory is gone (the client may leave first:
 * the delete still finishes). */
struct delete_wait {
    struct hreq *req; /* NULL once the client left */
    char name[64];
};

static void delete_closed(struct hreq *req, void *arg)
{
    struct delete_wait *w = arg;
    w->req = NULL;
}

static void on_image_deleted(void *ctx, const struct yerr *err)
{
    struct delete_wait *w = ctx;
    if (w->req) {
        hreq_set_closecb(w->req, NULL, NULL);
        if (err)
            reply_error(w->req, err);
        else
            reply_json(w->req, 200, json_pack("{s:s}", "deleted", w->name));
    }
    free(w);
}

static void image_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    struct delete_wait *w = calloc(1, sizeof *w);
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->req = c->req;
    snprintf(w->name, sizeof w->name, "%s", name);
    hreq_set_closecb(c->req, delete_closed, w);
    if (ctl_image_delete(c->api->ctl, name, on_image_deleted, w, &err) < 0) {
        hreq_set_closecb(c->req, NULL, NULL);
        free(w);
        reply_error(c->req, &err);
    }
}

/* ---- events, with long polling ---- */

struct event_waiter {
    struct event_waiter *next;
    struct api *api;
    struct hreq *req;
    struct event *timer;
    int64_t after;
    int limit;
    char object[64];
};

static json_t *event_to_json(const struct event_rec *ev)
{
    /* json_text: rows written before reasons were kept valid UTF-8 may
     * hold any bytes, and one bad row must not hide the event. */
    return json_pack("{s:I,s:I,s:o,s:o,s:o,s:o,s:o}", "id", (json_int_t)ev->id, "ts",
                     (json_int_t)ev->ts, "object_type", json_text(ev->object_type), "object",
                     json_text(ev->object), "action", json_text(ev->action), "result",
                     json_text(ev->result), "reason", json_text(ev->reason));
}

/* Replies with events after `after`; returns how many were sent. With
 * only_if_any, sends nothing when there are none. */
static size_t send_events(struct api *a, struct hreq *req, int64_t after, int limit,
                          const char *object, bool only_if_any)
{
    struct event_rec *evs;
    size_t n;
    struct yerr err;
    if (ctl_events_list(a->ctl, after, limit, object, &evs, &n, &err) < 0) {
        reply_error(req, &err);
        return 1;
    }
    if (n == 0 && only_if_any) {
        free(evs);
        return 0;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, event_to_json(&evs[i]));
    int64_t last = n ? evs[n - 1].id : (after > 0 ? after : ctl_events_last_id(a->ctl));
    free(evs);
    reply_json(req, 200, json_pack("{s:o,s:I}", "events", arr, "last_id", (json_int_t)last));
    return n ? n : 1;
}

static void waiter_free(struct api *a, struct event_waiter *w)
{
    for (struct event_waiter **pp = &a->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    hreq_set_closecb(w->req, NULL, NULL);
    event_free(w->timer);
    free(w);
}

static void waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct event_waiter *w = arg;
    send_events(w->api, w->req, w->after, w->limit, w->object[0] ? w->object : NULL, false);
    waiter_free(w->api, w);
}

static void waiter_closed(struct hreq *req, void *arg)
{
    struct event_waiter *w = arg;
    /* The client went away: the request is being freed by httpd. */
    for (struct event_waiter **pp = &w->api->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    event_free(w->timer);
    free(w);
}

void api_on_event(void *ctx, const struct event_rec *ev)
{
    struct api *a = ctx;
    struct event_waiter *w = a->waiters, *next;
    for (; w; w = next) {
        next = w->next;
        if (w->object[0] && strcmp(w->object, ev->object))
            continue;
        if (send_events(a, w->req, w->after, w->limit, w->object[0] ? w->object : NULL, true))
            waiter_free(a, w);
    }
}

static void event_list(struct route_ctx *c)
{
    uint64_t after = 0, limit = 100, wait = 0;
    const char *sa = query_get(c, "after"), *sl = query_get(c, "limit"), *sw = query_get(c, "wait"),
               *obj = query_get(c, "object");
    if ((sa && parse_u64(sa, 0, INT64_MAX, &after) < 0) ||
        (sl && parse_u64(sl, 1, 10000, &limit) < 0) || (sw && parse_u64(sw, 0, 300, &wait) < 0)) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT,
                     "after, limit (1..10000) and wait (0..300 s) must be whole numbers");
        return;
    }
    if (obj && strlen(obj) >= 64) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "object name too long");
        return;
    }
    if (send_events(c->api, c->req, (int64_t)after, (int)limit, obj, wait > 0))
        return;
    struct event_waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->api = c->api;
    w->req = c->req;
    w->after = (int64_t)after;
    w->limit = (int)limit;
    snprintf(w->object, sizeof(w->object), "%s", obj ? obj : "");
    w->timer = evtimer_new(c->api->ctl->base, waiter_timeout, w);
    struct timeval tv = {(time_t)wait, 0};
    evtimer_add(w->timer, &tv);
    hreq_set_closecb(c->req, waiter_closed, w);
    w->next = c->api->waiters;
    c->api->waiters = w;
}

static void healthz(struct route_ctx *c)
{
    reply_json(c->req, 200, json_pack("{s:s}", "status", "ok"));
}

static void version_show(struct route_ctx *c)
{
    reply_json(c->req, 200,
               json_pack("{s:s,s:s,s:i,s:i}", "version", yun_version(), "commit", yun_commit(),
                         "protocol", YUN_PROTOCOL, "schema", ctl_schema_version(c->api->ctl)));
}

static void host_show(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct host_usage u;
    struct yerr err;
    /* the all-in-one's own host (a controller has none: 503 names it) */
    const char *local = ctl_local_host(ctl);
    const struct ctl_host *h = ctl_host_facts(ctl, local);
    if (ctl_host_usage(ctl, local, &u, &err) < 0 || !h) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(c->req, 200,
               json_pack("{s:i,s:f,s:i,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:i,s:i,s:s,s:s,s:s,s:o}",
                         "cpus", u.cpus_total, "cpus_capacity", u.cpus_capacity, "cpus_used",
                         u.cpus_used, "memory_bytes", (json_int_t)u.mem_total, "memory_capacity",
                         (json_int_t)u.mem_capacity, "memory_used", (json_int_t)u.mem_used,
                         "memory_floor_used", (json_int_t)u.mem_floor_used, "memory_floor_capacity",
                         (json_int_t)u.mem_floor_capacity, "cpu_overcommit",
                         ctl->cfg->cpu_overcommit, "memory_overcommit", ctl->cfg->mem_overcommit,
                         "vms", u.vms_total, "vms_running", u.vms_running, "accel", h->accel,
                         "cgroups", h->cgroups, "version", yun_version(), "memory",
                         host_memory_json(c->api, local, u.mem_used)));
}

void api_stop(struct api *a)
{
    while (a->waiters) {
        struct event_waiter *w = a->waiters;
        waiter_free(a, w);
    }
    vm_list_cache_free(a);
    console_bridges_close_all();
    httpd_free(a->http);
    a->http = NULL;
}

const struct route routes_misc[] = {
    {EVHTTP_REQ_GET, "/healthz", healthz, ROUTE_PUBLIC | ROUTE_STANDBY, "Liveness", NULL},
    {EVHTTP_REQ_GET, "/v1/version", version_show, 0,
     "yund version, git commit, agent protocol and schema version", NULL},
    {EVHTTP_REQ_GET, "/v1/host", host_show, 0, "Capacity and allocation of this host", NULL},
    {EVHTTP_REQ_GET, "/v1/images", image_list, 0, "List images", NULL},
    {EVHTTP_REQ_POST, "/v1/images/build", image_build, ROUTE_BODY | ROUTE_ADMIN | ROUTE_ASYNC,
     "Build (or return the cached) image of a kind; 202 with a task while it builds",
     check_image_build},
    {EVHTTP_REQ_POST, "/v1/images/import", image_import, ROUTE_BODY | ROUTE_ADMIN | ROUTE_ASYNC,
     "Import a qcow2 or raw file (local to yund's host) into the image library",
     check_image_import},
    {EVHTTP_REQ_GET, "/v1/images/{name}", image_show, 0, "Show an image", NULL},
    {EVHTTP_REQ_DELETE, "/v1/images/{name}", image_delete, ROUTE_ADMIN,
     "Delete an image (refused while a VM uses it)", NULL},
    {EVHTTP_REQ_GET, "/v1/events", event_list, ROUTE_LONGPOLL,
     "The event log, oldest first; long-polls with wait", NULL},
};
const size_t routes_misc_count = sizeof(routes_misc) / sizeof(routes_misc[0]);
