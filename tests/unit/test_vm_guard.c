/*
 * test_vm_guard.c - unit tests for vm_guard.c: the rate limit on identical
 * events (burst, window, summaries, eviction) and reset-loop detection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "compute/vm_guard.h"

static void test_burst_then_suppressed(void **state)
{
    struct vm_guard g;
    memset(&g, 0, sizeof(g));
    struct guard_summary sum;
    int recorded = 0;
    /* 20 identical events in 2 s: the first GUARD_BURST are recorded */
    for (int i = 0; i < 20; i++) {
        recorded += vm_guard_admit(&g, "qmp:reset (guest-reset)", 1000 + i * 100, &sum);
        assert_int_equal(sum.suppressed, 0);
    }
    assert_int_equal(recorded, GUARD_BURST);
    /* another kind is not held back by the first */
    assert_true(vm_guard_admit(&g, "qmp:stop", 2000, &sum));
    /* nothing expires before the window is over */
    assert_false(vm_guard_expire(&g, 1000 + GUARD_WINDOW_MS - 1, &sum));
    /* the next event after the window: a summary of the 15, and it is recorded */
    assert_true(vm_guard_admit(&g, "qmp:reset (guest-reset)", 1000 + GUARD_WINDOW_MS, &sum));
    assert_int_equal(sum.suppressed, 15);
    assert_string_equal(sum.key, "qmp:reset (guest-reset)");
    /* and a new window began with it */
    for (int i = 1; i < GUARD_BURST; i++)
        assert_true(
            vm_guard_admit(&g, "qmp:reset (guest-reset)", 1000 + GUARD_WINDOW_MS + i, &sum));
    assert_false(vm_guard_admit(&g, "qmp:reset (guest-reset)", 1000 + GUARD_WINDOW_MS + 9, &sum));
}

static void test_expire_reports_once(void **state)
{
    struct vm_guard g;
    memset(&g, 0, sizeof(g));
    struct guard_summary sum;
    for (int i = 0; i < GUARD_BURST + 3; i++)
        vm_guard_admit(&g, "a", 0, &sum);
    for (int i = 0; i < GUARD_BURST; i++)
        vm_guard_admit(&g, "b", 0, &sum); /* none held back */
    assert_true(vm_guard_expire(&g, GUARD_WINDOW_MS, &sum));
    assert_string_equal(sum.key, "a");
    assert_int_equal(sum.suppressed, 3);
    /* "b" had nothing to report; both slots are free now */
    assert_false(vm_guard_expire(&g, GUARD_WINDOW_MS, &sum));
    assert_false(vm_guard_expire(&g, 10 * GUARD_WINDOW_MS, &sum));
    for (int i = 0; i < GUARD_SLOTS; i++)
        assert_int_equal(g.slots[i].key[0], 0);
    /* a quiet stream is never held back */
    for (int i = 0; i < 100; i++)
        assert_true(vm_guard_admit(&g, "a", (int64_t)i * 3000, &sum));
}

static void test_eviction_keeps_counts(void **state)
{
    struct vm_guard g;
    memset(&g, 0, sizeof(g));
    struct guard_summary sum;
    for (int i = 0; i < GUARD_BURST + 2; i++)
        vm_guard_admit(&g, "first", 0, &sum);
    char key[16];
    for (int k = 1; k < GUARD_SLOTS; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        assert_true(vm_guard_admit(&g, key, k, &sum));
        assert_int_equal(sum.suppressed, 0);
    }
    /* full: a new kind evicts the oldest window, which reports its count */
    assert_true(vm_guard_admit(&g, "new", 100, &sum));
    assert_string_equal(sum.key, "first");
    assert_int_equal(sum.suppressed, 2);
}

static void test_clock_backwards_ends_window(void **state)
{
    struct vm_guard g;
    memset(&g, 0, sizeof(g));
    struct guard_summary sum;
    for (int i = 0; i < GUARD_BURST + 1; i++)
        vm_guard_admit(&g, "a", 50000, &sum);
    assert_true(vm_guard_admit(&g, "a", 100, &sum));
    assert_int_equal(sum.suppressed, 1);
}

static void test_reset_loop(void **state)
{
    struct vm_guard g;
    memset(&g, 0, sizeof(g));
    /* 5 guest resets within 60 s */
    for (int i = 0; i < 4; i++)
        assert_false(vm_guard_reset(&g, 1000 + i * 200, 5, 60000));
    assert_true(vm_guard_reset(&g, 1800 + 200, 5, 60000));
    vm_guard_reset_clear(&g);
    /* a guest that reboots now and then never trips */
    for (int i = 0; i < 200; i++)
        assert_false(vm_guard_reset(&g, (int64_t)i * 20000, 5, 60000));
    /* the window slides: 4 quick ones after 2 old ones are not 5 in a window */
    vm_guard_reset_clear(&g);
    assert_false(vm_guard_reset(&g, 0, 5, 60000));
    assert_false(vm_guard_reset(&g, 1000, 5, 60000));
    for (int i = 0; i < 3; i++)
        assert_false(vm_guard_reset(&g, 100000 + i, 5, 60000));
    assert_true(vm_guard_reset(&g, 100003, 5, 60000) == false);
    assert_true(vm_guard_reset(&g, 100004, 5, 60000));
    /* off, or an impossible count */
    vm_guard_reset_clear(&g);
    for (int i = 0; i < 100; i++) {
        assert_false(vm_guard_reset(&g, i, 0, 60000));
        assert_false(vm_guard_reset(&g, i, GUARD_RESETS_MAX + 1, 60000));
    }
    /* the ring holds the largest count allowed */
    vm_guard_reset_clear(&g);
    for (int i = 0; i < GUARD_RESETS_MAX - 1; i++)
        assert_false(vm_guard_reset(&g, i, GUARD_RESETS_MAX, 60000));
    assert_true(vm_guard_reset(&g, GUARD_RESETS_MAX, GUARD_RESETS_MAX, 60000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_suppressed),
        cmocka_unit_test(test_expire_reports_once),
        cmocka_unit_test(test_eviction_keeps_counts),
        cmocka_unit_test(test_clock_backwards_ends_window),
        cmocka_unit_test(test_reset_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
