/*
 * routes_storage.c - the /v1/pools and /v1/volumes rows: pools, and
 * volume list, create or import, show, delete, and the actions (clone,
 * resize, compact, export, attach, detach: 200 when detached, 202 while
 * the guest is asked to let go). Bodies are checked by body_storage.c.
 */
#include "api/api.h"
#include "api/bodies.h"
#include "lib/util.h"
#include "compute/vm_disks.h"
#include "storage/volumes.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *volume_json(struct engine *e, const struct volume_rec *v)
{
    struct vm_rec vm;
    const char *vmname = "";
    if (v->attached_to[0] && store_vm_get(e->store, v->attached_to, &vm) == 0)
        vmname = vm.name;
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s,s:I}", "id", v->id, "name",
                     v->name, "pool", v->pool, "format", v->format, "path", v->path, "virtual_size",
                     (json_int_t)v->virtual_size, "actual_size", (json_int_t)volume_actual_size(v),
                     "backing", v->backing, "attached_to", v->attached_to, "vm", vmname, "state",
                     v->state, "created_at", (json_int_t)v->created_at);
}

static void pool_list(struct route_ctx *c)
{
    struct pool_info p;
    if (engine_pool_info(c->api->eng, &p) < 0) {
        reply_errorf(c->req, YE_INTERNAL, "database error");
        return;
    }
    reply_json(c->req, 200,
               json_pack("{s:[{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:i}]}", "pools", "name", p.name, "type",
                         "dir", "path", p.path, "capacity", (json_int_t)p.capacity, "available",
                         (json_int_t)p.available, "allocation", (json_int_t)p.allocation,
                         "virtual_total", (json_int_t)p.virtual_total, "volumes", p.volumes));
}

static void volume_list(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(e->store, &vs, &n) != 0) {
        reply_errorf(c->req, YE_INTERNAL, "database: %s", store_errmsg(e->store));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, volume_json(e, &vs[i]));
    free(vs);
    reply_json(c->req, 200, json_pack("{s:o}", "volumes", arr));
}

static void volume_create(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct volume_rec v;
    struct volume_create_body b;
    if (volume_create_from_json(c->body, &b, &err) < 0 ||
        (b.source ? engine_volume_import(e, b.name, b.source, b.format, &v, &err)
                  : engine_volume_create(e, b.name, b.size, b.format, &v, &err)) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 201, volume_json(e, &v));
}

static void volume_show(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct volume_rec v;
    const char *name = route_param(c, "name");
    int rc = store_volume_get(e->store, name, &v);
    if (rc == 0)
        reply_json(c->req, 200, volume_json(e, &v));
    else if (rc == STORE_NOTFOUND)
        reply_errorf(c->req, YE_NOT_FOUND, "volume '%s' does not exist", name);
    else
        reply_errorf(c->req, YE_DATABASE, "database: %s", store_errmsg(e->store));
}

static void volume_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    if (engine_volume_delete(c->api->eng, name, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, json_pack("{s:s}", "deleted", name));
}

static void volume_clone(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct volume_rec v;
    const char *dst;
    bool full;
    if (volume_clone_from_json(c->body, &dst, &full, &err) < 0 ||
        engine_volume_clone(e, route_param(c, "name"), dst, full, &v, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 201, volume_json(e, &v));
}

static void volume_resize(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct volume_rec v;
    uint64_t size;
    if (volume_resize_from_json(c->body, &size, &err) < 0 ||
        engine_volume_resize(e, route_param(c, "name"), size, &v, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, volume_json(e, &v));
}

static void volume_compact(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    uint64_t before = 0, after = 0;
    if (engine_volume_compact(c->api->eng, name, &before, &after, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200,
                   json_pack("{s:s,s:I,s:I,s:I}", "name", name, "before_bytes", (json_int_t)before,
                             "after_bytes", (json_int_t)after, "reclaimed_bytes",
                             (json_int_t)(before > after ? before - after : 0)));
}

static void volume_export(struct route_ctx *c)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name"), *path, *fmt;
    uint64_t bytes = 0;
    if (volume_export_from_json(c->body, &path, &fmt, &err) < 0 ||
        engine_volume_export(c->api->eng, name, path, fmt, &bytes, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(
            c->req, 200,
            json_pack("{s:s,s:s,s:I}", "name", name, "path", path, "bytes", (json_int_t)bytes));
}

static void volume_attach(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct volume_rec v;
    const char *vm;
    if (volume_attach_from_json(c->body, &vm, &err) < 0 ||
        engine_volume_attach(e, route_param(c, "name"), vm, &v, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, volume_json(e, &v));
}

static void volume_detach(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct volume_rec v;
    int rc = engine_volume_detach(e, route_param(c, "name"), &v, &err);
    if (rc < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, rc == 1 ? 202 : 200, volume_json(e, &v));
}

const struct route routes_storage[] = {
    {EVHTTP_REQ_GET, "/v1/pools", pool_list, 0,
     "Storage pools (a directory pool \"default\" under the state directory)", NULL},
    {EVHTTP_REQ_GET, "/v1/volumes", volume_list, 0, "List volumes", NULL},
    {EVHTTP_REQ_POST, "/v1/volumes", volume_create, ROUTE_BODY,
     "Create a volume in the default pool, or import one (with \"source\")", check_volume_create},
    {EVHTTP_REQ_GET, "/v1/volumes/{name}", volume_show, 0, "Show a volume", NULL},
    {EVHTTP_REQ_DELETE, "/v1/volumes/{name}", volume_delete, 0,
     "Delete a volume (refused while attached or backing a linked clone)", NULL},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/clone", volume_clone, ROUTE_BODY,
     "Clone a volume (linked qcow2 on the source, or a full copy)", check_volume_clone},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/resize", volume_resize, ROUTE_BODY,
     "Grow a volume (online when attached to a running VM)", check_volume_resize},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/compact", volume_compact, 0,
     "Rewrite a volume without its unused clusters", NULL},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/export", volume_export, ROUTE_BODY,
     "Export a standalone copy of a volume into one of the export_dirs", check_volume_export},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/attach", volume_attach, ROUTE_BODY,
     "Attach a volume to a VM (hot-plugged when it runs)", check_volume_attach},
    {EVHTTP_REQ_POST, "/v1/volumes/{name}/actions/detach", volume_detach, 0,
     "Detach a volume from its VM (202 while the guest is asked to let go)", NULL},
};
const size_t routes_storage_count = sizeof(routes_storage) / sizeof(routes_storage[0]);
