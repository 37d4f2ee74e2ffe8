/*
 * vmstate.h - the VM state machine: which user actions are allowed in which
 * state, what a QMP event or a QEMU exit does to the state, and whether a VM
 * whose QEMU went away is restarted. Pure functions, unit-tested.
 */
#ifndef YUN_VMSTATE_H
#define YUN_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/records.h"

enum vm_action {
    ACT_START = 0,
    ACT_STOP,
    ACT_FORCE_STOP,
    ACT_REBOOT,
    ACT_PAUSE,
    ACT_RESUME,
    ACT_DELETE,
    ACT_COUNT
};

const char *vm_action_name(enum vm_action a);
int vm_action_parse(const char *s, enum vm_action *out);

/* 0 when allowed; otherwise -1 with a reason like "vm 'a' is paused: resume it first". */
int vm_action_check(const struct vm_rec *vm, enum vm_action a, bool force, char *why, size_t len);

/* New state after a QMP event; returns the current state for events that
 * do not change it (RESET, POWERDOWN, ...). */
enum vm_state vm_state_on_qmp_event(enum vm_state cur, const char *event);

/* State after QEMU exited (clean or not: the event log tells which). */
enum vm_state vm_state_on_exit(enum vm_state cur, bool clean);

/* Should a VM whose QEMU exited be started again? Never once it is crashed. */
bool vm_should_restart(const struct vm_rec *vm, bool clean);

/* Is there (supposed to be) a QEMU process for a VM in this state? True
 * for unknown too: it may have one. */
bool vm_state_has_process(enum vm_state s);

/* Settled states, where a disk operation may begin: a QEMU that is up and
 * answering (running, paused), or no QEMU at all (stopped, crashed). The
 * others are on their way from one to the other. */
bool vm_state_live(enum vm_state s);
bool vm_state_down(enum vm_state s);

#endif
