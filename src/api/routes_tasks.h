/*
 * routes_tasks.h - /v1/tasks, and the task-shaped replies other routes use
 * (202 {"task": ...} with a Location header; a 409 naming the task).
 *
 * The route rows use the shared table shape; until the table dispatcher
 * (another branch) lands, struct route_row stands in for struct route and
 * routes_tasks_dispatch() is called from http.c's if-chain. At merge:
 * rename route_row to route, drop the stand-ins below and the dispatch hook.
 */
#ifndef YUN_ROUTES_TASKS_H
#define YUN_ROUTES_TASKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/yerr.h"
#include "store/records.h"

struct route_ctx;
struct hreq;

#ifndef ROUTE_BODY
typedef void (*route_fn)(struct route_ctx *c);
enum route_flags {
    ROUTE_BODY = 1u << 0,     /* takes a JSON object body */
    ROUTE_ASYNC = 1u << 1,    /* answers 202 with a task */
    ROUTE_LONGPOLL = 1u << 2, /* may hold the request (events, task wait) */
    ROUTE_ADMIN = 1u << 3,    /* changes host-wide settings (for the coming roles) */
    ROUTE_PUBLIC = 1u << 4,   /* no token needed on TCP (/healthz) */
};
#endif
struct route_row {
    int method;
    const char *pattern;
    route_fn fn;
    unsigned flags;
    const char *summary;
    int (*check_body)(json_t *body, struct yerr *err);
};
extern const struct route_row routes_tasks[];
extern const size_t routes_tasks_count;

/* true when the request was under /v1/tasks (and has been answered). */
bool routes_tasks_dispatch(struct route_ctx *c);

/* 202: {"task": TASK} with Location; other statuses: TASK itself. */
void reply_task(struct hreq *req, int status, const struct task_rec *k);
/* reply_error, with "task": id in the error when it is a task conflict. */
void reply_error_task(struct hreq *req, const struct yerr *e);

#endif
