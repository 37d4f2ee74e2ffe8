/*
 * test_snapstate.c - the snapshot state machine as a full state x event
 * table, and the state names' round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "ctl/snapstate.h"

static void test_table(void **state)
{
    (void)state;
    /* expected[state][event]: -1 refused, -2 the row goes, else the new state */
    enum { R = -1, G = -2 };
    static const int expected[SNAP_STATE_COUNT][SNAP_EV_COUNT] = {
        /*              switched    rolled-back delete         merged merge-failed revert */
        [SNAP_CREATING] = {SNAP_READY, G, R, R, R, R},
        [SNAP_READY] = {R, R, SNAP_DELETING, R, R, SNAP_READY},
        [SNAP_DELETING] = {R, R, R, G, SNAP_READY, R},
    };
    for (int s = 0; s < SNAP_STATE_COUNT; s++)
        for (int ev = 0; ev < SNAP_EV_COUNT; ev++) {
            enum snap_state to = SNAP_STATE_COUNT;
            enum snap_step step = snap_transition((enum snap_state)s, (enum snap_event)ev, &to);
            int got = step == SNAP_STEP_REFUSED ? R : step == SNAP_STEP_GONE ? G : (int)to;
            if (got != expected[s][ev])
                fail_msg("state %s event %s: got %d, want %d", snap_state_name((enum snap_state)s),
                         snap_event_name((enum snap_event)ev), got, expected[s][ev]);
            if (step != SNAP_STEP_STATE)
                assert_int_equal(to, SNAP_STATE_COUNT); /* untouched */
        }
    /* out of range refuses */
    assert_int_equal(snap_transition(SNAP_STATE_COUNT, SNAP_EV_SWITCHED, NULL), SNAP_STEP_REFUSED);
    assert_int_equal(snap_transition(SNAP_READY, SNAP_EV_COUNT, NULL), SNAP_STEP_REFUSED);
}

static void test_settled_and_names(void **state)
{
    (void)state;
    assert_true(snap_state_settled(SNAP_READY));
    assert_false(snap_state_settled(SNAP_CREATING));
    assert_false(snap_state_settled(SNAP_DELETING));
    for (int s = 0; s < SNAP_STATE_COUNT; s++) {
        enum snap_state back;
        assert_int_equal(snap_state_parse(snap_state_name((enum snap_state)s), &back), 0);
        assert_int_equal(back, s);
    }
    assert_string_equal(snap_state_name(SNAP_DELETING), "deleting");
    assert_string_equal(snap_state_name(SNAP_STATE_COUNT), "unknown");
    enum snap_state x = SNAP_READY;
    assert_int_equal(snap_state_parse("Ready", &x), -1);
    assert_int_equal(snap_state_parse(NULL, &x), -1);
    assert_int_equal(x, SNAP_READY);
    assert_string_equal(snap_event_name(SNAP_EV_MERGED), "merged");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_settled_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
