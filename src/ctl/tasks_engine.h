/*
 * tasks_engine.h - the controller's task table (c->tasks): made once the
 * controller is (ctl_init), its events in the controller's event log, the
 * kinds of the storage operations registered, freed before the controller.
 */
#ifndef YUN_TASKS_ENGINE_H
#define YUN_TASKS_ENGINE_H

#include <stddef.h>

struct ctl;

/* After ctl_init: c->tasks, every kind registered (VM, volume, image,
 * snapshot), the periodic volume reconcile armed. */
int tasks_attach(struct ctl *c, char *err, size_t len);
/* At start-up, before reconcile and the API: tasks an earlier yund left
 * unfinished are recovered, then volume rows and pool files reconciled. */
void tasks_start(struct ctl *c);
/* Before ctl_shutdown's end and engine_shutdown. */
void tasks_detach(struct ctl *c);

#endif
