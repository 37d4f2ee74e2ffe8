/* test_sched_filters.c - each placement filter rejects for its own reason,
 * and the explanation counts reasons like Nova / kube-scheduler do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sched/sched.h"

static int add_host(sched_model *m, int cores, double core_mips, double ram)
{
    sched_host h;
    sched_host_defaults(&h);
    snprintf(h.name, sizeof(h.name), "h%d", m->nhosts);
    h.cores = cores;
    h.core_mips = core_mips;
    h.ram_mb = ram;
    return sched_model_add_host(m, &h);
}

static int add_vm(sched_model *m, int vcpus, double mips, double ram, int group)
{
    sched_vm v;
    sched_vm_defaults(&v);
    v.vcpus = vcpus;
    v.mips = mips;
    v.ram_mb = ram;
    v.group = group;
    return sched_model_add_vm(m, &v);
}

static void test_cpu_capacity_and_overcommit(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    int h = add_host(&m, 2, 1000, 8192);
    int a = add_vm(&m, 1, 1500, 512, -1), b = add_vm(&m, 1, 1000, 512, -1);
    assert_int_equal(sched_filter_host(&m, h, &m.vms[a], false), SCHED_REJ_NONE);
    assert_int_equal(sched_model_attach(&m, a, h), 0);
    /* 1500 + 1000 > 2 x 1000 */
    assert_int_equal(sched_filter_host(&m, h, &m.vms[b], false), SCHED_REJ_CPU);
    m.hosts[h].cpu_ratio = 2.0; /* 2500 <= 4000 */
    assert_int_equal(sched_filter_host(&m, h, &m.vms[b], false), SCHED_REJ_NONE);
    sched_model_free(&m);
}

static void test_cpu_per_core_and_demand(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    int h = add_host(&m, 2, 1000, 8192);
    int v = add_vm(&m, 1, 2500, 512, -1);
    m.vms[v].req_mips = 1200; /* one vCPU cannot use more than one 1000-MIPS core */
    assert_int_equal(sched_filter_host(&m, h, &m.vms[v], true), SCHED_REJ_CPU);
    m.vms[v].req_mips = 900;
    assert_int_equal(sched_filter_host(&m, h, &m.vms[v], true), SCHED_REJ_NONE);
    /* demand mode charges current demand: 900 + 900 fits 2000, a third does not */
    int w = add_vm(&m, 1, 2500, 512, -1), x = add_vm(&m, 1, 2500, 512, -1);
    m.vms[w].req_mips = m.vms[x].req_mips = 900;
    sched_model_attach(&m, v, h);
    sched_model_attach(&m, w, h);
    assert_true(fabs(sched_host_available_mips(&m.hosts[h]) - 200) < 1e-9);
    assert_int_equal(sched_filter_host(&m, h, &m.vms[x], true), SCHED_REJ_CPU);
    sched_model_free(&m);
}

static void test_ram_disk_bw(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    int h = add_host(&m, 8, 1000, 4096);
    m.hosts[h].disk_gb = 100;
    m.hosts[h].bw_mbps = 1000;
    int a = add_vm(&m, 1, 100, 3000, -1), b = add_vm(&m, 1, 100, 3000, -1);
    sched_model_attach(&m, a, h);
    assert_int_equal(sched_filter_host(&m, h, &m.vms[b], false), SCHED_REJ_RAM);
    m.hosts[h].ram_ratio = 1.5; /* 6000 <= 6144 */
    assert_int_equal(sched_filter_host(&m, h, &m.vms[b], false), SCHED_REJ_NONE);
    m.vms[b].disk_gb = 101;
    assert_int_equal(sched_filter_host(&m, h, &m.vms[b], false), SCHED_REJ_DISK);
    m.vms[b].disk_gb = 10;
    m.vms[b].bw_mbps = 1001;
    assert_int_equal(sched_filter_host(&m, h, &m.vms[b], false), SCHED_REJ_BW);
    /* a running VM charged no RAM (CloudSim's null RAM model) fits anywhere */
    m.vms[b].bw_mbps = 0;
    m.hosts[h].ram_ratio = 1.0;
    m.vms[b].ram_active_mb = 0;
    assert_int_equal(sched_filter_host(&m, h, &m.vms[b], false), SCHED_REJ_NONE);
    sched_model_free(&m);
}

static void test_state_labels_maxvms(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    int h0 = add_host(&m, 4, 1000, 8192), h1 = add_host(&m, 4, 1000, 8192);
    sched_host_add_label(&m.hosts[h0], "zone=b");
    sched_host_add_label(&m.hosts[h1], "zone=a");
    int v = add_vm(&m, 1, 100, 100, -1);
    sched_vm_add_req(&m.vms[v], "zone=a");
    assert_int_equal(sched_filter_host(&m, h0, &m.vms[v], false), SCHED_REJ_LABELS);
    assert_int_equal(sched_filter_host(&m, h1, &m.vms[v], false), SCHED_REJ_NONE);
    m.hosts[h1].state = SCHED_HOST_MAINT;
    assert_int_equal(sched_filter_host(&m, h1, &m.vms[v], false), SCHED_REJ_STATE);
    m.hosts[h1].state = SCHED_HOST_UP;
    m.hosts[h1].max_vms = 1;
    int w = add_vm(&m, 1, 100, 100, -1);
    sched_model_attach(&m, w, h1);
    assert_int_equal(sched_filter_host(&m, h1, &m.vms[v], false), SCHED_REJ_MAX_VMS);
    sched_model_free(&m);
}

static void test_affinity_groups(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    int h0 = add_host(&m, 8, 1000, 8192), h1 = add_host(&m, 8, 1000, 8192);
    sched_group anti = {.kind = SCHED_GROUP_ANTI_AFFINITY, .hard = true};
    sched_group aff = {.kind = SCHED_GROUP_AFFINITY, .hard = true};
    sched_group cap2 = {.kind = SCHED_GROUP_NONE, .max_per_host = 2};
    int ga = sched_model_add_group(&m, &anti), gf = sched_model_add_group(&m, &aff);
    int gc = sched_model_add_group(&m, &cap2);
    int a1 = add_vm(&m, 1, 100, 100, ga), a2 = add_vm(&m, 1, 100, 100, ga);
    sched_model_attach(&m, a1, h0);
    assert_int_equal(sched_filter_host(&m, h0, &m.vms[a2], false), SCHED_REJ_ANTI_AFFINITY);
    assert_int_equal(sched_filter_host(&m, h1, &m.vms[a2], false), SCHED_REJ_NONE);
    int f1 = add_vm(&m, 1, 100, 100, gf), f2 = add_vm(&m, 1, 100, 100, gf);
    /* the first member of an affinity group may go anywhere */
    assert_int_equal(sched_filter_host(&m, h0, &m.vms[f1], false), SCHED_REJ_NONE);
    sched_model_attach(&m, f1, h1);
    assert_int_equal(sched_filter_host(&m, h0, &m.vms[f2], false), SCHED_REJ_AFFINITY);
    assert_int_equal(sched_filter_host(&m, h1, &m.vms[f2], false), SCHED_REJ_NONE);
    int c1 = add_vm(&m, 1, 100, 100, gc), c2 = add_vm(&m, 1, 100, 100, gc);
    int c3 = add_vm(&m, 1, 100, 100, gc);
    sched_model_attach(&m, c1, h0);
    sched_model_attach(&m, c2, h0);
    assert_int_equal(sched_filter_host(&m, h0, &m.vms[c3], false), SCHED_REJ_MAX_PER_HOST);
    assert_int_equal(sched_filter_host(&m, h1, &m.vms[c3], false), SCHED_REJ_NONE);
    sched_model_free(&m);
}

static void test_explain_no_valid_host(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    add_host(&m, 4, 1000, 1024);
    add_host(&m, 4, 1000, 1024);
    int h2 = add_host(&m, 4, 1000, 8192);
    m.hosts[h2].state = SCHED_HOST_DOWN;
    int v = add_vm(&m, 1, 100, 2048, -1);
    sched_host_verdict verdicts[3];
    sched_explain ex = {.hosts = verdicts};
    sched_place_opts o = {.policy = SCHED_POL_PACK};
    assert_int_equal(sched_place(&m, v, &o, &ex), -1);
    assert_int_equal(ex.counts[SCHED_REJ_RAM], 2);
    assert_int_equal(ex.counts[SCHED_REJ_STATE], 1);
    assert_int_equal(ex.passed, 0);
    assert_int_equal(verdicts[0].rejected, SCHED_REJ_RAM);
    assert_int_equal(verdicts[2].rejected, SCHED_REJ_STATE);
    assert_string_equal(ex.reason, "no valid host among 3: 1 host-state, 2 ram");
    sched_model_free(&m);
}

static void test_excluded_and_reason_names(void **state)
{
    (void)state;
    sched_model m;
    sched_model_init(&m);
    add_host(&m, 4, 1000, 8192);
    int h1 = add_host(&m, 4, 1000, 8192);
    int v = add_vm(&m, 1, 100, 100, -1);
    unsigned char excl[2] = {1, 0};
    sched_explain ex = {0};
    sched_place_opts o = {.policy = SCHED_POL_FIRST_FIT, .excluded = excl};
    assert_int_equal(sched_place(&m, v, &o, &ex), h1);
    assert_int_equal(ex.counts[SCHED_REJ_EXCLUDED], 1);
    assert_string_equal(sched_reject_name(SCHED_REJ_ANTI_AFFINITY), "anti-affinity");
    sched_policy p;
    assert_int_equal(sched_policy_parse("best-fit", &p), 0);
    assert_int_equal(p, SCHED_POL_PACK);
    assert_int_equal(sched_policy_parse("nonsense", &p), -1);
    sched_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_capacity_and_overcommit),
        cmocka_unit_test(test_cpu_per_core_and_demand),
        cmocka_unit_test(test_ram_disk_bw),
        cmocka_unit_test(test_state_labels_maxvms),
        cmocka_unit_test(test_affinity_groups),
        cmocka_unit_test(test_explain_no_valid_host),
        cmocka_unit_test(test_excluded_and_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
