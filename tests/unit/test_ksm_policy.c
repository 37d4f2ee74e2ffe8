/* test_ksm_policy.c - the KSM controller's pure decision (agent/ksm_policy.c):
 * pressure starts it and scans harder, relief stops it, a KSM that costs
 * more than it saves goes off and stays off for the hold-off, `on` forces
 * the defaults, `off` decides nothing; and the sysfs / PSI parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/ksm_policy.h"

#define GIB (1ULL << 30)

static const struct ksm_tuning AUTO = {KSM_AUTO, 20.0, 10.0, 256ULL << 20};

static struct ksm_input host(uint64_t avail_gib)
{
    return (struct ksm_input){
        .mem_total = 16 * GIB, .mem_available = avail_gib * GIB, .page_size = 4096};
}

static void test_modes(void **unused)
{
    (void)unused;
    struct ksm_state st = {0};
    struct ksm_decision d;
    struct ksm_input in = host(15);
    struct ksm_tuning t = AUTO;
    t.mode = KSM_OFF;
    ksm_decide(&t, &in, &st, &d);
    assert_int_equal(d.run, -1);
    assert_false(d.changed);
    assert_false(st.valid);
    t.mode = KSM_ON;
    ksm_decide(&t, &in, &st, &d);
    assert_int_equal(d.run, 1);
    assert_true(d.changed);
    assert_int_equal(d.pages_to_scan, KSM_DEFAULT_PAGES);
    assert_int_equal(d.sleep_ms, KSM_DEFAULT_SLEEP);
    ksm_decide(&t, &in, &st, &d);
    assert_false(d.changed); /* the same decision: nothing to write */
    enum ksm_mode m;
    assert_int_equal(ksm_mode_parse("auto", &m), 0);
    assert_int_equal(m, KSM_AUTO);
    assert_int_equal(ksm_mode_parse("On", &m), -1);
    assert_string_equal(ksm_mode_name(KSM_OFF), "off");
}

static void test_pressure_starts_and_relief_stops(void **unused)
{
    (void)unused;
    struct ksm_state st = {0};
    struct ksm_decision d;
    struct ksm_input in = host(12); /* 75 % free */
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 0);
    assert_true(d.changed); /* the first decision is written */
    ksm_decide(&AUTO, &in, &st, &d);
    assert_false(d.changed);

    in = host(3); /* 18.75 % free: just under 20 */
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
    assert_true(d.changed);
    unsigned mild = d.pages_to_scan;
    assert_true(mild > KSM_DEFAULT_PAGES && mild < KSM_MAX_PAGES);

    in = host(0); /* nothing free: the hardest scan */
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
    assert_true(d.changed);
    assert_int_equal(d.pages_to_scan, KSM_MAX_PAGES);
    assert_int_equal(d.sleep_ms, KSM_MIN_SLEEP);

    in = host(4); /* 25 %: above the threshold but inside the margin: stays on */
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
    in = host(5); /* 31 %: relieved */
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 0);
    assert_true(d.changed);
    assert_string_equal(d.reason, "no memory pressure");
}

static void test_psi_starts_it(void **unused)
{
    (void)unused;
    struct ksm_state st = {0};
    struct ksm_decision d;
    struct ksm_input in = host(12);
    in.have_psi = true;
    in.psi_some_avg10 = 12.0;
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
    in.psi_some_avg10 = 6.0; /* over half the threshold: not relieved yet */
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
    in.psi_some_avg10 = 1.0;
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 0);
}

static void test_costly_goes_off_with_holdoff(void **unused)
{
    (void)unused;
    struct ksm_state st = {0};
    struct ksm_decision d;
    struct ksm_input in = host(1);
    in.full_scans = 7;
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
    /* ksmd at 50 % of a CPU saving 4 MiB: 8 MiB per CPU-second < 256 MiB */
    in.have_cpu = true;
    in.ksmd_cpu = 0.5;
    in.pages_sharing = 1024;
    /* no full scan since it started: not judged */
    for (int i = 0; i < 5; i++) {
        ksm_decide(&AUTO, &in, &st, &d);
        assert_int_equal(d.run, 1);
    }
    in.full_scans = 8;
    for (int i = 0; i < KSM_COSTLY_TICKS - 1; i++) {
        ksm_decide(&AUTO, &in, &st, &d);
        assert_int_equal(d.run, 1);
    }
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 0);
    assert_true(d.changed);
    assert_string_equal(d.reason, "it costs more CPU than it saves");
    /* the pressure is still there, but the hold-off keeps it off */
    in.have_cpu = false;
    for (int i = 0; i < KSM_HOLDOFF_TICKS; i++) {
        ksm_decide(&AUTO, &in, &st, &d);
        assert_int_equal(d.run, 0);
        assert_false(d.changed);
    }
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
}

static void test_worth_it_stays_on(void **unused)
{
    (void)unused;
    struct ksm_state st = {0};
    struct ksm_decision d;
    struct ksm_input in = host(1);
    ksm_decide(&AUTO, &in, &st, &d);
    in.full_scans = 3;
    in.have_cpu = true;
    in.ksmd_cpu = 0.1;
    in.pages_sharing = 1ULL << 18; /* 1 GiB saved at 10 % of a CPU: 10 GiB per CPU-second */
    assert_true(ksm_saved_bytes(&in) == GIB);
    for (int i = 0; i < 10; i++) {
        ksm_decide(&AUTO, &in, &st, &d);
        assert_int_equal(d.run, 1);
    }
    /* one cheap blip between costly ones resets the count */
    in.pages_sharing = 1;
    ksm_decide(&AUTO, &in, &st, &d);
    ksm_decide(&AUTO, &in, &st, &d);
    in.pages_sharing = 1ULL << 18;
    ksm_decide(&AUTO, &in, &st, &d);
    in.pages_sharing = 1;
    ksm_decide(&AUTO, &in, &st, &d);
    ksm_decide(&AUTO, &in, &st, &d);
    assert_int_equal(d.run, 1);
}

static void test_parsers(void **unused)
{
    (void)unused;
    double v = -1;
    assert_int_equal(ksm_parse_psi("some avg10=1.25 avg60=0.00 avg300=0.00 total=9\n"
                                   "full avg10=0.50 avg60=0.00 avg300=0.00 total=3\n",
                                   &v),
                     0);
    assert_true(v == 1.25);
    assert_int_equal(ksm_parse_psi("full avg10=0.50\n", &v), -1);
    assert_int_equal(ksm_parse_psi("some avg10=abc\n", &v), -1);
    assert_int_equal(ksm_parse_psi("some avg10=101.0 avg60=0\n", &v), -1);
    assert_int_equal(ksm_parse_psi(NULL, &v), -1);
    uint64_t u = 0;
    assert_int_equal(ksm_parse_counter("12345\n", &u), 0);
    assert_true(u == 12345);
    assert_int_equal(ksm_parse_counter("-1\n", &u), -1);
    assert_int_equal(ksm_parse_counter("12 3\n", &u), -1);
    assert_int_equal(ksm_parse_counter("", &u), -1);
    assert_int_equal(ksm_parse_counter("99999999999999999999999\n", &u), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_pressure_starts_and_relief_stops),
        cmocka_unit_test(test_psi_starts_it),
        cmocka_unit_test(test_costly_goes_off_with_holdoff),
        cmocka_unit_test(test_worth_it_stays_on),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
