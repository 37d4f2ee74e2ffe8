/*
 * volstate.h - the volume state machine: which event moves a volume from
 * which state to which. Pure, table-tested (tests/unit/test_volstate.c).
 * It sits in storage/ (not ctl/) because compute's attach and detach drive
 * it too, and compute may not include ctl.
 *
 *   creating --created--> ready --attach_live--> attaching --plugged--> attached
 *      |                   |  \--attach_offline-------------------------^  |
 *      +--delete--> deleting  <--delete   ready <--unplugged-- detaching <-+ unplug_live
 *                                         ready <--detach_offline-- attached
 *   failures: attaching --plug_failed--> ready; detaching --unplug_failed--> attached;
 *   vm_gone: attaching|attached|detaching -> ready
 */
#ifndef YUN_VOLSTATE_H
#define YUN_VOLSTATE_H

#include <stdbool.h>

#include "store/records.h"

enum vol_event {
    VEV_CREATED = 0,
    VEV_ATTACH_LIVE,
    VEV_ATTACH_OFFLINE,
    VEV_PLUGGED,
    VEV_PLUG_FAILED,
    VEV_UNPLUG_LIVE,
    VEV_UNPLUGGED,
    VEV_UNPLUG_FAILED,
    VEV_DETACH_OFFLINE,
    VEV_VM_GONE,
    VEV_DELETE,
    VEV_COUNT
};

const char *vol_event_name(enum vol_event e);
/* 0 with *out the state after ev, or -1 when ev does not apply in s. */
int vol_state_next(enum vol_state s, enum vol_event ev, enum vol_state *out);
/* Is there an event that moves from to to? */
bool vol_state_can(enum vol_state from, enum vol_state to);
/* ready or attached: where an operation may begin. */
bool vol_state_settled(enum vol_state s);
/* creating or deleting: an intent a crash may have left. */
bool vol_state_transient(enum vol_state s);

#endif
