/*
 * routes_misc.c - /v1/images, /v1/events (with long-polling follow),
 * /v1/host and /v1/version.
 *
 *   GET    /v1/images                 list
 *   POST   /v1/images/build           {"kind":"tiny"}
 *   POST   /v1/images/import          {"name":N,"file":ABS_PATH,"format":"qcow2"|"raw"}
 *   GET    /v1/images/{name}
 *   DELETE /v1/images/{name}
 *   GET    /v1/events?after=ID&limit=N&object=NAME&wait=SECONDS
 *   GET    /v1/host
 */
#include "api/api.h"
#include "lib/util.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define YUN_VERSION "0.1.0"

static json_t *image_to_json(const struct image_rec *m)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "id", m->id, "name",
                     m->name, "format", m->format, "path", m->path, "kernel", m->kernel, "initrd",
                     m->initrd, "cmdline", m->cmdline, "os", m->os, "virtual_size",
                     (json_int_t)m->virtual_size, "actual_size", (json_int_t)m->actual_size,
                     "created_at", (json_int_t)m->created_at, "min_memory_mb",
                     (json_int_t)m->min_memory_mb);
}

void routes_images(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct image_rec m;
    if (c->nparts == 1 && c->method == EVHTTP_REQ_GET) {
        struct image_rec *imgs;
        size_t n;
        if (store_image_list(e->store, &imgs, &n) != 0) {
            reply_errorf(c->req, YE_INTERNAL, "database: %s", store_errmsg(e->store));
            return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, image_to_json(&imgs[i]));
        free(imgs);
        reply_json(c->req, 200, json_pack("{s:o}", "images", arr));
        return;
    }
    if (c->nparts == 2 && c->method == EVHTTP_REQ_POST && !strcmp(c->parts[1], "build")) {
        static const char *const known[] = {"kind", NULL};
        const char *kind = c->body ? json_string_value(json_object_get(c->body, "kind")) : NULL;
        if (!c->body || !body_keys_known(c->body, known, &err))
            reply_error(c->req, err.code ? &err
                                         : &(struct yerr){YE_INVALID_ARGUMENT,
                                                          "body {\"kind\":\"tiny\"} required"});
        else if (!kind)
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "kind is required (a string)");
        else {
            int rc = engine_image_build(e, kind, &m, &err);
            if (rc < 0)
                reply_error(c->req, &err);
            else if (rc == 1)
                reply_json(c->req, 202, json_pack("{s:s,s:s}", "status", "building", "kind", kind));
            else
                reply_json(c->req, 200, image_to_json(&m));
        }
        return;
    }
    if (c->nparts == 2 && c->method == EVHTTP_REQ_POST && !strcmp(c->parts[1], "import")) {
        static const char *const known[] = {"name", "file", "format", NULL};
        json_t *b = c->body;
        const char *name = b ? json_string_value(json_object_get(b, "name")) : NULL;
        const char *file = b ? json_string_value(json_object_get(b, "file")) : NULL;
        const char *fmt = b ? json_string_value(json_object_get(b, "format")) : NULL;
        if (b && !body_keys_known(b, known, &err))
            reply_error(c->req, &err);
        else if (!name || !file)
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "name and file are required (strings)");
        else if (b && json_object_get(b, "format") && !fmt)
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "format must be a string");
        else if (engine_image_import(e, name, file, fmt, &m, &err) < 0)
            reply_error(c->req, &err);
        else
            reply_json(c->req, 201, image_to_json(&m));
        return;
    }
    if (c->nparts == 2 && c->method == EVHTTP_REQ_GET) {
        int rc = store_image_get(e->store, c->parts[1], &m);
        if (rc == STORE_NOTFOUND)
            reply_errorf(c->req, YE_NOT_FOUND, "image '%s' does not exist", c->parts[1]);
        else if (rc != 0)
            reply_errorf(c->req, YE_INTERNAL, "database: %s", store_errmsg(e->store));
        else
            reply_json(c->req, 200, image_to_json(&m));
        return;
    }
    if (c->nparts == 2 && c->method == EVHTTP_REQ_DELETE) {
        if (engine_image_delete(e, c->parts[1], &err) < 0)
            reply_error(c->req, &err);
        else
            reply_json(c->req, 200, json_pack("{s:s}", "deleted", c->parts[1]));
        return;
    }
    reply_errorf(c->req, YE_NOT_FOUND, "no such route under /v1/images");
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
    struct store *st = a->eng->store;
    if (store_event_list(st, after, limit, object, &evs, &n) != 0) {
        reply_errorf(req, YE_INTERNAL, "database: %s", store_errmsg(st));
        return 1;
    }
    if (n == 0 && only_if_any) {
        free(evs);
        return 0;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, event_to_json(&evs[i]));
    int64_t last = n ? evs[n - 1].id : (after > 0 ? after : store_event_last_id(st));
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

void routes_events(struct route_ctx *c)
{
    if (c->nparts != 1 || c->method != EVHTTP_REQ_GET) {
        reply_errorf(c->req, YE_NOT_FOUND, "no such route under /v1/events");
        return;
    }
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
    w->timer = evtimer_new(c->api->eng->base, waiter_timeout, w);
    struct timeval tv = {(time_t)wait, 0};
    evtimer_add(w->timer, &tv);
    hreq_set_closecb(c->req, waiter_closed, w);
    w->next = c->api->waiters;
    c->api->waiters = w;
}

void routes_host(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    if (c->method != EVHTTP_REQ_GET || c->nparts != 1) {
        reply_errorf(c->req, YE_NOT_FOUND, "no such route");
        return;
    }
    if (!strcmp(c->parts[0], "version")) {
        reply_json(c->req, 200,
                   json_pack("{s:s,s:i}", "version", YUN_VERSION, "schema",
                             store_schema_version(e->store)));
        return;
    }
    struct host_usage u;
    if (engine_host_usage(e, &u) < 0) {
        reply_errorf(c->req, YE_INTERNAL, "database: %s", store_errmsg(e->store));
        return;
    }
    const char *cg = e->cg.mode == CG_V2 ? "v2" : e->cg.mode == CG_V1 ? "v1" : "none";
    reply_json(c->req, 200,
               json_pack("{s:i,s:f,s:i,s:I,s:I,s:I,s:f,s:f,s:i,s:i,s:s,s:s,s:s}", "cpus",
                         u.cpus_total, "cpus_capacity", u.cpus_capacity, "cpus_used", u.cpus_used,
                         "memory_bytes", (json_int_t)u.mem_total, "memory_capacity",
                         (json_int_t)u.mem_capacity, "memory_used", (json_int_t)u.mem_used,
                         "cpu_overcommit", e->cfg->cpu_overcommit, "memory_overcommit",
                         e->cfg->mem_overcommit, "vms", u.vms_total, "vms_running", u.vms_running,
                         "accel", e->accel, "cgroups", cg, "version", YUN_VERSION));
}

void api_stop(struct api *a)
{
    while (a->waiters) {
        struct event_waiter *w = a->waiters;
        waiter_free(a, w);
    }
    free(a->vm_list);
    a->vm_list = NULL;
    httpd_free(a->http);
    a->http = NULL;
}
