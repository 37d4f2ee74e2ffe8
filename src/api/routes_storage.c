/*
 * routes_storage.c - /v1/pools and /v1/volumes.
 *
 *   GET  /v1/pools                          the pools, with capacity and allocation
 *   GET  /v1/volumes | POST /v1/volumes     {"name","size":"4G","format":"qcow2"|"raw"}
 *                                           or {"name","source":"/abs/file"} to import
 *   GET  /v1/volumes/{name} | DELETE /v1/volumes/{name}
 *   POST /v1/volumes/{name}/actions/clone   {"name":NEW,"full":false}
 *   POST /v1/volumes/{name}/actions/resize  {"size":"8G"}
 *   POST /v1/volumes/{name}/actions/compact
 *   POST /v1/volumes/{name}/actions/export  {"path":"/abs/file","format":"qcow2"|"raw"}
 *   POST /v1/volumes/{name}/actions/attach  {"vm":NAME}
 *   POST /v1/volumes/{name}/actions/detach  200 when detached, 202 while the
 *                                           guest is asked to let go
 */
#include "api/api.h"
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

static int body_size(json_t *b, const char *key, uint64_t *out, struct yerr *err)
{
    json_t *v = b ? json_object_get(b, key) : NULL;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && parse_size(json_string_value(v), out) == 0)
        return 0;
    return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a size such as \"4G\"", key);
}

void routes_pools(struct route_ctx *c)
{
    struct pool_info p;
    if (c->nparts != 1 || c->method != EVHTTP_REQ_GET) {
        reply_errorf(c->req, YE_NOT_FOUND, "no such route under /v1/pools");
        return;
    }
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

void routes_volumes(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct volume_rec v;
    json_t *b = c->body;
    if (c->nparts == 1 && c->method == EVHTTP_REQ_GET) {
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
        return;
    }
    if (c->nparts == 1 && c->method == EVHTTP_REQ_POST) {
        static const char *const known[] = {"name", "size", "format", "source", NULL};
        uint64_t size;
        const char *name = b ? json_string_value(json_object_get(b, "name")) : NULL;
        json_t *fmt = b ? json_object_get(b, "format") : NULL;
        json_t *src = b ? json_object_get(b, "source") : NULL;
        if (b && !body_keys_known(b, known, &err))
            reply_error(c->req, &err);
        else if (!name)
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "name is required (a string)");
        else if (fmt && !json_is_string(fmt))
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "format must be qcow2 or raw");
        else if (src && (!json_is_string(src) || json_object_get(b, "size")))
            reply_errorf(c->req, YE_INVALID_ARGUMENT,
                         "source must be a file path, and an import takes no size");
        else if (src && engine_volume_import(e, name, json_string_value(src),
                                             json_string_value(fmt), &v, &err) < 0)
            reply_error(c->req, &err);
        else if (src)
            reply_json(c->req, 201, volume_json(e, &v));
        else if (body_size(b, "size", &size, &err) < 0 ||
                 engine_volume_create(e, name, size, json_string_value(fmt), &v, &err) < 0)
            reply_error(c->req, &err);
        else
            reply_json(c->req, 201, volume_json(e, &v));
        return;
    }
    if (c->nparts < 2) {
        reply_errorf(c->req, YE_METHOD_NOT_ALLOWED, "use GET or POST on /v1/volumes");
        return;
    }
    const char *name = c->parts[1];
    if (c->nparts == 2 && c->method == EVHTTP_REQ_GET) {
        int rc = store_volume_get(e->store, name, &v);
        if (rc == 0)
            reply_json(c->req, 200, volume_json(e, &v));
        else if (rc == STORE_NOTFOUND)
            reply_errorf(c->req, YE_NOT_FOUND, "volume '%s' does not exist", name);
        else
            reply_errorf(c->req, YE_DATABASE, "database: %s", store_errmsg(e->store));
        return;
    }
    if (c->nparts == 2 && c->method == EVHTTP_REQ_DELETE) {
        if (engine_volume_delete(e, name, &err) < 0)
            reply_error(c->req, &err);
        else
            reply_json(c->req, 200, json_pack("{s:s}", "deleted", name));
        return;
    }
    if (c->nparts == 4 && !strcmp(c->parts[2], "actions") && c->method == EVHTTP_REQ_POST) {
        const char *act = c->parts[3];
        if (!strcmp(act, "clone")) {
            static const char *const known[] = {"name", "full", NULL};
            const char *dst = b ? json_string_value(json_object_get(b, "name")) : NULL;
            json_t *full = b ? json_object_get(b, "full") : NULL;
            if (b && !body_keys_known(b, known, &err))
                reply_error(c->req, &err);
            else if (!dst)
                reply_errorf(c->req, YE_INVALID_ARGUMENT, "name of the clone is required");
            else if (full && !json_is_boolean(full))
                reply_errorf(c->req, YE_INVALID_ARGUMENT, "full must be true or false");
            else if (engine_volume_clone(e, name, dst, json_is_true(full), &v, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_json(c->req, 201, volume_json(e, &v));
        } else if (!strcmp(act, "resize")) {
            uint64_t size;
            if (body_size(b, "size", &size, &err) < 0 ||
                engine_volume_resize(e, name, size, &v, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_json(c->req, 200, volume_json(e, &v));
        } else if (!strcmp(act, "compact")) {
            uint64_t before = 0, after = 0;
            if (engine_volume_compact(e, name, &before, &after, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_json(c->req, 200,
                           json_pack("{s:s,s:I,s:I,s:I}", "name", name, "before_bytes",
                                     (json_int_t)before, "after_bytes", (json_int_t)after,
                                     "reclaimed_bytes",
                                     (json_int_t)(before > after ? before - after : 0)));
        } else if (!strcmp(act, "export")) {
            static const char *const known[] = {"path", "format", NULL};
            json_t *path = b ? json_object_get(b, "path") : NULL;
            json_t *fmt = b ? json_object_get(b, "format") : NULL;
            uint64_t bytes = 0;
            if (b && !body_keys_known(b, known, &err))
                reply_error(c->req, &err);
            else if (!json_is_string(path) || (fmt && !json_is_string(fmt)))
                reply_errorf(c->req, YE_INVALID_ARGUMENT,
                             "path (a string) is required; format is qcow2 or raw");
            else if (engine_volume_export(e, name, json_string_value(path), json_string_value(fmt),
                                          &bytes, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_json(c->req, 200,
                           json_pack("{s:s,s:s,s:I}", "name", name, "path", json_string_value(path),
                                     "bytes", (json_int_t)bytes));
        } else if (!strcmp(act, "attach")) {
            static const char *const known[] = {"vm", NULL};
            json_t *vm = b ? json_object_get(b, "vm") : NULL;
            if (b && !body_keys_known(b, known, &err))
                reply_error(c->req, &err);
            else if (!json_is_string(vm))
                reply_errorf(c->req, YE_INVALID_ARGUMENT, "vm (a name) is required");
            else if (engine_volume_attach(e, name, json_string_value(vm), &v, &err) < 0)
                reply_error(c->req, &err);
            else
                reply_json(c->req, 200, volume_json(e, &v));
        } else if (!strcmp(act, "detach")) {
            int rc = engine_volume_detach(e, name, &v, &err);
            if (rc < 0)
                reply_error(c->req, &err);
            else
                reply_json(c->req, rc == 1 ? 202 : 200, volume_json(e, &v));
        } else {
            reply_errorf(c->req, YE_NOT_FOUND,
                         "unknown volume action '%s' (clone, resize, compact, export, attach, "
                         "detach)",
                         act);
        }
        return;
    }
    reply_errorf(c->req, YE_NOT_FOUND, "no such route under /v1/volumes");
}
