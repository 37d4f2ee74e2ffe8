/*
 * vmstate.c - transitions of the VM state machine.
 *
 *   creating -> stopped -> starting -> running <-> paused
 *                  ^                     |  \
 *                  |                  stopping  crashed (guest panic / QEMU died)
 *                  +---------------------+------+
 *   any state -> deleting -> (row gone)
 *   starting, running, paused, stopping -> unknown (its host went down)
 *   unknown -> what reconcile finds once the host is back (its QEMU's status,
 *              or gone: the exit)
 *
 * An unknown VM may still have a QEMU (its capacity stays held). While it is
 * unknown only force-stop and delete --force are taken (both need its host's
 * agent, so they fail with 503 while the host is down); the other actions are
 * refused with 409 until reconcile settles the state.
 */
#include "compute/vmstate.h"

#include <stdio.h>
#include <string.h>

static const char *const action_names[ACT_COUNT] = {"start", "stop",   "force-stop", "reboot",
                                                    "pause", "resume", "delete"};

const char *vm_action_name(enum vm_action a)
{
    return (unsigned)a < ACT_COUNT ? action_names[a] : "unknown";
}

int vm_action_parse(const char *s, enum vm_action *out)
{
    for (int i = 0; i < ACT_COUNT; i++)
        if (s && !strcmp(s, action_names[i])) {
            *out = (enum vm_action)i;
            return 0;
        }
    return -1;
}

int vm_action_check(const struct vm_rec *vm, enum vm_action a, bool force, char *why, size_t len)
{
    enum vm_state s = vm->state;
    const char *sn = vm_state_name(s);
    if (s == VM_CREATING || s == VM_DELETING) {
        snprintf(why, len, "vm '%s' is %s", vm->name, sn);
        return -1;
    }
    if (s == VM_UNKNOWN && a != ACT_FORCE_STOP && !(a == ACT_DELETE && force)) {
        snprintf(why, len,
                 "vm '%s' is unknown (its host is unreachable): only force-stop or delete "
                 "--force, or wait until its host is back",
                 vm->name);
        return -1;
    }
    switch (a) {
    case ACT_START:
        if (s == VM_STOPPED || s == VM_CRASHED)
            return 0;
        if (s == VM_PAUSED)
            snprintf(why, len, "vm '%s' is paused: resume it instead", vm->name);
        else
            snprintf(why, len, "vm '%s' is already %s", vm->name, sn);
        return -1;
    case ACT_STOP:
        if (s == VM_RUNNING || s == VM_PAUSED || s == VM_STARTING)
            return 0;
        if (s == VM_STOPPING)
            snprintf(why, len, "vm '%s' is already stopping: use force-stop to end it now",
                     vm->name);
        else
            snprintf(why, len, "vm '%s' is not running (%s)", vm->name, sn);
        return -1;
    case ACT_FORCE_STOP:
        if (vm_state_has_process(s))
            return 0;
        snprintf(why, len, "vm '%s' is not running (%s)", vm->name, sn);
        return -1;
    case ACT_REBOOT:
        if (s == VM_RUNNING)
            return 0;
        snprintf(why, len, "vm '%s' is %s: only a running vm can reboot", vm->name, sn);
        return -1;
    case ACT_PAUSE:
        if (s == VM_RUNNING)
            return 0;
        snprintf(why, len, "vm '%s' is %s: only a running vm can be paused", vm->name, sn);
        return -1;
    case ACT_RESUME:
        if (s == VM_PAUSED)
            return 0;
        snprintf(why, len, "vm '%s' is %s: only a paused vm can be resumed", vm->name, sn);
        return -1;
    case ACT_DELETE:
        if (!vm_state_has_process(s) || force)
            return 0;
        snprintf(why, len, "vm '%s' is %s: stop it first or delete with --force", vm->name, sn);
        return -1;
    default:
        snprintf(why, len, "unknown action");
        return -1;
    }
}

enum vm_state vm_state_on_qmp_event(enum vm_state cur, const char *ev)
{
    if (!strcmp(ev, "STOP"))
        return cur == VM_RUNNING ? VM_PAUSED : cur;
    if (!strcmp(ev, "RESUME"))
        return (cur == VM_PAUSED || cur == VM_STARTING) ? VM_RUNNING : cur;
    if (!strcmp(ev, "SHUTDOWN"))
        return (cur == VM_RUNNING || cur == VM_PAUSED) ? VM_STOPPING : cur;
    if (!strcmp(ev, "GUEST_PANICKED"))
        return VM_CRASHED;
    return cur;
}

enum vm_state vm_state_on_exit(enum vm_state cur, bool clean)
{
    if (cur == VM_DELETING || cur == VM_CREATING)
        return cur;
    /* An unclean exit is reported through the event log and last_error; the
     * state says what is true now: no QEMU, so stopped. */
    (void)clean;
    return VM_STOPPED;
}

bool vm_should_restart(const struct vm_rec *vm, bool clean)
{
    if (vm->desired != WANT_RUNNING && vm->desired != WANT_PAUSED)
        return false;
    /* Crashed means the guest itself fails as configured (a reset loop from
     * too little memory): a restart would only replay the loop, at every
     * backoff step, for ever. It waits for the user to fix it and start it. */
    if (vm->state == VM_CRASHED)
        return false;
    switch (vm->restart) {
    case RESTART_ALWAYS:
        return true;
    case RESTART_ON_FAILURE:
        return !clean;
    default:
        return false;
    }
}

bool vm_state_has_process(enum vm_state s)
{
    return s == VM_STARTING || s == VM_RUNNING || s == VM_PAUSED || s == VM_STOPPING ||
           s == VM_UNKNOWN;
}

bool vm_state_live(enum vm_state s)
{
    return s == VM_RUNNING || s == VM_PAUSED;
}

bool vm_state_down(enum vm_state s)
{
    return s == VM_STOPPED || s == VM_CRASHED;
}
