/* test_sim_trace.c - trace loaders (PlanetLab directory, CSV) and the seeded
 * synthetic generator; bad input is reported with file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/sim.h"

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/yun-sim-test-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_planetlab_sorted_and_values(void **state)
{
    (void)state;
    write_file("b host", "10\n20\n30\n");
    write_file("a", "0\n100\n5\n\n"); /* trailing blank line is fine */
    sim_trace t;
    char err[256];
    assert_int_equal(sim_trace_load_planetlab(dir, &t, err, sizeof(err)), 0);
    assert_int_equal(t.nvms, 2);
    assert_int_equal(t.nsteps, 3);
    assert_string_equal(t.names[0], "a"); /* name order, not directory order */
    assert_true(sim_trace_u(&t, 0, 1) == 1.0);
    assert_true(sim_trace_u(&t, 1, 2) == 0.30);
    assert_true(t.interval == 300);
    sim_trace_free(&t);
}

static void test_planetlab_errors(void **state)
{
    (void)state;
    write_file("a", "1\n2\n3\n");
    write_file("z", "1\nabc\n3\n");
    sim_trace t;
    char err[512], want[512];
    assert_int_equal(sim_trace_load_planetlab(dir, &t, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s/z:2: expected an integer CPU%% in 0..100, got 'abc'", dir);
    assert_string_equal(err, want);
    write_file("z", "1\n101\n3\n");
    assert_int_equal(sim_trace_load_planetlab(dir, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/z:2:"));
    write_file("z", "1\n2\n");
    assert_int_equal(sim_trace_load_planetlab(dir, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "2 samples, but a has 3"));
    assert_int_equal(sim_trace_load_planetlab("/nonexistent-yun", &t, err, sizeof(err)), -1);
}

static void test_csv(void **state)
{
    (void)state;
    write_file("t.csv", "vm,timestamp,cpu\nx,0,10\nx,600,30\ny,0,50\ny,300,55.5\ny,600,60\n");
    char p[512], err[512];
    snprintf(p, sizeof(p), "%s/t.csv", dir);
    sim_trace t;
    assert_int_equal(sim_trace_load_csv(p, 300, &t, err, sizeof(err)), 0);
    assert_int_equal(t.nvms, 2);
    assert_int_equal(t.nsteps, 3);
    assert_true(sim_trace_u(&t, 0, 1) == 0.10); /* missing sample repeats the previous */
    assert_true(sim_trace_u(&t, 1, 1) == 0.555);
    assert_string_equal(t.names[1], "y");
    sim_trace_free(&t);
    write_file("t.csv", "x,0,10\nx,300,-4\n");
    assert_int_equal(sim_trace_load_csv(p, 300, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.csv:2:"));
}

/* A trace's timestamps decide the allocation: a span no simulator could hold
 * is refused by name, before any double is converted to int. */
static void test_csv_ranges(void **state)
{
    (void)state;
    char p[512], err[512];
    snprintf(p, sizeof(p), "%s/t.csv", dir);
    sim_trace t;
    static const char *const huge[] = {
        "vm1,0,10\nvm1,38888888888888888800,20\n", "vm1,-1e308,10\nvm1,1e308,20\n",
        "vm1,0,10\nvm1,300000001,20\n", /* 1,000,001 samples of 300 s */
    };
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        write_file("t.csv", huge[i]);
        assert_int_equal(sim_trace_load_csv(p, 300, &t, err, sizeof(err)), -1);
        if (!strstr(err, "samples per VM"))
            fail_msg("case %zu: %s", i, err);
    }
    write_file("t.csv", "vm1,0,10\nvm1,299999700,20\n"); /* exactly the limit */
    assert_int_equal(sim_trace_load_csv(p, 300, &t, err, sizeof(err)), 0);
    assert_int_equal(t.nsteps, SIM_TRACE_MAX_STEPS);
    sim_trace_free(&t);
    write_file("t.csv", "vm1,0,10\nvm1,inf,20\n");
    assert_int_equal(sim_trace_load_csv(p, 300, &t, err, sizeof(err)), -1);
    write_file("t.csv", "vm1,0,10\n");
    assert_int_equal(sim_trace_load_csv(p, 0, &t, err, sizeof(err)), -1);
    assert_int_equal(sim_trace_synth(1 << 15, 1 << 14, 300, 1, &t), -1); /* 2^29 samples */
}

static void test_synth_seeded(void **state)
{
    (void)state;
    sim_trace a, b, c;
    assert_int_equal(sim_trace_synth(50, 288, 300, 5, &a), 0);
    assert_int_equal(sim_trace_synth(50, 288, 300, 5, &b), 0);
    assert_int_equal(sim_trace_synth(50, 288, 300, 6, &c), 0);
    size_t n = (size_t)50 * 288 * sizeof(uint16_t);
    assert_memory_equal(a.u, b.u, n);
    assert_memory_not_equal(a.u, c.u, n);
    for (size_t i = 0; i < (size_t)50 * 288; i++)
        assert_true(a.u[i] <= 10000);
    sim_trace_free(&a);
    sim_trace_free(&b);
    sim_trace_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_planetlab_sorted_and_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planetlab_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_ranges, setup, teardown),
        cmocka_unit_test(test_synth_seeded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
