/*
 * snapstate.h - the snapshot state machine: which events move a snapshot
 * row from which state, and to where. Pure, table-tested
 * (tests/unit/test_snapstate.c). The names (snap_state_name/parse) are in
 * store/records.c beside the VM states'.
 *
 *   (none) --create--> creating --switched--> ready --delete--> deleting
 *                         |                    ^ ^                 |
 *                         +--rolled back--> (gone)  +-merge failed-+--merged--> (gone)
 *
 * "creating" and "deleting" are intents, written before the side effects;
 * only a ready snapshot may be reverted to, deleted, or have a sibling
 * taken while it exists.
 */
#ifndef YUN_SNAPSTATE_H
#define YUN_SNAPSTATE_H

#include <stdbool.h>

#include "store/records.h"

enum snap_event {
    SNAP_EV_SWITCHED = 0, /* the new active layer is in use: the snapshot is taken */
    SNAP_EV_ROLLED_BACK,  /* the create did not happen: row and new layer go */
    SNAP_EV_DELETE,       /* a delete begins: the merge into the children */
    SNAP_EV_MERGED,       /* every child holds its data: row and file go */
    SNAP_EV_MERGE_FAILED, /* the merge stopped: the snapshot stays, whole */
    SNAP_EV_REVERT,       /* the VM's disk goes back to it (the row is unchanged) */
    SNAP_EV_COUNT
};

/* What an event does: the state after it, or that the row goes. */
enum snap_step { SNAP_STEP_REFUSED = 0, SNAP_STEP_STATE, SNAP_STEP_GONE };

/* The outcome of ev on a snapshot in state from; *to is set for
 * SNAP_STEP_STATE. */
enum snap_step snap_transition(enum snap_state from, enum snap_event ev, enum snap_state *to);
/* No operation is under way on it (others may build on it). */
bool snap_state_settled(enum snap_state s);
const char *snap_event_name(enum snap_event ev);

#endif
