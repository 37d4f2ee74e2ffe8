/* test_cpu_models.c - CPU models: sched's table as masks and the cluster
 * baseline (sched/cpu_models.c), QEMU's query-cpu-definitions reply read
 * into a host's usable list (compute/cpu_probe.c), and the settings'
 * name checks (lib/config_cluster.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "compute/cpu_probe.h"
#include "lib/config.h"
#include "sched/cpu_models.h"

static uint32_t mask(const char *list)
{
    return sched_cpu_models_mask(list);
}

static void test_table_and_masks(void **st)
{
    assert_true(sched_cpu_models_count() <= 32);
    int w = sched_cpu_model_index("Westmere");
    assert_true(w >= 0);
    assert_string_equal(sched_cpu_model_name(w), "Westmere");
    assert_int_equal(sched_cpu_model_index("westmere"), -1); /* exact names */
    assert_int_equal(sched_cpu_model_index("Westmere-v2"), -1);
    assert_null(sched_cpu_model_name(-1));
    assert_null(sched_cpu_model_name(sched_cpu_models_count()));
    assert_true(sched_cpu_model_migratable(w));
    assert_false(sched_cpu_model_migratable(sched_cpu_model_index("max")));
    assert_false(sched_cpu_model_migratable(sched_cpu_model_index("host")));
    /* unknown names and empty entries are left out; the list is in the
     * table's order, newest first */
    uint32_t m = mask("qemu64,Nehalem,Bogus,,Westmere,Haswell");
    char out[256];
    sched_cpu_models_list(m, out, sizeof out);
    assert_string_equal(out, "Haswell,Westmere,Nehalem,qemu64");
    assert_int_equal(mask(""), 0);
    sched_cpu_models_list(0, out, sizeof out);
    assert_string_equal(out, "");
    /* a short buffer keeps whole names */
    char tiny[12];
    sched_cpu_models_list(m, tiny, sizeof tiny);
    assert_true(strlen(tiny) < sizeof tiny);
}

static void test_baseline(void **st)
{
    /* what TCG runs here, and an Intel and an AMD host under KVM */
    uint32_t tcg = mask("Conroe,Nehalem,Opteron_G1,Opteron_G2,Penryn,Westmere,kvm64,max,qemu64");
    uint32_t skylake = mask("Skylake-Server,Skylake-Client,Broadwell,Haswell,IvyBridge,SandyBridge,"
                            "Westmere,Nehalem,Penryn,Conroe,qemu64,kvm64,max,host");
    uint32_t epyc = mask("EPYC-Rome,EPYC,Opteron_G3,Opteron_G2,Opteron_G1,Westmere,Nehalem,qemu64,"
                         "kvm64,max,host");
    uint32_t m[3] = {skylake, skylake};
    assert_string_equal(sched_cpu_model_name(sched_cpu_baseline(m, 2)), "Skylake-Server");
    m[1] = epyc; /* mixed vendors: what both run */
    assert_string_equal(sched_cpu_model_name(sched_cpu_baseline(m, 2)), "Westmere");
    assert_string_equal(sched_cpu_model_name(sched_cpu_baseline(&epyc, 1)), "EPYC-Rome");
    m[2] = tcg;
    assert_string_equal(sched_cpu_model_name(sched_cpu_baseline(m, 3)), "Westmere");
    /* an old host pulls it down; max and host are never a baseline */
    uint32_t old[2] = {skylake, mask("Penryn,qemu64,max,host")};
    assert_string_equal(sched_cpu_model_name(sched_cpu_baseline(old, 2)), "Penryn");
    uint32_t only_max[1] = {mask("max,host")};
    assert_int_equal(sched_cpu_baseline(only_max, 1), -1);
    assert_int_equal(sched_cpu_baseline(m, 0), -1);
}

static void test_probe_reply(void **st)
{
    const char *out =
        "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n"
        "{\"return\": {}}\n"
        "{\"return\": [{\"name\": \"max\", \"unavailable-features\": [], \"static\": false},"
        " {\"name\": \"host\", \"unavailable-features\": [\"kvm\"]},"
        " {\"name\": \"Westmere\", \"unavailable-features\": []},"
        " {\"name\": \"Westmere-v2\", \"unavailable-features\": []},"
        " {\"name\": \"Haswell\", \"unavailable-features\": [\"avx2\", \"bmi2\"]},"
        " {\"name\": \"Old\", \"unavailable-features\": [], \"deprecated\": true},"
        " {\"name\": \"NoList\"},"
        " {\"name\": \"qemu64\", \"unavailable-features\": []}]}\n"
        "{\"return\": {}}\n"
        "{\"timestamp\": {}, \"event\": \"SHUTDOWN\"}\n";
    char list[256], err[128];
    assert_int_equal(cpu_probe_parse(out, list, sizeof list, err, sizeof err), 0);
    assert_string_equal(list, "max,Westmere,qemu64");
    /* no reply with definitions (QEMU failed to start) */
    assert_int_equal(cpu_probe_parse("{\"return\": {}}\n", list, sizeof list, err, sizeof err), -1);
    assert_string_equal(list, "");
    assert_true(strstr(err, "query-cpu-definitions") != NULL);
    assert_int_equal(cpu_probe_parse(NULL, list, sizeof list, err, sizeof err), -1);
    /* a short buffer keeps whole names */
    char small[10];
    assert_int_equal(cpu_probe_parse(out, small, sizeof small, err, sizeof err), 0);
    assert_string_equal(small, "max");
}

static void test_setting_names(void **st)
{
    assert_true(config_cpu_model_ok("Westmere"));
    assert_true(config_cpu_model_ok("Skylake-Server-v4"));
    assert_true(config_cpu_model_ok("Opteron_G5"));
    assert_false(config_cpu_model_ok(""));
    assert_false(config_cpu_model_ok("a b"));
    assert_false(config_cpu_model_ok("x,y"));
    assert_false(config_cpu_model_ok("-cpu;rm"));
    assert_true(config_cpu_models_ok(""));
    assert_true(config_cpu_models_ok("Nehalem,qemu64"));
    assert_false(config_cpu_models_ok("Nehalem,"));
    assert_false(config_cpu_models_ok(",Nehalem"));
    assert_false(config_cpu_models_ok("Nehalem,,qemu64"));
    struct yun_config c;
    config_defaults(&c);
    assert_string_equal(c.cpu_model, "auto");
    assert_string_equal(c.cpu_models, "");
    char err[256];
    assert_int_equal(config_set(&c, "cpu_models", "Nehalem,qemu64", err, sizeof err), 0);
    assert_string_equal(c.cpu_models, "Nehalem,qemu64");
    assert_int_equal(config_set(&c, "cpu_model", "bad model", err, sizeof err), -1);
    assert_true(strstr(err, "cpu_model") != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_and_masks),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_probe_reply),
        cmocka_unit_test(test_setting_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
