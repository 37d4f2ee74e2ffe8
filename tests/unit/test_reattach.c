/*
 * test_reattach.c - a re-attach's status -> state mapping as a full table
 * of row state x QEMU status, and which of them are interrupted starts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ctl/reattach.h"

static const char *statuses[] = {"running",   "paused",         "suspended",
                                 "shutdown",  "guest-panicked", "internal-error",
                                 "prelaunch", "inmigrate",      "debug"};
#define NSTATUS (sizeof statuses / sizeof statuses[0])

/* The rows a re-attach sees (creating and deleting never get one). */
static const enum vm_state rows[] = {VM_STOPPED,  VM_STARTING, VM_RUNNING, VM_PAUSED,
                                     VM_STOPPING, VM_CRASHED,  VM_UNKNOWN};
#define NROW (sizeof rows / sizeof rows[0])

static void test_table(void **state)
{
    (void)state;
    enum {
        S = VM_STOPPED,
        G = VM_STARTING,
        R = VM_RUNNING,
        P = VM_PAUSED,
        T = VM_STOPPING,
        C = VM_CRASHED
    };
    /* expected[row][status], statuses in the order above */
    static const int expected[NROW][NSTATUS] = {
        /*              run pau sus shu pan int pre inm dbg */
        /* stopped  */ {R, P, P, T, C, C, P, S, S},
        /* starting */ {G, G, G, G, G, G, P, G, G},
        /* running  */ {R, P, P, T, C, C, P, R, R},
        /* paused   */ {R, P, P, T, C, C, P, P, P},
        /* stopping */ {T, T, T, T, C, C, P, T, T},
        /* crashed  */ {R, P, P, T, C, C, P, C, C},
        /* unknown  */ {R, P, P, T, C, C, P, R, R},
    };
    for (size_t r = 0; r < NROW; r++)
        for (size_t s = 0; s < NSTATUS; s++) {
            enum vm_state got = vm_reattach_state(rows[r], statuses[s]);
            if ((int)got != expected[r][s])
                fail_msg("row %s status %s: got %s, want %s", vm_state_name(rows[r]), statuses[s],
                         vm_state_name(got), vm_state_name((enum vm_state)expected[r][s]));
        }
}

static void test_interrupted(void **state)
{
    (void)state;
    for (size_t r = 0; r < NROW; r++)
        for (size_t s = 0; s < NSTATUS; s++) {
            bool want = rows[r] == VM_STARTING || !strcmp(statuses[s], "prelaunch");
            assert_int_equal(vm_reattach_interrupted(rows[r], statuses[s]), want);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_interrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
