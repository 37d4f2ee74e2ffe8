/*
 * routes_snapshots.c - /v1/vms/{name}/snapshots: a VM's disk snapshots.
 *
 *   GET    /v1/vms/{vm}/snapshots                     the tree, oldest first
 *   POST   /v1/vms/{vm}/snapshots                     {"name": S}: 201 when taken
 *   GET    /v1/vms/{vm}/snapshots/{s}
 *   DELETE /v1/vms/{vm}/snapshots/{s}                 202 {"task": ...}: the merge
 *   POST   /v1/vms/{vm}/snapshots/{s}/actions/revert  (vm stopped)
 *
 * Each is a task on the VM (ctl/snapshots.c): a request that meets another
 * unfinished task on it gets 409 with "task": its id.
 */
#include "api/api.h"
#include "compute/vm_disks.h"
#include "ctl/snapshots.h"
#include "ctl/tasks.h"
#include "api/httpd.h"
#include "api/routes_tasks.h"
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
                  vm->name, "parent", s->parent, "state", snap_state_name(s->state), "consistency",
                  s->consistency, "current", !strcmp(vm->disk_parent, s->id), "size",
                  (json_int_t)file_size_on_disk(path), "created_at", (json_int_t)s->created_at);
    if (took_ms >= 0)
        json_object_set_new(j, "took_ms", json_integer(took_ms));
    return j;
}

/* Create (201) and revert (200) answer when their task is done: the
 * request is parked until then (the task goes on if the client leaves). */
struct create_wait {
    struct engine *e;
    struct hreq *req;
    char vm[64];
    int64_t t0;
    int status;
};

static void create_closed(struct hreq *req, void *arg)
{
    struct create_wait *w = arg;
    (void)req;
    task_unwatch(w->e->tasks, w);
    free(w);
}

static void create_done(void *ctx, const struct task_rec *k)
{
    struct create_wait *w = ctx;
    struct yerr err = {0};
    struct vm_rec vm;
    struct snapshot_rec s;
    hreq_set_closecb(w->req, NULL, NULL);
    json_t *r = k->result ? json_loads(k->result, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(r, "id"));
    if (k->state != TASK_SUCCEEDED) {
        yerr_set(&err, k->error_code ? k->error_code : YE_INTERNAL, "%s", k->error_message);
        reply_error(w->req, &err);
    } else if (engine_vm_get(w->e, w->vm, &vm, &err) < 0 ||
               engine_snapshot_find(w->e, &vm, id ? id : "", &s, &err) < 0) {
        reply_error(w->req, &err);
    } else {
        reply_json(w->req, w->status,
                   snapshot_json(w->e, &vm, &s, w->status == 201 ? monotonic_ms() - w->t0 : -1));
    }
    json_decref(r);
    free(w);
}

static void wait_task(struct route_ctx *c, struct engine *e, const struct vm_rec *vm,
                      const char *task, int status)
{
    struct create_wait *w = calloc(1, sizeof *w);
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory (task %s goes on)", task);
        return;
    }
    w->e = e;
    w->req = c->req;
    w->t0 = monotonic_ms();
    w->status = status;
    snprintf(w->vm, sizeof w->vm, "%s", vm->name);
    hreq_set_closecb(c->req, create_closed, w);
    if (task_watch(e->tasks, task, create_done, w) < 0) {
        hreq_set_closecb(c->req, NULL, NULL);
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "cannot wait for task %s", task);
    }
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
        char task[37];
        if (c->body && !body_keys_known(c->body, known, &err))
            reply_error(c->req, &err);
        else if (!json_is_string(name))
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "name (a string) is required");
        else if (ctl_snapshot_create_start(e, vm.name, json_string_value(name), task, &err) < 0)
            reply_error_task(c->req, &err);
        else
            wait_task(c, e, &vm, task, 201);
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
        struct task_rec task;
        if (ctl_snapshot_delete(e, vm.name, snap, &task, &err) < 0) {
            reply_error_task(c->req, &err);
            return;
        }
        reply_task(c->req, 202, &task);
        task_rec_clear(&task);
        return;
    }
    if (c->nparts == 6 && !strcmp(c->parts[4], "actions") && !strcmp(c->parts[5], "revert") &&
        c->method == EVHTTP_REQ_POST) {
        char task[37];
        if (ctl_snapshot_revert_start(e, vm.name, snap, task, &err) < 0)
            reply_error_task(c->req, &err);
        else
            wait_task(c, e, &vm, task, 200);
        return;
    }
    reply_errorf(c->req, YE_NOT_FOUND, "no such route under /v1/vms/NAME/snapshots");
}
