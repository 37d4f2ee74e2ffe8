/*
 * reattach.c - the pure status -> state mapping of a re-attach
 * (reattach.h).
 */
#include "ctl/reattach.h"

#include <string.h>

bool vm_reattach_interrupted(enum vm_state row, const char *status)
{
    return !strcmp(status, "prelaunch") || row == VM_STARTING;
}

/* An unknown row (its host was down) takes what QEMU says, like a running
 * one. */
enum vm_state vm_reattach_state(enum vm_state row, const char *status)
{
    if (vm_reattach_interrupted(row, status))
        return !strcmp(status, "prelaunch") ? VM_PAUSED : row;
    if (!strcmp(status, "running"))
        return row == VM_STOPPING ? VM_STOPPING : VM_RUNNING;
    if (!strcmp(status, "paused") || !strcmp(status, "suspended"))
        return row == VM_STOPPING ? VM_STOPPING : VM_PAUSED;
    if (!strcmp(status, "shutdown"))
        return VM_STOPPING;
    if (!strcmp(status, "guest-panicked") || !strcmp(status, "internal-error"))
        return VM_CRASHED;
    /* a QEMU that answers, of a row that did not know: it runs */
    return row == VM_UNKNOWN ? VM_RUNNING : row;
}
