/* test_sched_select.c - VM selection policies (MMT, MU, RS, MC) pick the VM a
 * hand calculation predicts; migrating VMs are never picked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sched/sched.h"

/* host 0 with VMs of the given RAM / utilisation */
static void setup(sched_model *m, int n, const double *ram, const double *util)
{
    sched_model_init(m);
    sched_host h;
    sched_host_defaults(&h);
    h.cores = 8;
    h.core_mips = 1000;
    h.ram_mb = 1 << 20;
    sched_model_add_host(m, &h);
    for (int i = 0; i < n; i++) {
        sched_vm v;
        sched_vm_defaults(&v);
        v.mips = 1000;
        v.ram_mb = ram[i];
        v.req_mips = util[i] * 1000;
        int k = sched_model_add_vm(m, &v);
        sched_model_attach(m, k, 0);
    }
}

static int pick(sched_model *m, sched_selector s, sched_rng *rng)
{
    sched_consol_opts o;
    sched_consol_defaults(&o);
    o.sel = s;
    o.rng = rng;
    return sched_select_vm(m, 0, &o);
}

static void test_mmt(void **state)
{
    (void)state;
    const double ram[] = {2000, 500, 1000, 500}, util[] = {0.5, 0.5, 0.5, 0.5};
    sched_model m;
    setup(&m, 4, ram, util);
    assert_int_equal(pick(&m, SCHED_SEL_MMT, NULL), 1); /* least RAM, first of ties */
    m.vms[1].in_migration = true;
    assert_int_equal(pick(&m, SCHED_SEL_MMT, NULL), 3);
    m.vms[0].in_migration = m.vms[2].in_migration = m.vms[3].in_migration = true;
    assert_int_equal(pick(&m, SCHED_SEL_MMT, NULL), -1);
    sched_model_free(&m);
}

static void test_mu(void **state)
{
    (void)state;
    const double ram[] = {1, 1, 1}, util[] = {0.5, 0.2, 0.9};
    sched_model m;
    setup(&m, 3, ram, util);
    assert_int_equal(pick(&m, SCHED_SEL_MU, NULL), 1);
    sched_model_free(&m);
}

static void test_rs(void **state)
{
    (void)state;
    const double ram[] = {1, 1, 1}, util[] = {0.1, 0.2, 0.3};
    sched_model m;
    setup(&m, 3, ram, util);
    m.vms[2].in_migration = true;
    sched_rng a, b;
    sched_rng_seed(&a, 7);
    sched_rng_seed(&b, 7);
    int seen[3] = {0};
    for (int i = 0; i < 100; i++) {
        int x = pick(&m, SCHED_SEL_RS, &a);
        assert_int_equal(x, pick(&m, SCHED_SEL_RS, &b));
        seen[x]++;
    }
    assert_true(seen[0] > 20 && seen[1] > 20);
    assert_int_equal(seen[2], 0);
    sched_model_free(&m);
}

static void test_mc(void **state)
{
    (void)state;
    const double ram[] = {900, 100, 500}, util[] = {0.3, 0.3, 0.3};
    sched_model m;
    setup(&m, 3, ram, util);
    /* VM 1's history is exactly 0.5 x VM 0's, VM 2 is unrelated noise: VMs 0 and 1
     * are explained perfectly (R^2 = 1) by the others, VM 2 is not; the first of
     * the maximum (VM 0) is chosen even though MMT would pick VM 1 */
    const double a[] = {0.1, 0.4, 0.2, 0.8, 0.3, 0.6, 0.5, 0.9};
    const double c[] = {0.7, 0.1, 0.6, 0.2, 0.9, 0.1, 0.4, 0.3};
    for (int i = 0; i < 8; i++) {
        sched_vm_push_hist(&m.vms[0], a[i]);
        sched_vm_push_hist(&m.vms[1], 0.5 * a[i]);
        sched_vm_push_hist(&m.vms[2], c[i]);
    }
    int got = pick(&m, SCHED_SEL_MC, NULL);
    assert_true(got == 0 || got == 1);
    assert_int_not_equal(got, 2);
    sched_model_free(&m);
    /* too little history for a regression (3 samples, 3 VMs): falls back to MMT */
    setup(&m, 3, ram, util);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            sched_vm_push_hist(&m.vms[k], a[i + k]);
    assert_int_equal(pick(&m, SCHED_SEL_MC, NULL), 1);
    sched_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mmt),
        cmocka_unit_test(test_mu),
        cmocka_unit_test(test_rs),
        cmocka_unit_test(test_mc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
