/*
 * taskstate.h - the task state machine: queued -> running -> succeeded |
 * failed | cancelled (a queued task may also fail or be cancelled before it
 * runs); a finished task never changes again. Pure, table-tested. The names
 * (task_state_name/parse) are in store/records.c beside the VM states'.
 */
#ifndef YUN_TASKSTATE_H
#define YUN_TASKSTATE_H

#include <stdbool.h>

#include "store/records.h"

/* May a task in state from move to state to? */
bool task_state_can(enum task_state from, enum task_state to);
/* succeeded, failed or cancelled. */
bool task_state_finished(enum task_state s);

#endif
