/*
 * tasks_engine.c - the controller's task table: made after ctl_init, its
 * events go into the controller's event log (type "task", object the task
 * id), every kind is registered before tasks_recover, and it is freed
 * before the controller goes. Also the periodic volume reconcile's timer.
 */
#include "ctl/migrate.h"
#include "ctl/host_drain.h"
#include "ctl/tasks_engine.h"
#include "ctl/ctl.h"
#include "ctl/images.h"
#include "ctl/snapshots.h"
#include "ctl/tasks.h"
#include "ctl/volumes.h"

#include <event2/event.h>

static void on_task_event(void *ctx, const struct task_rec *k, const char *action,
                          const char *result, const char *reason)
{
    ctl_event(ctx, "task", k->id, action, result, "%s", reason);
}

static struct event *volumes_timer;

static void on_volumes_tick(evutil_socket_t fd, short what, void *arg)
{
    ctl_volumes_reconcile(arg);
}

int tasks_attach(struct ctl *c, char *err, size_t len)
{
    if (tasks_init(&c->tasks, c->store, c->base, err, len) < 0)
        return -1;
    tasks_set_event_hook(c->tasks, on_task_event, c);
    ctl_vm_tasks_register(c);
    ctl_migrate_register(c);
    ctl_host_drain_register(c);
    ctl_volumes_init(c);
    ctl_images_init(c);
    ctl_snapshots_init(c);
    volumes_timer = event_new(c->base, -1, EV_PERSIST, on_volumes_tick, c);
    struct timeval tv = {c->cfg->reconcile_interval_s, 0};
    if (volumes_timer)
        event_add(volumes_timer, &tv);
    return 0;
}

void tasks_start(struct ctl *c)
{
    tasks_recover(c->tasks);
    ctl_volumes_reconcile(c);
}

void tasks_detach(struct ctl *c)
{
    if (volumes_timer)
        event_free(volumes_timer);
    volumes_timer = NULL;
    tasks_free(c->tasks);
    c->tasks = NULL;
}
