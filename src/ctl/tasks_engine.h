/*
 * tasks_engine.h - the task table of an engine (e->tasks), until the
 * controller service owns it.
 */
#ifndef YUN_TASKS_ENGINE_H
#define YUN_TASKS_ENGINE_H

#include <stddef.h>

struct engine;

/* After engine_init: e->tasks, its events in the engine's event log. */
int tasks_attach(struct engine *e, char *err, size_t len);
/* At start-up, before reconcile and the API: tasks an earlier yund left
 * unfinished are recovered, then volume rows and pool files reconciled. */
void tasks_start(struct engine *e);
/* Before engine_shutdown. */
void tasks_detach(struct engine *e);

#endif
