/*
 * routes_tasks.h - /v1/tasks, and the task-shaped replies other routes use
 * (202 {"task": ...} with a Location header; a 409 naming the task).
 * Its rows (routes_tasks[]) are declared in routes.h with the others.
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

/* 202: {"task": TASK} with Location; other statuses: TASK itself. */
void reply_task(struct hreq *req, int status, const struct task_rec *k);
/* reply_error, with "task": id in the error when it is a task conflict. */
void reply_error_task(struct hreq *req, const struct yerr *e);

/* A request answered 202 {"task"} (or the error) from the controller's
 * callback once the operation has begun (an import, once its file is
 * judged). The client may leave first: the answer is dropped. */
struct task_wait;
/* NULL (500 answered) when out of memory. */
struct task_wait *task_wait_new(struct route_ctx *c);
/* The callback (a ctl_task_fn): answers and frees the wait. */
void task_wait_done(void *ctx, const struct task_rec *k, const struct yerr *err);
/* The operation did not begin (its callback never runs): answers now. */
void task_wait_refused(struct task_wait *w, const struct yerr *err);

#endif
