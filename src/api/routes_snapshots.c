/*
 * routes_snapshots.c - /v1/vms/{name}/snapshots: a VM's disk snapshots.
 *
 *   GET    /v1/vms/{vm}/snapshots                     the tree, oldest first
 *   POST   /v1/vms/{vm}/snapshots                     {"name": S}
 *   GET    /v1/vms/{vm}/snapshots/{s}
 *   DELETE /v1/vms/{vm}/snapshots/{s}                 200 merged, 202 merging
 *   POST   /v1/vms/{vm}/snapshots/{s}/actions/revert  (vm stopped)
 */
#include "api/api.h"
#include "compute/vm_disks.h"
#include "lib/util.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

static json_t *snapshot_json(struct engine *e, const struct vm_rec *vm,
                             const struct snapshot_rec *s, int64_t took_ms)
{
    char path[512];
    engine_vm_path(e, vm, s->file, path, sizeof(path));
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I}", "id", s->id, "name", s->name, "vm",
                  vm->name, "parent", s->parent, "state", s->state, "consistency", s->consistency,
                  "current", !strcmp(vm->disk_parent, s->id), "size",
                  (json_int_t)file_size_on_disk(path), "created_at", (json_int_t)s->created_at);
    if (took_ms >= 0)
        json_object_set_new(j, "took_ms", json_integer(took_ms));
    return j;
}

void routes_vm_snapshots(struct route_ctx *c, const char *vmname)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct vm_rec vm;
    struct snapshot_rec s;
    if (engine_vm_get(e, vmname, &vm, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (c->nparts == 3 && c->method == EVHTTP_REQ_GET) {
        struct snapshot_rec *ss;
        size_t n;
        if (store_snapshot_list(e->store, vm.id, &ss, &n) != 0) {
            reply_errorf(c->req, YE_INTERNAL, "database: %s", store_errmsg(e->store));
            return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, snapshot_json(e, &vm, &ss[i], -1));
        free(ss);
        reply_json(c->req, 200, json_pack("{s:o}", "snapshots", arr));
        return;
    }
    if (c->nparts == 3 && c->method == EVHTTP_REQ_POST) {
        static const char *const known[] = {"name", NULL};
        json_t *name = c->body ? json_object_get(c->body, "name") : NULL;
        int64_t t0 = monotonic_ms();
        if (c->body && !body_keys_known(c->body, known, &err))
            reply_error(c->req, &err);
        else if (!json_is_string(name))
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "name (a string) is required");
        else if (engine_snapshot_create(e, vm.name, json_string_value(name), &s, &err) < 0)
            reply_error(c->req, &err);
        else if (engine_vm_get(e, vm.name, &vm, &err) < 0)
            reply_error(c->req, &err);
        else
            reply_json(c->req, 201, snapshot_json(e, &vm, &s, monotonic_ms() - t0));
        return;
    }
    if (c->nparts < 4) {
        reply_errorf(c->req, YE_METHOD_NOT_ALLOWED, "use GET or POST on /v1/vms/NAME/snapshots");
        return;
    }
    const char *snap = c->parts[3];
    if (c->nparts == 4 && c->method == EVHTTP_REQ_GET) {
        if (engine_snapshot_find(e, &vm, snap, &s, &err) < 0)
            reply_error(c->req, &err);
        else
            reply_json(c->req, 200, snapshot_json(e, &vm, &s, -1));
        return;
    }
    if (c->nparts == 4 && c->method == EVHTTP_REQ_DELETE) {
        int rc = engine_snapshot_delete(e, vm.name, snap, &err);
        if (rc < 0)
            reply_error(c->req, &err);
        else
            reply_json(
                c->req, rc == 1 ? 202 : 200,
                json_pack("{s:s,s:s}", rc == 1 ? "deleting" : "deleted", snap, "vm", vm.name));
        return;
    }
    if (c->nparts == 6 && !strcmp(c->parts[4], "actions") && !strcmp(c->parts[5], "revert") &&
        c->method == EVHTTP_REQ_POST) {
        if (engine_snapshot_revert(e, vm.name, snap, &s, &err) < 0 ||
            engine_vm_get(e, vm.name, &vm, &err) < 0)
            reply_error(c->req, &err);
        else
            reply_json(c->req, 200, snapshot_json(e, &vm, &s, -1));
        return;
    }
    reply_errorf(c->req, YE_NOT_FOUND, "no such route under /v1/vms/NAME/snapshots");
}
