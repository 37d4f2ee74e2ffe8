/*
 * routes_storage.c - the /v1/pools and /v1/volumes rows: pools, and
 * volume list, create or import, show, delete, and the actions (clone,
 * resize, compact, export, attach, detach). Every handler calls the
 * controller (ctl/volumes*.c) only; the quick operations answer from its
 * callback when the agent's disk work is done. An import, a full clone, a
 * compact, an export and the detach of a volume a running QEMU holds are
 * tasks: 202 {"task"}; an action on a volume a task holds is a 409 naming
 * it. Bodies are checked by body_storage.c.
 */
#include "api/api.h"
#include "api/bodies.h"
#include "api/httpd.h"
#include "api/routes_tasks.h"
#include "ctl/pools.h"
#include "ctl/volumes.h"
#include "lib/util.h"
#include "storage/volumes.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A request answered from the controller's callback. The client may leave
 * first: the operation still finishes, its answer is dropped. */
struct vwait {
    struct ctl *ctl;
    struct hreq *req; /* NULL once the client left */
    int status;       /* of a success */
    char name[64];    /* delete: what the reply names */
};

static void vwait_closed(struct hreq *req, void *arg)
{
    struct vwait *w = arg;
    w->req = NULL;
}

static struct vwait *vwait_new(struct route_ctx *c, int status)
{
    struct vwait *w = calloc(1, sizeof *w);
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return NULL;
    }
    w->ctl = c->api->ctl;
    w->req = c->req;
    w->status = status;
    hreq_set_closecb(c->req, vwait_closed, w);
    return w;
}

/* The operation did not begin: answer now. */
static void vwait_refused(struct vwait *w, const struct yerr *err)
{
    hreq_set_closecb(w->req, NULL, NULL);
    reply_error_task(w->req, err);
    free(w);
}

static void on_volume(void *ctx, const struct volume_rec *v, const struct yerr *err)
{
    struct vwait *w = ctx;
    if (w->req) {
        hreq_set_closecb(w->req, NULL, NULL);
        if (err)
            reply_error_task(w->req, err);
        else if (w->name[0])
            reply_json(w->req, w->status, json_pack("{s:s}", "deleted", w->name));
        else
            reply_json(w->req, w->status, ctl_volume_to_json(w->ctl, v));
    }
    free(w);
}

static json_t *pool_json(const struct pool_rec *p)
{
    return json_pack("{s:s,s:s,s:s,s:b,s:I}", "name", p->name, "type", "dir", "path", p->path,
                     "shared", p->shared != 0, "created_at", (json_int_t)p->created_at);
}

static void pool_list(struct route_ctx *c)
{
    struct pool_info p;
    struct yerr err = {0};
    struct pool_rec *named = NULL;
    size_t n = 0;
    if (ctl_pool_info(c->api->ctl, &p, &err) < 0 ||
        ctl_pool_list(c->api->ctl, &named, &n, &err) < 0) {
        reply_errorf(c->req, YE_INTERNAL, "database error");
        return;
    }
    json_t *r =
        json_pack("{s:[{s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:i}]}", "pools", "name", p.name, "type",
                  "dir", "path", p.path, "shared", 0, "capacity", (json_int_t)p.capacity,
                  "available", (json_int_t)p.available, "allocation", (json_int_t)p.allocation,
                  "virtual_total", (json_int_t)p.virtual_total, "volumes", p.volumes);
    /* pools declared by name: their paths may be mounts the controller
     * does not have, so no capacity is read here */
    for (size_t i = 0; r && i < n; i++)
        json_array_append_new(json_object_get(r, "pools"), pool_json(&named[i]));
    free(named);
    reply_json(c->req, 200, r);
}

static void pool_create(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name, *path;
    bool shared;
    struct pool_rec p;
    if (pool_create_from_json(c->body, &name, &path, &shared, &err) < 0 ||
        ctl_pool_create(c->api->ctl, name, path, shared, &p, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(c->req, 201, pool_json(&p));
}

static void pool_show(struct route_ctx *c)
{
    struct yerr err = {0};
    struct pool_rec p;
    if (ctl_pool_get(c->api->ctl, route_param(c, "name"), &p, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, pool_json(&p));
}

static void pool_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    if (ctl_pool_delete(c->api->ctl, name, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, json_pack("{s:s}", "deleted", name));
}

static void volume_list(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct volume_rec *vs;
    size_t n;
    struct yerr err = {0};
    if (ctl_volume_list(ctl, &vs, &n, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, ctl_volume_to_json(ctl, &vs[i]));
    free(vs);
    reply_json(c->req, 200, json_pack("{s:o}", "volumes", arr));
}

/* Create: 201 with the volume when done; import (with "source"): 202 with
 * its task, once the file has been judged a usable disk image. */
static void volume_create(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct yerr err = {0};
    struct volume_create_body b;
    if (volume_create_from_json(c->body, &b, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (b.source) {
        struct task_wait *t = task_wait_new(c);
        if (t && ctl_volume_import(ctl, b.name, b.source, b.format, task_wait_done, t, &err) < 0)
            task_wait_refused(t, &err);
        return;
    }
    struct vwait *w = vwait_new(c, 201);
    if (w && ctl_volume_create(ctl, b.name, b.size, b.format, b.host, on_volume, w, &err) < 0)
        vwait_refused(w, &err);
}

static void volume_show(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct volume_rec v;
    struct yerr err = {0};
    if (ctl_volume_get(ctl, route_param(c, "name"), &v, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, ctl_volume_to_json(ctl, &v));
}

static void volume_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    struct vwait *w = vwait_new(c, 200);
    if (!w)
        return;
    snprintf(w->name, sizeof w->name, "%s", name);
    if (ctl_volume_delete(c->api->ctl, name, on_volume, w, &err) < 0)
        vwait_refused(w, &err);
}

static void volume_clone(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct yerr err = {0};
    const char *dst;
    bool full;
    const char *name = route_param(c, "name");
    struct task_rec k;
    if (volume_clone_from_json(c->body, &dst, &full, &err) < 0) {
        reply_error(c->req, &err);
    } else if (full) {
        if (ctl_volume_clone_full(ctl, name, dst, &k, &err) < 0)
            reply_error_task(c->req, &err);
        else
            reply_task(c->req, 202, &k);
    } else {
        struct vwait *w = vwait_new(c, 201);
        if (w && ctl_volume_clone_linked(ctl, name, dst, on_volume, w, &err) < 0)
            vwait_refused(w, &err);
    }
}

static void volume_resize(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct yerr err = {0};
    uint64_t size;
    if (volume_resize_from_json(c->body, &size, &err) < 0) {
        reply_error_task(c->req, &err);
        return;
    }
    struct vwait *w = vwait_new(c, 200);
    if (w && ctl_volume_resize(ctl, route_param(c, "name"), size, on_volume, w, &err) < 0)
        vwait_refused(w, &err);
}

static void volume_compact(struct route_ctx *c)
{
    struct yerr err = {0};
    struct task_rec k;
    if (ctl_volume_compact(c->api->ctl, route_param(c, "name"), &k, &err) < 0)
        reply_error_task(c->req, &err);
    else
        reply_task(c->req, 202, &k);
}

static void volume_export(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name"), *path, *fmt;
    struct task_rec k;
    if (volume_export_from_json(c->body, &path, &fmt, &err) < 0 ||
        ctl_volume_export(c->api->ctl, name, path, fmt, &k, &err) < 0)
        reply_error_task(c->req, &err);
    else
        reply_task(c->req, 202, &k);
}

/* 200 with the volume: at once for a VM without a QEMU, else when the
 * hot-plug is done (the agent's vm.volume_plug). */
static void volume_attach(struct route_ctx *c)
{
    struct yerr err = {0};
    struct volume_rec v;
    const char *vm;
    if (volume_attach_from_json(c->body, &vm, &err) < 0) {
        reply_error_task(c->req, &err);
        return;
    }
    struct vwait *w = vwait_new(c, 200);
    if (!w)
        return;
    int rc = ctl_volume_plug(c->api->ctl, route_param(c, "name"), vm, &v, on_volume, w, &err);
    if (rc < 0) {
        vwait_refused(w, &err);
    } else if (rc == 0) {
        hreq_set_closecb(c->req, NULL, NULL);
        reply_json(c->req, 200, ctl_volume_to_json(w->ctl, &v));
        free(w);
    }
}

/* 200 with the volume when no QEMU held it; else 202 with the task
 * "volume.detach", which ends when the guest has released the device. */
static void volume_detach(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct yerr err = {0};
    struct volume_rec v;
    struct task_rec k;
    int rc = ctl_volume_detach(ctl, route_param(c, "name"), &v, &k, &err);
    if (rc < 0)
        reply_error_task(c->req, &err);
    else if (rc == 1)
        reply_task(c->req, 202, &k);
    else
        reply_json(c->req, 200, ctl_volume_to_json(ctl, &v));
}

const struct route routes_storage[] = {
    {EVHTTP_REQ_GET, "/v1/pools", pool_list, 0,
     "Storage pools (a directory pool \"default\" under the state directory, and the pools "
     "declared by name)",
     NULL},
    {EVHTTP_REQ_POST, "/v1/pools", pool_create, ROUTE_BODY,
     "Declare a pool by name: {name, path, shared} (shared: the same path on every host)",
     check_pool_create},
    {EVHTTP_REQ_GET, "/v1/pools/{name}", pool_show, 0, "Show a pool declared by name", NULL},
    {EVHTTP_REQ_DELETE, "/v1/pools/{name}", pool_delete, 0,
     "Forget a pool declared by name (refused while a VM's disk is in it)", NULL},
    {EVHTTP_REQ_GET, "/v1/volumes", volume_list, 0, "List volumes", NULL},
    {EVHTTP_REQ_POST, "/v1/volumes", volume_create, ROUTE_BODY | ROUTE_ASYNC,
     "Create a volume in the default pool, or import one (with \"source\", as a task)",
     check_volume_create},
    {EVHTTP_REQ_GET, "/v1/volumes/{name}", volume_show, 0, "Show a volume", NULL},
    {EVHTTP_REQ_DELETE, "/v1/volumes/{name}", volume_delete, 0,
     "Delete a volume (refused while attached or backing a linked clone)", NULL},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/clone", volume_clone, ROUTE_BODY | ROUTE_ASYNC,
     "Clone a volume (linked qcow2 on the source, or a full copy)", check_volume_clone},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/resize", volume_resize, ROUTE_BODY,
     "Grow a volume (online when attached to a running VM)", check_volume_resize},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/compact", volume_compact, ROUTE_ASYNC,
     "Rewrite a volume without its unused clusters", NULL},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/export", volume_export, ROUTE_BODY | ROUTE_ASYNC,
     "Export a standalone copy of a volume into one of the export_dirs", check_volume_export},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/attach", volume_attach, ROUTE_BODY,
     "Attach a volume to a VM (hot-plugged when it runs)", check_volume_attach},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/detach", volume_detach, ROUTE_ASYNC,
     "Detach a volume from its VM (a task while the guest is asked to let go)", NULL},
};
const size_t routes_storage_count = sizeof(routes_storage) / sizeof(routes_storage[0]);
