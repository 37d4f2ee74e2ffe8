/*
 * reattach.h - what a re-attach makes of a VM's row: QEMU's run state
 * (query-status) and the row's state give the row's new state. Pure,
 * table-tested (tests/unit/test_reattach.c); the pass that asks is
 * ctl/vms_reconcile.c.
 */
#ifndef YUN_CTL_REATTACH_H
#define YUN_CTL_REATTACH_H

#include <stdbool.h>

#include "store/records.h"

/* A start yund did not finish: QEMU still in prelaunch, or the row says
 * starting. The controller then ends QEMU (the VM is to be stopped) or
 * lets the guest run (cont) before the row moves on. */
bool vm_reattach_interrupted(enum vm_state row, const char *status);

/* The row's state for QEMU in status (an interrupted start that was not
 * continued: paused when in prelaunch, else as it was). A graceful stop in
 * progress stays one while the guest runs or is paused. */
enum vm_state vm_reattach_state(enum vm_state row, const char *status);

#endif
