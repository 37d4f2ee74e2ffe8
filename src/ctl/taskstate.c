/*
 * taskstate.c - transitions of the task state machine.
 *
 *   queued -> running -> succeeded
 *      |         +-----> failed
 *      +---------+-----> cancelled      (queued may also go to failed)
 */
#include "ctl/taskstate.h"

bool task_state_finished(enum task_state s)
{
    return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_CANCELLED;
}

bool task_state_can(enum task_state from, enum task_state to)
{
    if ((unsigned)from >= TASK_STATE_COUNT || (unsigned)to >= TASK_STATE_COUNT)
        return false;
    switch (from) {
    case TASK_QUEUED:
        return to == TASK_RUNNING || to == TASK_FAILED || to == TASK_CANCELLED;
    case TASK_RUNNING:
        return to == TASK_SUCCEEDED || to == TASK_FAILED || to == TASK_CANCELLED;
    default:
        return false;
    }
}
