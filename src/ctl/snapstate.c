/*
 * snapstate.c - transitions of the snapshot state machine (snapstate.h).
 */
#include "ctl/snapstate.h"

bool snap_state_settled(enum snap_state s)
{
    return s == SNAP_READY;
}

const char *snap_event_name(enum snap_event ev)
{
    static const char *const names[SNAP_EV_COUNT] = {"switched", "rolled-back",  "delete",
                                                     "merged",   "merge-failed", "revert"};
    return (unsigned)ev < SNAP_EV_COUNT ? names[ev] : "unknown";
}

enum snap_step snap_transition(enum snap_state from, enum snap_event ev, enum snap_state *to)
{
    enum snap_state next = from;
    enum snap_step step = SNAP_STEP_REFUSED;
    switch (from) {
    case SNAP_CREATING:
        if (ev == SNAP_EV_SWITCHED) {
            next = SNAP_READY;
            step = SNAP_STEP_STATE;
        } else if (ev == SNAP_EV_ROLLED_BACK) {
            step = SNAP_STEP_GONE;
        }
        break;
    case SNAP_READY:
        if (ev == SNAP_EV_DELETE) {
            next = SNAP_DELETING;
            step = SNAP_STEP_STATE;
        } else if (ev == SNAP_EV_REVERT) {
            step = SNAP_STEP_STATE;
        }
        break;
    case SNAP_DELETING:
        if (ev == SNAP_EV_MERGED) {
            step = SNAP_STEP_GONE;
        } else if (ev == SNAP_EV_MERGE_FAILED) {
            next = SNAP_READY;
            step = SNAP_STEP_STATE;
        }
        break;
    default:
        break;
    }
    if (step == SNAP_STEP_STATE && to)
        *to = next;
    return step;
}
