/* test_volstate.c - the volume state machine: every state x event pair
 * against a table written out here, names that parse back, and the
 * settled/transient sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "storage/volstate.h"

#define X VOL_STATE_COUNT /* not allowed */

static void test_table(void **s)
{
    (void)s;
    /* columns: created attach_live attach_offline plugged plug_failed unplug_live unplugged
     * unplug_failed detach_offline vm_gone delete */
    static const enum vol_state want[VOL_STATE_COUNT][VEV_COUNT] = {
        [VOL_CREATING] = {VOL_READY, X, X, X, X, X, X, X, X, X, VOL_DELETING},
        [VOL_READY] = {X, VOL_ATTACHING, VOL_ATTACHED, X, X, X, X, X, X, X, VOL_DELETING},
        [VOL_ATTACHING] = {X, X, X, VOL_ATTACHED, VOL_READY, X, X, X, X, VOL_READY, X},
        [VOL_ATTACHED] = {X, X, X, X, X, VOL_DETACHING, X, X, VOL_READY, VOL_READY, X},
        [VOL_DETACHING] = {X, X, X, X, X, X, VOL_READY, VOL_ATTACHED, X, VOL_READY, X},
        [VOL_DELETING] = {X, X, X, X, X, X, X, X, X, X, X},
    };
    for (int st = 0; st < VOL_STATE_COUNT; st++)
        for (int ev = 0; ev < VEV_COUNT; ev++) {
            enum vol_state out = X;
            int rc = vol_state_next((enum vol_state)st, (enum vol_event)ev, &out);
            if (want[st][ev] == X) {
                assert_int_equal(rc, -1);
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(out, want[st][ev]);
                assert_true(vol_state_can((enum vol_state)st, out));
            }
        }
    enum vol_state o;
    assert_int_equal(vol_state_next(VOL_STATE_COUNT, VEV_CREATED, &o), -1);
    assert_int_equal(vol_state_next(VOL_READY, VEV_COUNT, &o), -1);
    assert_false(vol_state_can(VOL_DELETING, VOL_READY));
    assert_false(vol_state_can(VOL_CREATING, VOL_ATTACHED));
}

static void test_names_and_sets(void **s)
{
    (void)s;
    for (int st = 0; st < VOL_STATE_COUNT; st++) {
        enum vol_state back;
        assert_int_equal(vol_state_parse(vol_state_name((enum vol_state)st), &back), 0);
        assert_int_equal(back, st);
        assert_int_equal(vol_state_settled((enum vol_state)st),
                         st == VOL_READY || st == VOL_ATTACHED);
        assert_int_equal(vol_state_transient((enum vol_state)st),
                         st == VOL_CREATING || st == VOL_DELETING);
    }
    enum vol_state back;
    assert_int_equal(vol_state_parse("attaced", &back), -1);
    assert_int_equal(vol_state_parse(NULL, &back), -1);
    assert_string_equal(vol_state_name(VOL_STATE_COUNT), "unknown");
    for (int ev = 0; ev < VEV_COUNT; ev++)
        assert_string_not_equal(vol_event_name((enum vol_event)ev), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_names_and_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
