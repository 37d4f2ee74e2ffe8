/* test_sched_consolidate.c - consolidation rounds on hand-sized data centres:
 * overload shedding, underload draining, its failure and threshold, CloudSim's
 * leaky exclusion, determinism; and ILP vs first-fit-decreasing on cases whose
 * optimum is known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "sched/sched.h"

/* n hosts of 1 core x 1000 MIPS, 100..200 W linear (10 W per 10 %) */
static void hosts(sched_model *m, int n)
{
    sched_model_init(m);
    for (int i = 0; i < n; i++) {
        sched_host h;
        sched_host_defaults(&h);
        h.cores = 1;
        h.core_mips = 1000;
        h.ram_mb = 1 << 20;
        h.bw_mbps = 1000;
        sched_model_add_host(m, &h);
    }
}

static int vm_on(sched_model *m, int host, double req, double ram)
{
    sched_vm v;
    sched_vm_defaults(&v);
    v.mips = 1000;
    v.req_mips = req;
    v.ram_mb = ram;
    int k = sched_model_add_vm(m, &v);
    sched_model_attach(m, k, host);
    m->hosts[host].util_mips += req; /* what the last observation measured */
    return k;
}

static sched_consol_opts thr(double t)
{
    sched_consol_opts o;
    sched_consol_defaults(&o);
    o.det = SCHED_DET_THR;
    o.param = t;
    o.sel = SCHED_SEL_MMT;
    return o;
}

static void test_overload_sheds_mmt_vm(void **state)
{
    (void)state;
    sched_model m;
    hosts(&m, 3);
    vm_on(&m, 0, 500, 1000);
    int b = vm_on(&m, 0, 400, 500); /* 0.9 > 0.8; MMT takes the 500 MB VM */
    vm_on(&m, 1, 300, 100);
    sched_consol_opts o = thr(0.8);
    sched_plan p = {0};
    assert_int_equal(sched_consolidate(&m, &o, &p), 0);
    assert_int_equal(p.overloaded, 1);
    /* host 1: P(0.7) - P(0.3) = 40 W; empty host 2: P(0.4) - P(0) = 40 W; the tie
     * goes to the lower index. Host 1 then cannot be drained (it received a VM). */
    assert_int_equal(p.n, 1);
    assert_int_equal(p.moves[0].vm, b);
    assert_int_equal(p.moves[0].from, 0);
    assert_int_equal(p.moves[0].to, 1);
    /* planning leaves the model as it was */
    assert_int_equal(m.hosts[0].nvms, 2);
    assert_int_equal(m.hosts[1].nvms, 1);
    assert_int_equal(m.vms[b].host, 0);
    sched_plan_free(&p);
    sched_model_free(&m);
}

static void test_underload_drain(void **state)
{
    (void)state;
    sched_model m;
    hosts(&m, 3);
    int a = vm_on(&m, 0, 200, 100);
    vm_on(&m, 1, 500, 100);
    sched_consol_opts o = thr(0.8);
    sched_plan p = {0};
    assert_int_equal(sched_consolidate(&m, &o, &p), 0);
    assert_int_equal(p.n, 1); /* the 0.2 host empties into the 0.5 host (0.7 <= 0.8) */
    assert_int_equal(p.moves[0].vm, a);
    assert_int_equal(p.moves[0].to, 1);
    assert_int_equal(p.underloaded_drained, 1);
    sched_plan_free(&p);
    /* only hosts below the underload threshold are drained */
    o.underload_thr = 0.1;
    assert_int_equal(sched_consolidate(&m, &o, &p), 0);
    assert_int_equal(p.n, 0);
    sched_plan_free(&p);
    sched_model_free(&m);
}

static void test_underload_drain_fails(void **state)
{
    (void)state;
    sched_model m;
    hosts(&m, 3);
    vm_on(&m, 0, 200, 100);
    vm_on(&m, 1, 700, 100); /* 0.9 after: would overload; host 2 is off */
    sched_consol_opts o = thr(0.8);
    sched_plan p = {0};
    assert_int_equal(sched_consolidate(&m, &o, &p), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.underloaded_drained, 0);
    sched_plan_free(&p);
    sched_model_free(&m);
}

static void test_cloudsim_leaky_exclusion(void **state)
{
    (void)state;
    sched_model m;
    hosts(&m, 4);
    vm_on(&m, 0, 500, 1000);
    int b = vm_on(&m, 0, 400, 500);
    int c = vm_on(&m, 1, 100, 100);
    vm_on(&m, 2, 300, 100);
    sched_consol_opts o = thr(0.8);
    o.stale_util = o.leaky_exclusion = true;
    sched_plan p = {0};
    assert_int_equal(sched_consolidate(&m, &o, &p), 0);
    /* b: 0 -> 1 (40 W ties, lowest index); host 1 (measured 0.1) is then drained
     * with b still listed on it: b (400) and c (100) go to host 2, the only
     * candidate (0.3 -> 0.8, not > 0.8) */
    assert_int_equal(p.n, 3);
    assert_int_equal(p.moves[0].vm, b);
    assert_int_equal(p.moves[0].to, 1);
    assert_int_equal(p.moves[1].vm, b);
    assert_int_equal(p.moves[1].from, 1);
    assert_int_equal(p.moves[1].to, 2);
    assert_int_equal(p.moves[2].vm, c);
    assert_int_equal(p.moves[2].to, 2);
    sched_plan_free(&p);
    sched_model_free(&m);
}

static void test_cloudsim_pabfd_arithmetic(void **state)
{
    (void)state;
    sched_model m;
    hosts(&m, 2);
    /* host 1 was measured at 600 MIPS, but only a 200-MIPS VM is listed on it now
     * (the others left in this round); host 0 is empty */
    vm_on(&m, 1, 200, 100);
    m.hosts[1].util_mips = 600;
    sched_vm x;
    sched_vm_defaults(&x);
    x.mips = 1000;
    x.req_mips = 300;
    int v = sched_model_add_vm(&m, &x);
    sched_consol_opts o = thr(0.8);
    /* yun: host 1 goes 0.6 -> 0.9 (+30 W), host 0 0 -> 0.3 (+30 W): tie, lowest index */
    assert_int_equal(sched_pabfd_host(&m, v, NULL, &o), 0);
    /* CloudSim: power now from the measurement (0.6), power after from the listed
     * allocation (0.2 + 0.3): -10 W, so host 1 wins */
    o.stale_util = true;
    assert_int_equal(sched_pabfd_host(&m, v, NULL, &o), 1);
    sched_model_free(&m);
}

static void test_deterministic_with_seed(void **state)
{
    (void)state;
    sched_plan p[2] = {{0}, {0}};
    for (int run = 0; run < 2; run++) {
        sched_model m;
        hosts(&m, 6);
        for (int i = 0; i < 12; i++)
            vm_on(&m, i % 3, 150 + 25 * (i % 5), 100 + i);
        sched_rng r;
        sched_rng_seed(&r, 99);
        sched_consol_opts o = thr(0.5);
        o.sel = SCHED_SEL_RS;
        o.rng = &r;
        assert_int_equal(sched_consolidate(&m, &o, &p[run]), 0);
        sched_model_free(&m);
    }
    assert_true(p[0].n > 0);
    assert_int_equal(p[0].n, p[1].n);
    for (int i = 0; i < p[0].n; i++) {
        assert_int_equal(p[0].moves[i].vm, p[1].moves[i].vm);
        assert_int_equal(p[0].moves[i].to, p[1].moves[i].to);
    }
    sched_plan_free(&p[0]);
    sched_plan_free(&p[1]);
}

/* bin packing: capacity 1000, items 500 400 300 300 300 200 (sum 2000).
 * Optimum 2 hosts ({500,300,200}, {400,300,300}); FFD needs 3. */
static void test_ilp_beats_ffd(void **state)
{
    (void)state;
    sched_model m;
    hosts(&m, 4);
    const double mips[] = {500, 400, 300, 300, 300, 200};
    for (int i = 0; i < 6; i++) {
        sched_vm v;
        sched_vm_defaults(&v);
        v.mips = mips[i];
        v.ram_mb = 1;
        sched_model_add_vm(&m, &v);
    }
    sched_ilp_result r;
    assert_int_equal(sched_ilp_pack(&m, 5000, &r), 0);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.hosts_used, 2);
    assert_int_equal(r.heuristic_hosts, 3);
    double load[4] = {0};
    for (int v = 0; v < 6; v++) {
        assert_true(r.assign[v] >= 0);
        load[r.assign[v]] += mips[v];
    }
    for (int h = 0; h < 4; h++)
        assert_true(load[h] <= 1000);
    free(r.assign);
    sched_model_free(&m);
}

static void test_ilp_anti_affinity_and_infeasible(void **state)
{
    (void)state;
    sched_model m;
    hosts(&m, 2);
    sched_group g = {.kind = SCHED_GROUP_ANTI_AFFINITY, .hard = true};
    int gi = sched_model_add_group(&m, &g);
    for (int i = 0; i < 2; i++) {
        sched_vm v;
        sched_vm_defaults(&v);
        v.mips = 100;
        v.ram_mb = 1;
        v.group = gi;
        sched_model_add_vm(&m, &v);
    }
    sched_ilp_result r;
    assert_int_equal(sched_ilp_pack(&m, 5000, &r), 0);
    assert_int_equal(r.hosts_used, 2); /* would be 1 without the group */
    assert_int_not_equal(r.assign[0], r.assign[1]);
    free(r.assign);
    sched_vm big;
    sched_vm_defaults(&big);
    big.mips = 5000;
    sched_model_add_vm(&m, &big);
    sched_ilp_pack(&m, 1000, &r);
    assert_int_equal(r.status, -1);
    free(r.assign);
    sched_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overload_sheds_mmt_vm),
        cmocka_unit_test(test_underload_drain),
        cmocka_unit_test(test_underload_drain_fails),
        cmocka_unit_test(test_cloudsim_leaky_exclusion),
        cmocka_unit_test(test_cloudsim_pabfd_arithmetic),
        cmocka_unit_test(test_deterministic_with_seed),
        cmocka_unit_test(test_ilp_beats_ffd),
        cmocka_unit_test(test_ilp_anti_affinity_and_infeasible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
