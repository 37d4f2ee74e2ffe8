/*
 * tasks_engine.c - hangs the task table off struct engine until the
 * controller service (struct ctl) exists: made after the engine, its events
 * go into the engine's event log (type "task", object the task id), and it
 * is freed before the engine.
 */
#include "ctl/tasks_engine.h"
#include "compute/engine.h"
#include "ctl/tasks.h"
#include "ctl/images.h"
#include "ctl/volumes.h"

#include <event2/event.h>

static void on_task_event(void *ctx, const struct task_rec *k, const char *action,
                          const char *result, const char *reason)
{
    engine_event(ctx, "task", k->id, action, result, "%s", reason);
}

static struct event *volumes_timer;

static void on_volumes_tick(evutil_socket_t fd, short what, void *arg)
{
    ctl_volumes_reconcile(arg);
}

int tasks_attach(struct engine *e, char *err, size_t len)
{
    if (tasks_init(&e->tasks, e->store, e->base, err, len) < 0)
        return -1;
    tasks_set_event_hook(e->tasks, on_task_event, e);
    ctl_volumes_init(e);
    ctl_images_init(e);
    volumes_timer = event_new(e->base, -1, EV_PERSIST, on_volumes_tick, e);
    struct timeval tv = {e->cfg->reconcile_interval_s, 0};
    if (volumes_timer)
        event_add(volumes_timer, &tv);
    return 0;
}

void tasks_start(struct engine *e)
{
    tasks_recover(e->tasks);
    ctl_volumes_reconcile(e);
}

void tasks_detach(struct engine *e)
{
    if (volumes_timer)
        event_free(volumes_timer);
    volumes_timer = NULL;
    tasks_free(e->tasks);
    e->tasks = NULL;
}
