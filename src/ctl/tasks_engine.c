/*
 * tasks_engine.c - hangs the task table off struct engine until the
 * controller service (struct ctl) exists: made after the engine, its events
 * go into the engine's event log (type "task", object the task id), and it
 * is freed before the engine.
 */
#include "ctl/tasks_engine.h"
#include "compute/engine.h"
#include "ctl/tasks.h"

static void on_task_event(void *ctx, const struct task_rec *k, const char *action,
                          const char *result, const char *reason)
{
    engine_event(ctx, "task", k->id, action, result, "%s", reason);
}

int tasks_attach(struct engine *e, char *err, size_t len)
{
    if (tasks_init(&e->tasks, e->store, e->base, err, len) < 0)
        return -1;
    tasks_set_event_hook(e->tasks, on_task_event, e);
    return 0;
}

void tasks_detach(struct engine *e)
{
    tasks_free(e->tasks);
    e->tasks = NULL;
}
