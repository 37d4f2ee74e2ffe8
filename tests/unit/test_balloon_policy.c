/* test_balloon_policy.c - the balloon policy (sched/balloon_policy.c):
 * reclaim only under host pressure, most-spare guest first, in steps, never
 * below the minimum or the guest's reserve; give back at once to a guest
 * short of memory; drift up with no pressure; hold in between. Also the QMP
 * reply parser's UINT64_MAX ("no figure" in guest-stats). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "agent/sample_msg.h"
#include "compute/qmp.h"
#include "lib/config.h"
#include "lib/procfs.h"
#include "sched/balloon_policy.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

static struct balloon_knobs knobs(void)
{
    struct balloon_knobs k;
    balloon_knobs_default(&k);
    return k;
}

static struct balloon_host host(uint64_t avail)
{
    struct balloon_host h = {.mem_total = 16 * GIB, .mem_available = avail};
    return h;
}

/* an idle 1 GiB guest with a 512 MiB minimum, 800 MiB available */
static struct balloon_vm idle_vm(void)
{
    struct balloon_vm v = {.size = GIB,
                           .min = 512 * MIB,
                           .actual = GIB,
                           .have_stats = true,
                           .guest_free = 800 * MIB,
                           .guest_available = 800 * MIB,
                           .stats_age_s = 1,
                           .since_giveback = 100};
    return v;
}

static void test_pressure_thresholds(void **st)
{
    (void)st;
    struct balloon_knobs k = knobs(); /* host reserve: 10 % of 16 GiB = 1.6 GiB */
    struct balloon_host h = host(1 * GIB);
    assert_int_equal(balloon_host_pressure(&k, &h), 1);
    h.mem_available = 1800 * MIB; /* above the reserve, below reserve + 25 % */
    assert_int_equal(balloon_host_pressure(&k, &h), 0);
    h.mem_available = 8 * GIB;
    assert_int_equal(balloon_host_pressure(&k, &h), -1);
    h.have_psi = true;
    h.psi_some_avg10 = 12.0; /* PSI alone is pressure */
    assert_int_equal(balloon_host_pressure(&k, &h), 1);
    h.psi_some_avg10 = 7.0; /* under the threshold but not under half of it: hold */
    assert_int_equal(balloon_host_pressure(&k, &h), 0);
    k.host_reserve = 64 * GIB; /* the knob a test forces pressure with */
    h.psi_some_avg10 = 0;
    assert_int_equal(balloon_host_pressure(&k, &h), 1);
}

static void test_reclaim_in_steps_to_minimum(void **st)
{
    (void)st;
    struct balloon_knobs k = knobs();
    k.host_reserve = 64 * GIB;
    struct balloon_host h = host(8 * GIB);
    struct balloon_vm v = idle_vm();
    v.guest_available = 2 * GIB; /* plenty: only the minimum and the step bound it */
    struct balloon_decision d;
    int rounds = 0;
    while (rounds < 50) {
        balloon_decide(&k, &h, &v, 1, &d);
        assert_true(d.target >= v.min);
        if (!d.changed)
            break;
        assert_true((v.target ? v.target : v.size) - d.target <= v.size / 10);
        assert_non_null(strstr(d.reason, "reclaim"));
        v.target = v.actual = d.target;
        rounds++;
    }
    assert_int_equal(v.target, 512 * MIB);
    assert_true(rounds >= 5); /* 10 % steps: 1024 -> 512 takes at least five */
    assert_string_equal(d.reason, "host pressure: at minimum");
}

static void test_no_reclaim_without_pressure(void **st)
{
    (void)st;
    struct balloon_knobs k = knobs();
    struct balloon_host h = host(12 * GIB);
    struct balloon_vm v = idle_vm();
    struct balloon_decision d;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_false(d.changed);
    assert_int_equal(d.target, GIB);
    /* ballooned earlier: drifts back up a step a round */
    v.target = v.actual = 600 * MIB;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_true(d.changed);
    assert_true(d.target > 600 * MIB && d.target <= 600 * MIB + GIB / 10);
    assert_string_equal(d.reason, "no host pressure: give back");
    /* between the thresholds: hold */
    h.mem_available = 1800 * MIB;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_false(d.changed);
    assert_int_equal(d.target, 600 * MIB);
}

static void test_guest_reserve_bounds_reclaim(void **st)
{
    (void)st;
    struct balloon_knobs k = knobs();
    k.host_reserve = 64 * GIB;
    k.guest_reserve = 128 * MIB;
    struct balloon_host h = host(8 * GIB);
    struct balloon_vm v = idle_vm();
    v.guest_available = 300 * MIB; /* 300 - (128 reserve + 102 step margin) = 70 to spare */
    struct balloon_decision d;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_true(d.changed);
    assert_true(d.target >= GIB - 70 * MIB && d.target < GIB);
    /* nothing over the reserve and margin: no reclaim */
    v.guest_available = 200 * MIB;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_false(d.changed);
    assert_string_equal(d.reason, "host pressure: guest has no memory to spare");
    /* stale or missing stats: no reclaim on a guess */
    v.guest_available = 900 * MIB;
    v.stats_age_s = 60;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_false(d.changed);
    v.stats_age_s = 1;
    v.have_stats = false;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_false(d.changed);
}

static void test_give_back_at_once(void **st)
{
    (void)st;
    struct balloon_knobs k = knobs();
    k.host_reserve = 64 * GIB; /* even under host pressure */
    struct balloon_host h = host(8 * GIB);
    struct balloon_vm v = idle_vm();
    v.target = v.actual = 512 * MIB;
    v.guest_available = 20 * MIB; /* reserve is 128 MiB (1/8 of 1 GiB) */
    struct balloon_decision d;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_true(d.changed);
    assert_string_equal(d.reason, "guest needs memory: give back");
    /* the whole shortfall and a step in one round */
    assert_true(d.target >= 512 * MIB + (128 - 20) * MIB + GIB / 10 - MIB);
    /* then: no reclaim right after a give-back, although it has room again */
    v.target = v.actual = d.target;
    v.guest_available = 600 * MIB;
    v.since_giveback = 1;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_false(d.changed);
    assert_string_equal(d.reason, "host pressure: given back lately, hold");
    /* never beyond the size */
    v.target = v.actual = GIB - 8 * MIB;
    v.guest_available = 0;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_int_equal(d.target, GIB);
}

static void test_most_spare_first(void **st)
{
    (void)st;
    struct balloon_knobs k = knobs();
    /* a small deficit: 50 MiB, less than one step */
    struct balloon_host h = host(0);
    k.host_reserve = 50 * MIB;
    struct balloon_vm v[3] = {idle_vm(), idle_vm(), idle_vm()};
    v[0].guest_available = 300 * MIB;
    v[1].guest_available = 900 * MIB; /* the idlest */
    v[2].guest_available = 600 * MIB;
    struct balloon_decision d[3];
    balloon_decide(&k, &h, v, 3, d);
    assert_false(d[0].changed);
    assert_true(d[1].changed);
    assert_int_equal(d[1].target, GIB - 50 * MIB);
    assert_false(d[2].changed);
    assert_string_equal(d[2].reason, "host pressure: enough reclaimed from other guests");
}

static void test_no_minimum_never_ballooned(void **st)
{
    (void)st;
    struct balloon_knobs k = knobs();
    k.host_reserve = 64 * GIB;
    struct balloon_host h = host(8 * GIB);
    struct balloon_vm v = idle_vm();
    v.min = v.size;
    struct balloon_decision d;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_false(d.changed);
    assert_int_equal(d.target, GIB);
    /* a target below a minimum raised since is brought up to it */
    v.min = 768 * MIB;
    v.target = v.actual = 512 * MIB;
    balloon_decide(&k, &h, &v, 1, &d);
    assert_true(d.changed);
    assert_int_equal(d.target, 768 * MIB);
}

static void test_qmp_uint64_max(void **st)
{
    (void)st;
    json_t *ret = NULL;
    char err[64];
    const char *line = "{\"return\": {\"stats\": {\"stat-free-memory\": 18446744073709551615, "
                       "\"stat-available-memory\": 123}, \"last-update\": 0}}";
    assert_int_equal(qmp_parse_reply(line, &ret, err, sizeof err), 0);
    json_t *s = json_object_get(ret, "stats");
    assert_int_equal(json_integer_value(json_object_get(s, "stat-free-memory")), -1);
    assert_int_equal(json_integer_value(json_object_get(s, "stat-available-memory")), 123);
    json_decref(ret);
}

static void test_psi_parse(void **st)
{
    (void)st;
    double some, full;
    assert_int_equal(procfs_psi("some avg10=12.50 avg60=3.00 avg300=1.00 total=123\n"
                                "full avg10=2.25 avg60=0.00 avg300=0.00 total=9\n",
                                &some, &full),
                     0);
    assert_true(some > 12.49 && some < 12.51 && full > 2.24 && full < 2.26);
    assert_int_equal(procfs_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", &some, &full),
                     0);
    assert_true(full == 0);
    assert_int_equal(procfs_psi("", &some, &full), -1);
    assert_int_equal(procfs_psi(NULL, &some, &full), -1);
    assert_int_equal(procfs_psi("some avg10=x", &some, &full), -1);
}

static void test_settings(void **st)
{
    (void)st;
    struct yun_config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(c.balloon_policy, 1);
    assert_int_equal(c.balloon_interval_ms, 5000);
    assert_int_equal(config_set(&c, "balloon_policy", "off", err, sizeof err), 0);
    assert_int_equal(c.balloon_policy, 0);
    assert_int_equal(config_set(&c, "balloon_host_reserve", "2G", err, sizeof err), 0);
    assert_int_equal(c.balloon_host_reserve, 2 * GIB);
    assert_int_equal(config_set(&c, "balloon_policy", "yes", err, sizeof err), -1);
    assert_non_null(strstr(err, "not on or off"));
    assert_int_equal(config_set(&c, "balloon_interval_ms", "99", err, sizeof err), -1);
    assert_non_null(strstr(err, "100..600000"));
    assert_int_equal(config_set(&c, "balloon_step_pct", "101", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "balloon_psi_some", "-1", err, sizeof err), -1);
    assert_int_equal(config_set(&c, "balloon_guest_reserve", "2000T", err, sizeof err), -1);
    assert_non_null(strstr(err, "at most 1024T"));
    assert_int_equal(c.balloon_policy, 0); /* nothing half-applied */
}

static void test_sample_carries_the_target(void **st)
{
    (void)st;
    struct vm_counters_raw v = {.vm = "0b1e4b7c-7d3a-4c1e-9c57-2f0e1a7b6c01", .pid = 77};
    v.have_balloon = v.have_balloon_target = true;
    v.balloon = 200 * MIB;
    v.balloon_target = 128 * MIB;
    json_t *j = sample_vm_encode(&v);
    struct vm_counters_raw back;
    struct yerr err = {0};
    assert_int_equal(sample_vm_decode(j, &back, &err), 0);
    assert_true(back.have_balloon_target);
    assert_int_equal(back.balloon_target, 128 * MIB);
    json_object_set_new(j, "balloon_target", json_string("lots"));
    assert_int_equal(sample_vm_decode(j, &back, &err), -1);
    json_decref(j);
    v.have_balloon_target = false; /* not ballooned: absent */
    j = sample_vm_encode(&v);
    assert_null(json_object_get(j, "balloon_target"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pressure_thresholds),
        cmocka_unit_test(test_reclaim_in_steps_to_minimum),
        cmocka_unit_test(test_no_reclaim_without_pressure),
        cmocka_unit_test(test_guest_reserve_bounds_reclaim),
        cmocka_unit_test(test_give_back_at_once),
        cmocka_unit_test(test_most_spare_first),
        cmocka_unit_test(test_no_minimum_never_ballooned),
        cmocka_unit_test(test_qmp_uint64_max),
        cmocka_unit_test(test_psi_parse),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_sample_carries_the_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
