/* test_sched_weighers.c - every placement policy picks the host a hand
 * calculation says it should, and seeded randomness is reproducible. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>

#include "sched/sched.h"

/* three 4-core x 1000 MIPS hosts carrying 1000, 3000 and 2000 MIPS of VMs */
static void setup3(sched_model *m)
{
    sched_model_init(m);
    for (int i = 0; i < 3; i++) {
        sched_host h;
        sched_host_defaults(&h);
        snprintf(h.name, sizeof(h.name), "h%d", i);
        h.cores = 4;
        h.core_mips = 1000;
        h.ram_mb = 65536;
        sched_model_add_host(m, &h);
    }
    const double load[3] = {1000, 3000, 2000};
    for (int i = 0; i < 3; i++) {
        sched_vm v;
        sched_vm_defaults(&v);
        v.mips = load[i];
        v.vcpus = 2;
        v.req_mips = load[i] / 2;
        int k = sched_model_add_vm(m, &v);
        sched_model_attach(m, k, i);
        m->hosts[i].util_mips = load[i] / 2; /* measured use: half the nominal size */
    }
}

static int new_vm(sched_model *m, double mips)
{
    sched_vm v;
    sched_vm_defaults(&v);
    v.mips = mips;
    v.req_mips = mips;
    return sched_model_add_vm(m, &v);
}

static int place(sched_model *m, int v, sched_policy p, sched_rng *rng)
{
    sched_place_opts o = {.policy = p, .rng = rng};
    return sched_place(m, v, &o, NULL);
}

static void test_pack_spread_firstfit(void **state)
{
    (void)state;
    sched_model m;
    setup3(&m);
    int v = new_vm(&m, 500);
    assert_int_equal(place(&m, v, SCHED_POL_PACK, NULL), 1);   /* 3500/4000 fullest */
    assert_int_equal(place(&m, v, SCHED_POL_SPREAD, NULL), 0); /* 1500/4000 emptiest */
    assert_int_equal(place(&m, v, SCHED_POL_FIRST_FIT, NULL), 0);
    /* 1500 MIPS no longer fits host 1 (3000 + 1500 > 4000): pack moves to host 2 */
    int w = new_vm(&m, 1500);
    assert_int_equal(place(&m, w, SCHED_POL_PACK, NULL), 2);
    /* the pack score is the CPU fraction after placement: (2000 + 1500) / 4000 */
    assert_true(fabs(sched_weigh_host(&m, 2, &m.vms[w], SCHED_POL_PACK, false) - 0.875) < 1e-12);
    sched_model_free(&m);
}

static void test_round_robin_and_random(void **state)
{
    (void)state;
    sched_model m;
    setup3(&m);
    int v = new_vm(&m, 100);
    int seq[4];
    for (int i = 0; i < 4; i++)
        seq[i] = place(&m, v, SCHED_POL_ROUND_ROBIN, NULL);
    assert_int_equal(seq[0], 0);
    assert_int_equal(seq[1], 1);
    assert_int_equal(seq[2], 2);
    assert_int_equal(seq[3], 0);
    sched_rng a, b;
    sched_rng_seed(&a, 42);
    sched_rng_seed(&b, 42);
    int hits[3] = {0};
    for (int i = 0; i < 300; i++) {
        int x = place(&m, v, SCHED_POL_RANDOM, &a), y = place(&m, v, SCHED_POL_RANDOM, &b);
        assert_int_equal(x, y); /* same seed, same choices */
        hits[x]++;
    }
    for (int i = 0; i < 3; i++)
        assert_true(hits[i] > 50); /* and every host gets picked */
    sched_model_free(&m);
}

static void test_load_and_power_aware(void **state)
{
    (void)state;
    sched_model m;
    setup3(&m);
    int v = new_vm(&m, 400);
    /* measured use 500, 1500, 1000: least loaded is host 0 */
    assert_int_equal(place(&m, v, SCHED_POL_LOAD_AWARE, NULL), 0);
    /* power: host 0 100..200 W linear (10 W per 10 %), host 2 flat 150 W, host 1
     * 100..300 W; adding 400 MIPS = 10 %: +10 W, +0 W, +20 W -> host 2 */
    for (int i = 0; i < SCHED_POWER_PTS; i++) {
        m.hosts[0].power.watts[i] = 100 + 10 * i;
        m.hosts[1].power.watts[i] = 100 + 20 * i;
        m.hosts[2].power.watts[i] = 150;
    }
    assert_int_equal(place(&m, v, SCHED_POL_POWER_AWARE, NULL), 2);
    assert_true(fabs(sched_weigh_host(&m, 0, &m.vms[v], SCHED_POL_POWER_AWARE, false) + 10) < 1e-9);
    assert_true(fabs(sched_weigh_host(&m, 1, &m.vms[v], SCHED_POL_POWER_AWARE, false) + 20) < 1e-9);
    sched_model_free(&m);
}

static void test_soft_anti_affinity(void **state)
{
    (void)state;
    sched_model m;
    setup3(&m);
    sched_group g = {.kind = SCHED_GROUP_ANTI_AFFINITY, .hard = false};
    int gi = sched_model_add_group(&m, &g);
    m.vms[1].group = gi; /* a group member sits on host 1, the pack favourite */
    int v = new_vm(&m, 500);
    m.vms[v].group = gi;
    assert_int_equal(place(&m, v, SCHED_POL_PACK, NULL), 2); /* next fullest instead */
    sched_model_free(&m);
}

/* load-aware counts the predicted vCPU wait: at about the same load a host
 * of 8 cores queues far less than one of 2 (Erlang C), so it wins though it
 * is slightly busier */
static void test_load_aware_predicted_wait(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    const int cores[2] = {2, 8};
    const double util[2] = {1000, 4380}; /* 0.55 and 0.56 of capacity after +100 */
    for (int i = 0; i < 2; i++) {
        sched_host h;
        sched_host_defaults(&h);
        snprintf(h.name, sizeof(h.name), "h%d", i);
        h.cores = cores[i];
        h.core_mips = 1000;
        h.ram_mb = 65536;
        sched_model_add_host(&m, &h);
        m.hosts[i].util_mips = util[i];
    }
    int v = new_vm(&m, 100);
    assert_int_equal(place(&m, v, SCHED_POL_LOAD_AWARE, NULL), 1);
    double s0 = sched_weigh_host(&m, 0, &m.vms[v], SCHED_POL_LOAD_AWARE, false);
    assert_true(fabs(s0 + 0.55 + sched_mmc_wait_ratio(2, 1.1)) < 1e-9);
    sched_model_free(&m);
}

static void test_power_model_interpolation(void **state)
{
    (void)state;
    sched_power p;
    for (int i = 0; i < SCHED_POWER_PTS; i++)
        p.watts[i] = 86 + i; /* 86..96 */
    assert_true(fabs(sched_power_at(&p, 0) - 86) < 1e-12);
    assert_true(fabs(sched_power_at(&p, 0.25) - 88.5) < 1e-12);
    assert_true(fabs(sched_power_at(&p, 1) - 96) < 1e-12);
    assert_true(fabs(sched_power_at(&p, 1.5) - 96) < 1e-12);
}

static void test_place_all_and_limit(void **state)
{
    (void)state;
    sched_model m;
    setup3(&m);
    for (int i = 0; i < 6; i++)
        new_vm(&m, 300);
    sched_place_opts o = {.policy = SCHED_POL_SPREAD};
    assert_int_equal(sched_place_all(&m, &o), 0);
    /* spread always takes the emptiest: loads 1000/3000/2000, then 300 each to
     * h0 (1300, 1600, 1900, 2200), h2 (2300), h0 (2500) */
    assert_true(fabs(m.hosts[0].vcpu_mips - 2500) < 1e-9);
    assert_true(fabs(m.hosts[1].vcpu_mips - 3000) < 1e-9);
    assert_true(fabs(m.hosts[2].vcpu_mips - 2300) < 1e-9);
    /* with a score limit of 1 the scan stops at the first host that passes */
    int v = new_vm(&m, 100);
    sched_explain ex = {0};
    sched_place_opts lim = {.policy = SCHED_POL_PACK, .score_limit = 1};
    assert_true(sched_place(&m, v, &lim, &ex) >= 0);
    assert_int_equal(ex.passed, 1);
    sched_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_spread_firstfit),
        cmocka_unit_test(test_round_robin_and_random),
        cmocka_unit_test(test_load_and_power_aware),
        cmocka_unit_test(test_load_aware_predicted_wait),
        cmocka_unit_test(test_soft_anti_affinity),
        cmocka_unit_test(test_power_model_interpolation),
        cmocka_unit_test(test_place_all_and_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
