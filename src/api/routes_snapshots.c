/*
 * routes_snapshots.c - the /v1/vms/{name}/snapshots rows: a VM's disk
 * snapshots (list, take, show, delete by merging: 200 merged, 202 merging;
 * revert with the VM stopped). The body of take is checked by body_vms.c.
 */
#include "api/api.h"
#include "api/bodies.h"
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

static void snapshot_list(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct vm_rec vm;
    struct snapshot_rec *ss;
    size_t n;
    if (!route_vm(c, &vm))
        return;
    if (store_snapshot_list(e->store, vm.id, &ss, &n) != 0) {
        reply_errorf(c->req, YE_INTERNAL, "database: %s", store_errmsg(e->store));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, snapshot_json(e, &vm, &ss[i], -1));
    free(ss);
    reply_json(c->req, 200, json_pack("{s:o}", "snapshots", arr));
}

static void snapshot_create(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct vm_rec vm;
    struct snapshot_rec s;
    const char *name;
    int64_t t0 = monotonic_ms();
    if (snapshot_body_from_json(c->body, &name, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!route_vm(c, &vm))
        return;
    if (engine_snapshot_create(e, vm.name, name, &s, &err) < 0 ||
        engine_vm_get(e, vm.name, &vm, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 201, snapshot_json(e, &vm, &s, monotonic_ms() - t0));
}

static void snapshot_show(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_rec vm;
    struct snapshot_rec s;
    if (!route_vm(c, &vm))
        return;
    if (engine_snapshot_find(c->api->eng, &vm, route_param(c, "snapshot"), &s, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, snapshot_json(c->api->eng, &vm, &s, -1));
}

static void snapshot_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_rec vm;
    const char *snap = route_param(c, "snapshot");
    if (!route_vm(c, &vm))
        return;
    int rc = engine_snapshot_delete(c->api->eng, vm.name, snap, &err);
    if (rc < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, rc == 1 ? 202 : 200,
                   json_pack("{s:s,s:s}", rc == 1 ? "deleting" : "deleted", snap, "vm", vm.name));
}

static void snapshot_revert(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct vm_rec vm;
    struct snapshot_rec s;
    if (!route_vm(c, &vm))
        return;
    if (engine_snapshot_revert(e, vm.name, route_param(c, "snapshot"), &s, &err) < 0 ||
        engine_vm_get(e, vm.name, &vm, &err) < 0)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, snapshot_json(e, &vm, &s, -1));
}

const struct route routes_snapshots[] = {
    {EVHTTP_REQ_GET, "/v1/vms/{name}/snapshots", snapshot_list, 0,
     "A VM's disk snapshots, oldest first (\"current\" marks the one the disk sits on)", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/snapshots", snapshot_create, ROUTE_BODY,
     "Take a disk snapshot (running or stopped VM)", check_snapshot_create},
    {EVHTTP_REQ_GET, "/v1/vms/{name}/snapshots/{snapshot}", snapshot_show, 0, "One snapshot", NULL},
    {EVHTTP_REQ_DELETE, "/v1/vms/{name}/snapshots/{snapshot}", snapshot_delete, 0,
     "Delete a snapshot by merging its data into the layers above it", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/snapshots/{snapshot}/actions/revert", snapshot_revert, 0,
     "Revert the VM's disk to a snapshot (VM stopped); changes since are dropped", NULL},
};
const size_t routes_snapshots_count = sizeof(routes_snapshots) / sizeof(routes_snapshots[0]);
