/*
 * test_cpupin.c - unit tests for src/compute/cpupin.c: cpuset masks, the
 * "VCPU:HOSTCPUS" list, and every limit a pin is refused for (vCPU index,
 * host CPU that does not exist, outside the VM's cpuset, twice, malformed),
 * each message naming the limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "compute/cpupin.h"

static void test_mask(void **state)
{
    struct cpumask m;
    char err[256];
    assert_int_equal(cpumask_parse("0-2,5", "x", &m, err, sizeof err), 0);
    assert_true(cpumask_has(&m, 0) && cpumask_has(&m, 1) && cpumask_has(&m, 2));
    assert_false(cpumask_has(&m, 3));
    assert_true(cpumask_has(&m, 5));
    assert_int_equal(cpumask_last(&m), 5);
    assert_int_equal(cpumask_parse("130", "x", &m, err, sizeof err), 0);
    assert_true(cpumask_has(&m, 130) && !cpumask_has(&m, 2));
    struct cpumask big;
    assert_int_equal(cpumask_parse("0-200", "x", &big, err, sizeof err), 0);
    assert_true(cpumask_subset(&m, &big));
    assert_false(cpumask_subset(&big, &m));
    const char *bad[] = {"", "a", "1-", "3-1", "1,,2", "1 ", "-1", "0:1", "99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cpumask_parse(bad[i], "emulator-pin", &m, err, sizeof err), -1);
    cpumask_parse("3-1", "emulator-pin", &m, err, sizeof err);
    assert_non_null(strstr(err, "reversed"));
}

static void test_pin_parse(void **state)
{
    struct cpupin p;
    char err[256];
    assert_int_equal(cpupin_parse("", &p, err, sizeof err), 0);
    assert_int_equal(p.n, 0);
    assert_int_equal(cpupin_parse("0:2,1:3", &p, err, sizeof err), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.e[0].vcpu, 0);
    assert_true(cpumask_has(&p.e[0].cpus, 2) && !cpumask_has(&p.e[0].cpus, 3));
    assert_int_equal(p.e[1].vcpu, 1);
    assert_true(cpumask_has(&p.e[1].cpus, 3) && !cpumask_has(&p.e[1].cpus, 2));
    /* a ',' before a plain CPU continues the vCPU's list */
    assert_int_equal(cpupin_parse("1:0-1,4,0:2", &p, err, sizeof err), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.e[0].vcpu, 1);
    assert_true(cpumask_has(&p.e[0].cpus, 0) && cpumask_has(&p.e[0].cpus, 1) &&
                cpumask_has(&p.e[0].cpus, 4));
    assert_int_equal(p.e[1].vcpu, 0);
    assert_true(cpumask_has(&p.e[1].cpus, 2) && !cpumask_has(&p.e[1].cpus, 4));

    const char *bad[] = {"0", "0:", ":1", "0:1,", "0:1;1:2", "x:1", "0:1-", "0:a", "0:1 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cpupin_parse(bad[i], &p, err, sizeof err), -1);
        assert_non_null(strstr(err, "cpu-pin"));
    }
    assert_int_equal(cpupin_parse("0:1,0:2", &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "vCPU 0 is pinned twice"));
    assert_int_equal(cpupin_parse("64:1", &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "limit of 64"));
}

static void test_validate(void **state)
{
    char err[256];
    assert_int_equal(cpupin_validate("0:0,1:1", "0-1", 2, "", 2, err, sizeof err), 0);
    assert_int_equal(cpupin_validate("", "", 1, "", 2, err, sizeof err), 0);
    assert_int_equal(cpupin_validate("0:1", "1", 1, "1", 2, err, sizeof err), 0);
    /* ncpus 0: the host's count is not known, only syntax and vCPUs */
    assert_int_equal(cpupin_validate("0:99", "", 1, "", 0, err, sizeof err), 0);

    assert_int_equal(cpupin_validate("2:0", "", 2, "", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "vCPU 2 does not exist (the VM has 2 vCPUs: 0-1)"));
    assert_int_equal(cpupin_validate("0:99", "", 2, "", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "CPU 99 does not exist (host has 2 CPUs: 0-1)"));
    assert_int_equal(cpupin_validate("", "99", 2, "", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "emulator-pin \"99\": CPU 99 does not exist"));
    assert_int_equal(cpupin_validate("0:0", "", 2, "1", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "CPU 0 is outside the VM's cpuset \"1\""));
    assert_int_equal(cpupin_validate("", "0-1", 2, "1", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "emulator-pin \"0-1\": CPU 0 is outside the VM's cpuset"));
    assert_int_equal(cpupin_validate("0-1", "", 2, "", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "want VCPU:HOSTCPUS"));
    assert_int_equal(cpupin_validate("", "x", 2, "", 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "emulator-pin \"x\": bad syntax"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_pin_parse),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
