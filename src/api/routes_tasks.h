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

#endif
