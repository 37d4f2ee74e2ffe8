/* test_sim_engine.c - the simulator on a two-host data centre worked out by
 * hand (energy, migration timing, SLATAH, PDM), determinism, the real
 * PlanetLab day's NPA/DVFS figures when the traces are present, and the CLI's
 * exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/sim.h"
#include "sim/sim_cli.h"

#define NEAR(a, b, eps) assert_true(fabs((a) - (b)) <= (eps))
#define PLANETLAB       "/work/shared/traces/planetlab/20110303"

/* 2 hosts: 1 core x 1000 MIPS, 1000 Mbit/s, 100..200 W; 2 VMs of 1000 MIPS and
 * 625 MB (10 s to migrate at 62.5 MB/s) running flat at 40 % for 4 samples */
static void tiny(sim_dc *dc, sim_trace *t)
{
    memset(dc, 0, sizeof(*dc));
    dc->nhtypes = dc->nvtypes = 1;
    dc->nhosts = 2;
    sim_host_type *h = &dc->htypes[0];
    h->cores = 1;
    h->core_mips = 1000;
    h->ram_mb = 4096;
    h->bw_mbps = 1000;
    h->count = 2;
    for (int i = 0; i < SCHED_POWER_PTS; i++)
        h->power.watts[i] = 100 + 10 * i;
    dc->vtypes[0] = (sim_vm_type){.mips = 1000, .ram_mb = 625, .bw_mbps = 100, .vcpus = 1};
    memset(t, 0, sizeof(*t));
    t->nvms = 2;
    t->nsteps = 4;
    t->interval = 300;
    t->u = malloc(8 * sizeof(uint16_t));
    for (int i = 0; i < 8; i++)
        t->u[i] = 4000;
}

static void run(const char *policy, sim_result *r)
{
    sim_dc dc;
    sim_trace t;
    tiny(&dc, &t);
    sim_opts o = {0};
    assert_int_equal(sim_policy_parse(policy, &o), 0);
    o.cloudsim = true;
    o.consol.stale_util = o.consol.leaky_exclusion = true;
    o.duration = 1200;
    assert_int_equal(sim_run(&dc, &t, &o, r), 0);
    sim_trace_free(&t);
}

static void test_npa_dvfs_by_hand(void **state)
{
    (void)state;
    sim_result r;
    /* updates at 300.1, 600.1, 900.1: NPA bills 3 x 300 s x 200 W x 2 hosts */
    run("npa", &r);
    NEAR(r.energy_kwh, 360000 / 3.6e6, 1e-12);
    sim_result_free(&r);
    /* DVFS: one VM per host (each asks its full 1000 MIPS at creation); the first
     * interval has no previous observation; then 2 x 300 s x 140 W x 2 hosts */
    run("dvfs", &r);
    NEAR(r.energy_kwh, 168000 / 3.6e6, 1e-12);
    assert_int_equal(r.migrations, 0);
    sim_result_free(&r);
}

static void test_one_migration_by_hand(void **state)
{
    (void)state;
    sim_result r;
    /* at 300.1 host 0 (0.4) drains into host 1 (0.8 <= 0.9); the move ends at
     * 310.1. Energy: [300.1, 310.1] host 0 at 140 W, host 1 at 144 W (it already
     * reserves 10 % of the incoming VM); then host 1 alone at 180 W for 290 s and
     * 300 s: 1400 + 1440 + 52200 + 54000 J */
    run("thr-mmt-0.9", &r);
    assert_int_equal(r.migrations, 1);
    NEAR(r.energy_kwh, 109040 / 3.6e6, 1e-12);
    /* host 1 is short of CPU (440 of 800 MIPS) for the 10 s of the migration, out
     * of 610 active host-seconds */
    NEAR(r.slatah, 10.0 / 610.0, 1e-12);
    /* the migrating VM loses 10 % of 400 MIPS for 10 s, of 480000 MIPS-s requested */
    NEAR(r.pdm, 400.0 / 480000.0, 1e-12);
    NEAR(r.slav, r.slatah * r.pdm, 1e-15);
    sim_result_free(&r);
}

static void test_deterministic(void **state)
{
    (void)state;
    sim_dc dc;
    sim_dc_beloglazov(&dc, 60);
    sim_trace t;
    assert_int_equal(sim_trace_synth(100, 48, 300, 3, &t), 0);
    sim_result a, b;
    sim_opts o = {0};
    assert_int_equal(sim_policy_parse("lr-rs-1.2", &o), 0);
    o.cloudsim = true;
    o.seed = 11;
    assert_int_equal(sim_run(&dc, &t, &o, &a), 0);
    assert_int_equal(sim_run(&dc, &t, &o, &b), 0);
    assert_true(a.migrations > 0);
    assert_int_equal(a.migrations, b.migrations);
    assert_true(a.energy_kwh == b.energy_kwh);
    assert_true(a.slav == b.slav);
    sim_result_free(&a);
    sim_result_free(&b);
    sim_trace_free(&t);
}

static void test_planetlab_reference(void **state)
{
    (void)state;
    struct stat st;
    if (stat(PLANETLAB, &st) != 0) {
        skip();
        return;
    }
    sim_trace t;
    char err[512];
    assert_int_equal(sim_trace_load_planetlab(PLANETLAB, &t, err, sizeof(err)), 0);
    assert_int_equal(t.nvms, 1052);
    sim_dc dc;
    sim_dc_beloglazov(&dc, 800);
    sim_opts o = {0};
    sim_result r;
    /* CloudSim 3.0.3 printed 2410.80 kWh (NPA) and 764.96 kWh (DVFS) */
    assert_int_equal(sim_policy_parse("npa", &o), 0);
    o.cloudsim = true;
    assert_int_equal(sim_run(&dc, &t, &o, &r), 0);
    NEAR(r.energy_kwh, 2410.80, 0.005);
    sim_result_free(&r);
    assert_int_equal(sim_policy_parse("dvfs", &o), 0);
    assert_int_equal(sim_run(&dc, &t, &o, &r), 0);
    assert_true(fabs(r.energy_kwh - 764.96) / 764.96 < 0.01);
    sim_result_free(&r);
    sim_trace_free(&t);
}

static int cli(int n, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[n] = NULL;
    return sim_cli_main(n, argv);
}

static void test_cli_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(cli(1, "sim"), 2);
    assert_int_equal(cli(2, "sim", "--help"), 0);
    assert_int_equal(cli(3, "sim", "run", "--help"), 0);
    assert_int_equal(cli(2, "sim", "run"), 2);
    assert_int_equal(cli(2, "sim", "bogus"), 2);
    assert_int_equal(cli(6, "sim", "run", "--synth", "10", "--policy", "xx-yy-1"), 2);
    assert_int_equal(cli(4, "sim", "run", "--trace", "/nonexistent-yun"), 2);
    assert_int_equal(
        cli(10, "sim", "run", "--synth", "20", "--hosts", "10", "--steps", "12", "-o", "csv"), 0);
    assert_int_equal(cli(8, "sim", "run", "--synth", "5", "--hosts", "4", "--format", "xml"), 2);
    assert_int_equal(cli(7, "sim", "place", "--vms", "50", "--hosts", "10", "--explain"), 2);
    assert_int_equal(cli(6, "sim", "ilp", "--vms", "6", "--hosts", "3"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npa_dvfs_by_hand), cmocka_unit_test(test_one_migration_by_hand),
        cmocka_unit_test(test_deterministic),    cmocka_unit_test(test_planetlab_reference),
        cmocka_unit_test(test_cli_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
