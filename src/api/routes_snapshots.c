/*
 * routes_snapshots.c - the /v1/vms/{name}/snapshots rows: a VM's disk
 * snapshots (list, take: 201 when taken, show, delete: 202 {"task": ...}
 * for the merge, revert with the VM stopped: 200 when done). The body of
 * take is checked by body_vms.c.
 *
 * Each is a task on the VM (ctl/snapshots.c): a request that meets another
 * unfinished task on it gets 409 with "task": its id.
 */
#include "api/api.h"
#include "api/bodies.h"
#include "ctl/snapshots.h"
#include "ctl/tasks.h"
#include "api/httpd.h"
#include "api/routes_tasks.h"
#include "lib/util.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

/* Create (201) and revert (200) answer when their task is done: the
 * request is parked until then (the task goes on if the client leaves). */
struct create_wait {
    struct ctl *ctl;
    struct hreq *req;
    char vm[64];
    int64_t t0;
    int status;
};

static void create_closed(struct hreq *req, void *arg)
{
    struct create_wait *w = arg;
    (void)req;
    task_unwatch(w->ctl->tasks, w);
    free(w);
}

static void create_done(void *ctx, const struct task_rec *k)
{
    struct create_wait *w = ctx;
    struct yerr err = {0};
    json_t *j;
    hreq_set_closecb(w->req, NULL, NULL);
    json_t *r = k->result ? json_loads(k->result, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(r, "id"));
    if (k->state != TASK_SUCCEEDED) {
        yerr_set(&err, k->error_code ? k->error_code : YE_INTERNAL, "%s", k->error_message);
        reply_error(w->req, &err);
    } else if (!(j = ctl_snapshot_show(w->ctl, w->vm, id ? id : "",
                                       w->status == 201 ? monotonic_ms() - w->t0 : -1, &err))) {
        reply_error(w->req, &err);
    } else {
        reply_json(w->req, w->status, j);
    }
    json_decref(r);
    free(w);
}

static void wait_task(struct route_ctx *c, struct ctl *ctl, const struct vm_rec *vm,
                      const char *task, int status)
{
    struct create_wait *w = calloc(1, sizeof *w);
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory (task %s goes on)", task);
        return;
    }
    w->ctl = ctl;
    w->req = c->req;
    w->t0 = monotonic_ms();
    w->status = status;
    snprintf(w->vm, sizeof w->vm, "%s", vm->name);
    hreq_set_closecb(c->req, create_closed, w);
    if (task_watch(ctl->tasks, task, create_done, w) < 0) {
        hreq_set_closecb(c->req, NULL, NULL);
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "cannot wait for task %s", task);
    }
}

static void snapshot_list(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_rec vm;
    if (!route_vm(c, &vm))
        return;
    json_t *j = ctl_snapshot_list(c->api->ctl, vm.name, &err);
    if (!j)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, j);
}

static void snapshot_create(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct yerr err = {0};
    struct vm_rec vm;
    const char *name;
    if (snapshot_body_from_json(c->body, &name, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!route_vm(c, &vm))
        return;
    char task[37];
    if (ctl_snapshot_create_start(ctl, vm.name, name, task, &err) < 0)
        reply_error_task(c->req, &err);
    else
        wait_task(c, ctl, &vm, task, 201);
}

static void snapshot_show(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_rec vm;
    if (!route_vm(c, &vm))
        return;
    json_t *j = ctl_snapshot_show(c->api->ctl, vm.name, route_param(c, "snapshot"), -1, &err);
    if (!j)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, j);
}

static void snapshot_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    struct vm_rec vm;
    struct task_rec task;
    if (!route_vm(c, &vm))
        return;
    if (ctl_snapshot_delete(c->api->ctl, vm.name, route_param(c, "snapshot"), &task, &err) < 0) {
        reply_error_task(c->req, &err);
        return;
    }
    reply_task(c->req, 202, &task);
    task_rec_clear(&task);
}

static void snapshot_revert(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct yerr err = {0};
    struct vm_rec vm;
    char task[37];
    if (!route_vm(c, &vm))
        return;
    if (ctl_snapshot_revert_start(ctl, vm.name, route_param(c, "snapshot"), task, &err) < 0)
        reply_error_task(c->req, &err);
    else
        wait_task(c, ctl, &vm, task, 200);
}

const struct route routes_snapshots[] = {
    {EVHTTP_REQ_GET, "/v1/vms/{name}/snapshots", snapshot_list, 0,
     "A VM's disk snapshots, oldest first (\"current\" marks the one the disk sits on)", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/snapshots", snapshot_create, ROUTE_BODY,
     "Take a disk snapshot (running or stopped VM)", check_snapshot_create},
    {EVHTTP_REQ_GET, "/v1/vms/{name}/snapshots/{snapshot}", snapshot_show, 0, "One snapshot", NULL},
    {EVHTTP_REQ_DELETE, "/v1/vms/{name}/snapshots/{snapshot}", snapshot_delete, ROUTE_ASYNC,
     "Delete a snapshot by merging its data into the layers above it", NULL},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/snapshots/{snapshot}/actions/revert", snapshot_revert, 0,
     "Revert the VM's disk to a snapshot (VM stopped); changes since are dropped", NULL},
};
const size_t routes_snapshots_count = sizeof(routes_snapshots) / sizeof(routes_snapshots[0]);
