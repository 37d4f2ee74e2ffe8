/*
 * volstate.c - transitions of the volume state machine (see volstate.h).
 */
#include "storage/volstate.h"

#define NONE VOL_STATE_COUNT

static const enum vol_state next[VOL_STATE_COUNT][VEV_COUNT] = {
    /* created, attach_live, attach_offline, plugged, plug_failed, unplug_live, unplugged,
     * unplug_failed, detach_offline, vm_gone, delete */
    [VOL_CREATING] = {VOL_READY, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE,
                      VOL_DELETING},
    [VOL_READY] = {NONE, VOL_ATTACHING, VOL_ATTACHED, NONE, NONE, NONE, NONE, NONE, NONE, NONE,
                   VOL_DELETING},
    [VOL_ATTACHING] = {NONE, NONE, NONE, VOL_ATTACHED, VOL_READY, NONE, NONE, NONE, NONE, VOL_READY,
                       NONE},
    [VOL_ATTACHED] = {NONE, NONE, NONE, NONE, NONE, VOL_DETACHING, NONE, NONE, VOL_READY, VOL_READY,
                      NONE},
    [VOL_DETACHING] = {NONE, NONE, NONE, NONE, NONE, NONE, VOL_READY, VOL_ATTACHED, NONE, VOL_READY,
                       NONE},
    [VOL_DELETING] = {NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE, NONE},
};

static const char *const event_names[VEV_COUNT] = {
    "created",   "attach_live",   "attach_offline", "plugged", "plug_failed", "unplug_live",
    "unplugged", "unplug_failed", "detach_offline", "vm_gone", "delete"};

const char *vol_event_name(enum vol_event e)
{
    return (unsigned)e < VEV_COUNT ? event_names[e] : "unknown";
}

int vol_state_next(enum vol_state s, enum vol_event ev, enum vol_state *out)
{
    if ((unsigned)s >= VOL_STATE_COUNT || (unsigned)ev >= VEV_COUNT || next[s][ev] == NONE)
        return -1;
    *out = next[s][ev];
    return 0;
}

bool vol_state_can(enum vol_state from, enum vol_state to)
{
    if ((unsigned)from >= VOL_STATE_COUNT)
        return false;
    for (int ev = 0; ev < VEV_COUNT; ev++)
        if (next[from][ev] == to)
            return true;
    return false;
}

bool vol_state_settled(enum vol_state s)
{
    return s == VOL_READY || s == VOL_ATTACHED;
}

bool vol_state_transient(enum vol_state s)
{
    return s == VOL_CREATING || s == VOL_DELETING;
}
