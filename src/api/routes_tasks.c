/*
 * routes_tasks.c - /v1/tasks: the long operations (ctl/tasks.h).
 *
 *   GET  /v1/tasks                  ?state=running&object=NAME&limit=N, newest first
 *   GET  /v1/tasks/{id}             ?wait=S (S <= 60): held until the task finishes
 *                                   or its progress changes, or S seconds pass
 *   POST /v1/tasks/{id}/cancel      202 TASK (cancel requested); 409 finished or
 *                                   not cancellable; 404 unknown
 *
 * Rows of the route table (routes.h).
 */
#include "api/api.h"
#include "api/routes_tasks.h"
#include "ctl/tasks.h"
#include "lib/util.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reply_task(struct hreq *req, int status, const struct task_rec *k)
{
    if (status == 202) {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/tasks/%s", k->id);
        evhttp_add_header(hreq_output_headers(req), "Location", loc);
        reply_json(req, status, json_pack("{s:o}", "task", task_to_json(k)));
        return;
    }
    reply_json(req, status, task_to_json(k));
}

void reply_error_task(struct hreq *req, const struct yerr *e)
{
    char id[37];
    if (task_conflict_id(e, id) < 0) {
        reply_error(req, e);
        return;
    }
    reply_json(req, yerr_status(e),
               json_pack("{s:{s:s,s:o,s:s}}", "error", "code", yerr_name(e), "message",
                         json_text(e->message), "task", id));
}

static struct tasks *tasks_of(struct route_ctx *c)
{
    return c->api->ctl->tasks;
}

static void task_list(struct route_ctx *c)
{
    struct task_filter f = {.state = -1, .limit = 100};
    const char *st = query_get(c, "state"), *obj = query_get(c, "object"),
               *lim = query_get(c, "limit");
    enum task_state s;
    if (st && task_state_parse(st, &s) < 0) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT,
                     "state must be queued, running, succeeded, failed or cancelled");
        return;
    }
    if (st)
        f.state = (int)s;
    uint64_t n = 0;
    if (lim && parse_u64(lim, 1, 1000, &n) < 0) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "limit must be 1..1000");
        return;
    }
    if (lim)
        f.limit = (int)n;
    f.object = obj;
    struct task_rec *rows;
    size_t count;
    struct yerr err = {0};
    if (tasks_list(tasks_of(c), &f, &rows, &count, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(arr, task_to_json(&rows[i]));
    tasks_rows_free(rows, count);
    reply_json(c->req, 200, json_pack("{s:o}", "tasks", arr));
}

/* A GET ?wait= held until the task changes. */
struct task_waiter {
    struct api *api;
    struct hreq *req;
    struct event *timer;
    char id[37];
};

static void waiter_free(struct task_waiter *w)
{
    task_unwatch(w->api->ctl->tasks, w);
    hreq_set_closecb(w->req, NULL, NULL);
    event_free(w->timer);
    free(w);
}

static void waiter_answer(struct task_waiter *w)
{
    struct task_rec k;
    struct yerr err = {0};
    int rc = tasks_get(w->api->ctl->tasks, w->id, &k, &err);
    if (rc == 0) {
        reply_task(w->req, 200, &k);
        task_rec_clear(&k);
    } else if (rc == STORE_NOTFOUND) {
        reply_errorf(w->req, YE_NOT_FOUND, "task '%s' does not exist", w->id);
    } else {
        reply_error(w->req, &err);
    }
    waiter_free(w);
}

static void on_task_change(void *ctx, const struct task_rec *k)
{
    struct task_waiter *w = ctx;
    /* from inside the task table: answer from the loop */
    event_active(w->timer, EV_TIMEOUT, 1);
}

static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    waiter_answer(arg);
}

static void on_waiter_closed(struct hreq *req, void *arg)
{
    struct task_waiter *w = arg;
    task_unwatch(w->api->ctl->tasks, w);
    event_free(w->timer);
    free(w);
}

static void task_get(struct route_ctx *c, const char *id)
{
    const char *ws = query_get(c, "wait");
    uint64_t wait = 0;
    if (ws && parse_u64(ws, 0, 60, &wait) < 0) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "wait must be 0..60 seconds");
        return;
    }
    struct task_rec k;
    struct yerr err = {0};
    int rc = tasks_get(tasks_of(c), id, &k, &err);
    if (rc == STORE_NOTFOUND) {
        reply_errorf(c->req, YE_NOT_FOUND, "task '%s' does not exist", id);
        return;
    }
    if (rc != 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!wait || task_state_finished(k.state)) {
        reply_task(c->req, 200, &k);
        task_rec_clear(&k);
        return;
    }
    struct task_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        task_rec_clear(&k);
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->api = c->api;
    w->req = c->req;
    snprintf(w->id, sizeof w->id, "%s", k.id);
    task_rec_clear(&k);
    w->timer = evtimer_new(c->api->ctl->base, on_wait_timer, w);
    struct timeval tv = {(time_t)wait, 0};
    if (!w->timer || evtimer_add(w->timer, &tv) < 0 ||
        task_watch_change(tasks_of(c), w->id, on_task_change, w) < 0) {
        if (w->timer)
            event_free(w->timer);
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "cannot wait for task %s", id);
        return;
    }
    hreq_set_closecb(c->req, on_waiter_closed, w);
}

static void task_cancel(struct route_ctx *c, const char *id)
{
    struct task_rec k;
    struct yerr err = {0};
    if (tasks_cancel(tasks_of(c), id, &k, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    task_rec_clear(&k);
    /* the task as it is now (a cancel may have finished it already) */
    if (tasks_get(tasks_of(c), id, &k, &err) != 0) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(c->req, 202, task_to_json(&k));
    task_rec_clear(&k);
}

/* Route table rows (the shared shape): handlers read {id}. */
static void rt_list(struct route_ctx *c)
{
    task_list(c);
}
static void rt_get(struct route_ctx *c)
{
    task_get(c, route_param(c, "id"));
}
static void rt_cancel(struct route_ctx *c)
{
    task_cancel(c, route_param(c, "id"));
}

const struct route routes_tasks[] = {
    {EVHTTP_REQ_GET, "/v1/tasks", rt_list, 0, "List tasks (long operations), newest first", NULL},
    {EVHTTP_REQ_GET, "/v1/tasks/{id}", rt_get, ROUTE_LONGPOLL,
     "Show a task; ?wait=S holds the request until it changes", NULL},
    {EVHTTP_REQ_POST, "/v1/tasks/{id}/cancel", rt_cancel, 0, "Cancel a running task", NULL},
};
const size_t routes_tasks_count = sizeof routes_tasks / sizeof routes_tasks[0];

/* ---- the 202 waiter ---- */

struct task_wait {
    struct hreq *req; /* NULL once the client left */
};

static void task_wait_closed(struct hreq *req, void *arg)
{
    struct task_wait *w = arg;
    w->req = NULL;
}

struct task_wait *task_wait_new(struct route_ctx *c)
{
    struct task_wait *w = calloc(1, sizeof *w);
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return NULL;
    }
    w->req = c->req;
    hreq_set_closecb(c->req, task_wait_closed, w);
    return w;
}

void task_wait_done(void *ctx, const struct task_rec *k, const struct yerr *err)
{
    struct task_wait *w = ctx;
    if (w->req) {
        hreq_set_closecb(w->req, NULL, NULL);
        if (err)
            reply_error_task(w->req, err);
        else
            reply_task(w->req, 202, k);
    }
    free(w);
}

void task_wait_refused(struct task_wait *w, const struct yerr *err)
{
    hreq_set_closecb(w->req, NULL, NULL);
    reply_error_task(w->req, err);
    free(w);
}
