/*
 * routes_migrate.c - POST /v1/vms/{name}/migrate: a running VM's live move
 * to another host (ctl/migrate.h), answered 202 {"task": TASK} once the
 * vm.migrate task is begun; the task's "detail" carries the live figures
 * and its cancel (POST /v1/tasks/{id}/cancel) rolls the move back. The
 * body is checked here (pure), its hosts and VM by the controller.
 */
#include "api/api.h"
#include "api/routes.h"
#include "api/routes_tasks.h"
#include "ctl/migrate.h"
#include "ctl/place.h"

#include <event2/http.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* {"to", "strategy", "max_bandwidth", "max_downtime_ms", "auto_converge",
 * "postcopy"}: every member optional, none other taken. */
static int migrate_body(json_t *b, struct migrate_opts *o, struct yerr *err)
{
    memset(o, 0, sizeof *o);
    if (!b)
        return 0;
    if (!json_is_object(b))
        return yerr_set(err, YE_INVALID_ARGUMENT, "the body must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        if (!strcmp(k, "to") || !strcmp(k, "strategy")) {
            size_t cap = !strcmp(k, "to") ? sizeof o->to : sizeof o->strategy;
            if (!json_is_string(v) || strlen(json_string_value(v)) >= cap)
                return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a string of at most %zu", k,
                                cap - 1);
            snprintf(!strcmp(k, "to") ? o->to : o->strategy, cap, "%s", json_string_value(v));
        } else if (!strcmp(k, "max_bandwidth")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return yerr_set(err, YE_INVALID_ARGUMENT,
                                "max_bandwidth must be bytes per second (0 = unlimited)");
            o->max_bandwidth = (uint64_t)json_integer_value(v);
        } else if (!strcmp(k, "max_downtime_ms")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3600000)
                return yerr_set(err, YE_INVALID_ARGUMENT, "max_downtime_ms must be 0..3600000");
            o->max_downtime_ms = (int)json_integer_value(v);
        } else if (!strcmp(k, "auto_converge") || !strcmp(k, "postcopy") || !strcmp(k, "dry_run")) {
            if (!json_is_boolean(v))
                return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a boolean", k);
            bool *f = !strcmp(k, "auto_converge") ? &o->auto_converge
                      : !strcmp(k, "postcopy")    ? &o->postcopy
                                                  : &o->dry_run;
            *f = json_is_true(v);
        } else {
            return yerr_set(err, YE_INVALID_ARGUMENT, "unknown member '%s'", k);
        }
    }
    sched_policy pol;
    if (place_strategy_parse(o->strategy, &pol, err) < 0)
        return -1;
    return 0; /* no "to": the strategy's (migrate_choose_target) */
}

static int check_migrate(json_t *body, struct yerr *err)
{
    struct migrate_opts o;
    return migrate_body(body, &o, err);
}

static void vm_migrate(struct route_ctx *c)
{
    struct yerr err = {0};
    struct migrate_opts o;
    struct vm_rec vm;
    if (migrate_body(c->body, &o, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!route_vm(c, &vm))
        return;
    struct task_rec task = {0};
    if (ctl_vm_migrate(c->api->ctl, vm.name, &o, NULL, NULL, &task, &err) < 0) {
        reply_error_task(c->req, &err);
        return;
    }
    reply_task(c->req, 202, &task);
}

/* a plan's wait for its answer; the client may go first */
struct plan_wait {
    struct hreq *req; /* NULL: the client went */
};

static void plan_closed(struct hreq *req, void *arg)
{
    (void)req;
    ((struct plan_wait *)arg)->req = NULL;
}

static void plan_done(void *arg, json_t *plan, const struct yerr *err)
{
    struct plan_wait *w = arg;
    if (w->req) {
        hreq_set_closecb(w->req, NULL, NULL);
        if (!err) {
            reply_json(w->req, 200, json_incref(plan));
        } else {
            json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", yerr_name(err), "message",
                                  err->message);
            if (j && plan)
                json_object_set(j, "plan", plan);
            if (j)
                reply_json(w->req, yerr_status(err), j);
            else
                reply_error(w->req, err);
        }
    }
    free(w);
}

static void vm_migrate_plan(struct route_ctx *c)
{
    struct yerr err = {0};
    struct migrate_opts o;
    struct vm_rec vm;
    if (migrate_body(c->body, &o, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!route_vm(c, &vm))
        return;
    struct plan_wait *w = calloc(1, sizeof *w);
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->req = c->req;
    hreq_set_closecb(c->req, plan_closed, w);
    ctl_migrate_plan(c->api->ctl, &vm, &o, plan_done, w);
}

const struct route routes_migrate[] = {
    {EVHTTP_REQ_POST, "/v1/vms/{name}/migrate", vm_migrate, ROUTE_BODY | ROUTE_ASYNC,
     "Move a VM to another host, live when it runs, cold when it is stopped (a vm.migrate "
     "task)",
     check_migrate},
    {EVHTTP_REQ_POST, "/v1/vms/{name}/migrate/plan", vm_migrate_plan, ROUTE_BODY,
     "A move's target and prediction (dirty rate measured, pre-copy modelled); nothing changes",
     check_migrate},
};
const size_t routes_migrate_count = sizeof(routes_migrate) / sizeof(routes_migrate[0]);
