/*
 * test_parsers.c - unit tests for the input parsers yund and yun rely on:
 * sizes, numbers, names, config settings, QMP replies and /proc/cpuinfo.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "compute/accel.h"
#include "compute/qmp.h"
#include "lib/config.h"
#include "lib/util.h"

static void test_parse_size(void **state)
{
    uint64_t v;
    assert_int_equal(parse_size("512M", &v), 0);
    assert_true(v == 512ULL << 20);
    assert_int_equal(parse_size("4G", &v), 0);
    assert_true(v == 4ULL << 30);
    assert_int_equal(parse_size("4GiB", &v), 0);
    assert_true(v == 4ULL << 30);
    assert_int_equal(parse_size("64k", &v), 0);
    assert_true(v == 65536);
    assert_int_equal(parse_size("1024", &v), 0);
    assert_true(v == 1024);
    assert_int_equal(parse_size("", &v), -1);
    assert_int_equal(parse_size("-5M", &v), -1);
    assert_int_equal(parse_size("5X", &v), -1);
    assert_int_equal(parse_size("5MBB", &v), -1);
    assert_int_equal(parse_size("lots", &v), -1);
    assert_int_equal(parse_size("99999999999999999999", &v), -1); /* overflow */
    assert_int_equal(parse_size("17179869184T", &v), -1);         /* overflows on multiply */
}

static void test_format_size(void **state)
{
    char b[32];
    format_size(512ULL << 20, b, sizeof(b));
    assert_string_equal(b, "512M");
    format_size(1536ULL << 20, b, sizeof(b));
    assert_string_equal(b, "1.5G");
    format_size(100, b, sizeof(b));
    assert_string_equal(b, "100B");
}

static void test_parse_u64(void **state)
{
    uint64_t v;
    assert_int_equal(parse_u64("42", 0, 100, &v), 0);
    assert_true(v == 42);
    assert_int_equal(parse_u64("101", 0, 100, &v), -1);
    assert_int_equal(parse_u64("4x", 0, 100, &v), -1);
    assert_int_equal(parse_u64(" 4", 0, 100, &v), -1);
    assert_int_equal(parse_u64("-1", 0, 100, &v), -1);
    assert_int_equal(parse_u64("", 0, 100, &v), -1);
}

/* Numbers from outside never overflow: out of the type's range is an error. */
static void test_number_ranges(void **state)
{
    uint64_t u;
    int64_t v;
    assert_int_equal(parse_u64("18446744073709551616", 0, UINT64_MAX, &u), -1);
    assert_int_equal(parse_size("18446744073709551616", &u), -1);
    assert_int_equal(parse_size("17179869184T", &u), -1);
    assert_int_equal(parse_size("16777215T", &u), 0);
    assert_int_equal(parse_i64("-42", -100, 100, &v), 0);
    assert_true(v == -42);
    assert_int_equal(parse_i64("+7", -100, 100, &v), 0);
    assert_true(v == 7);
    assert_int_equal(parse_i64("-101", -100, 100, &v), -1);
    assert_int_equal(parse_i64("-9223372036854776", -100, INT64_MAX, &v), -1);
    assert_int_equal(parse_i64("-9223372036854775809", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), -1);
    assert_int_equal(parse_i64("9223372036854775807", INT64_MIN, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(parse_i64("-", -100, 100, &v), -1);
    assert_int_equal(parse_i64("", -100, 100, &v), -1);
    assert_int_equal(parse_i64(" 1", -100, 100, &v), -1);
    assert_int_equal(parse_i64("--1", -100, 100, &v), -1);
    assert_int_equal(parse_i64("1e3", -100, 10000, &v), -1);

    struct yun_config c;
    char err[256];
    config_defaults(&c);
    static const char *const bad[][2] = {
        {"cpu_overcommit", "nan"},         {"cpu_overcommit", "inf"},
        {"memory_overcommit", "-nan"},     {"memory_overcommit", "1e999"},
        {"host_memory", "2048T"},          {"reserved_memory", "2048T"},
        {"log_max_size", "2048T"},         {"host_cpus", "4294967297"},
        {"sample_interval", "4294967297"}, {"notify_backoff_ms", "18446744073709551615"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_set(&c, bad[i][0], bad[i][1], err, sizeof(err)) != -1)
            fail_msg("%s = %s was accepted", bad[i][0], bad[i][1]);
    assert_true(c.cpu_overcommit == 4.0 && c.mem_overcommit == 1.0);
}

/* Paths are inside a directory by whole components, not by string prefix. */
static void test_path_beneath(void **state)
{
    assert_string_equal(path_beneath("/var/lib/yun", "/var/lib/yun/exchange/x"), "exchange/x");
    assert_string_equal(path_beneath("/var/lib/yun/", "/var/lib//yun///x"), "x");
    assert_string_equal(path_beneath("/var/lib/yun", "/var/lib/yun"), "");
    assert_string_equal(path_beneath("/var/lib/yun", "/var/lib/yun/"), "");
    assert_string_equal(path_beneath("/", "/etc/shadow"), "etc/shadow");
    assert_null(path_beneath("/var/lib/yun", "/var/lib/yun-backups/x"));
    assert_null(path_beneath("/var/lib/yun", "/var/lib/yu"));
    assert_null(path_beneath("/var/lib/yun", "/var/lib"));
    assert_null(path_beneath("/var/lib/yun", "var/lib/yun/x"));
    assert_true(path_has_dot_component("/a/../b"));
    assert_true(path_has_dot_component("/a/./b"));
    assert_true(path_has_dot_component("/a/.."));
    assert_false(path_has_dot_component("/a/..b/.c/b."));

    struct yun_config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
    assert_string_equal(c.import_dirs, "/var/lib/yun/exchange");
    assert_string_equal(c.export_dirs, "/var/lib/yun/exchange");
    config_defaults(&c);
    assert_int_equal(config_set(&c, "export_dirs", "/var/lib/yun-backups:/srv/x", err, sizeof(err)),
                     0);
    assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
    const char *cur = c.export_dirs;
    char d[64];
    assert_int_equal(config_dirs_next(&cur, d, sizeof(d)), 1);
    assert_string_equal(d, "/var/lib/yun-backups");
    assert_int_equal(config_dirs_next(&cur, d, sizeof(d)), 1);
    assert_string_equal(d, "/srv/x");
    assert_int_equal(config_dirs_next(&cur, d, sizeof(d)), 0);
    static const char *const bad_value[] = {"",      "srv",         "/srv::/x",
                                            "/srv:", "/srv/../etc", "/srv/./x"};
    for (size_t i = 0; i < sizeof(bad_value) / sizeof(bad_value[0]); i++)
        if (config_set(&c, "import_dirs", bad_value[i], err, sizeof(err)) != -1)
            fail_msg("import_dirs = '%s' was accepted", bad_value[i]);
    static const char *const opens_state[] = {"/var/lib/yun", "/var/lib", "/", "/var/lib/yun/pools",
                                              "/srv:/var/lib/yun/images/x"};
    for (size_t i = 0; i < sizeof(opens_state) / sizeof(opens_state[0]); i++) {
        config_defaults(&c);
        assert_int_equal(config_set(&c, "import_dirs", opens_state[i], err, sizeof(err)), 0);
        if (config_finish(&c, err, sizeof(err)) != -1)
            fail_msg("import_dirs = '%s' was accepted", opens_state[i]);
        assert_non_null(strstr(err, "state directory"));
    }
    config_defaults(&c);
    assert_int_equal(config_set(&c, "import_dirs", "/var/lib/yun/exchange/in", err, sizeof(err)),
                     0);
    assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
    /* found by fuzz_config: a ':' in state_dir split the default exchange
     * list into a relative directory */
    config_defaults(&c);
    assert_int_equal(config_set(&c, "state_dir", "/r/dirs:n", err, sizeof(err)), 0);
    assert_int_equal(config_finish(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "without ':'"));
}

static void test_name_valid(void **state)
{
    char why[128];
    assert_true(name_valid("web1", why, sizeof(why)));
    assert_true(name_valid("a.b_c-d", why, sizeof(why)));
    assert_false(name_valid("", why, sizeof(why)));
    assert_string_equal(why, "name is empty");
    assert_false(name_valid("-web", why, sizeof(why)));
    assert_false(name_valid(".hidden", why, sizeof(why)));
    assert_false(name_valid("a/b", why, sizeof(why)));
    assert_non_null(strstr(why, "character outside"));
    assert_false(name_valid("a b", why, sizeof(why)));
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = 0;
    assert_false(name_valid(longname, why, sizeof(why)));
    longname[63] = 0;
    assert_true(name_valid(longname, why, sizeof(why)));
}

static void test_config(void **state)
{
    struct yun_config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "cpu_overcommit", "2.5", err, sizeof(err)), 0);
    assert_true(c.cpu_overcommit == 2.5);
    assert_int_equal(config_set(&c, "cpu_overcommit", "-1", err, sizeof(err)), -1);
    assert_int_equal(config_set(&c, "accel", "hvf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "auto, kvm, tcg"));
    assert_int_equal(config_set(&c, "host_memory", "8G", err, sizeof(err)), 0);
    assert_true(c.host_memory == 8ULL << 30);
    assert_int_equal(config_set(&c, "nonsense", "1", err, sizeof(err)), -1);
    assert_string_equal(err, "unknown setting 'nonsense'");
    assert_int_equal(config_set(&c, "stop_timeout", "0", err, sizeof(err)), -1);

    /* file parsing names the line */
    char path[] = "/tmp/yun-unit-conf-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# comment\n\nstate_dir = /tmp/x\nlog_level = debug\nbogus line\n";
    assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":5: expected 'key = value'"));
    assert_string_equal(c.state_dir, "/tmp/x");
    unlink(path);

    config_defaults(&c);
    snprintf(c.state_dir, sizeof(c.state_dir), "relative");
    assert_int_equal(config_finish(&c, err, sizeof(err)), -1);
    config_defaults(&c);
    snprintf(c.listen_tcp, sizeof(c.listen_tcp), "127.0.0.1:1");
    assert_int_equal(config_finish(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "token_file"));
    config_defaults(&c);
    assert_int_equal(config_finish(&c, err, sizeof(err)), 0);
    assert_string_equal(c.socket_path, "/var/lib/yun/yund.sock");
}

static void test_qmp_parse_reply(void **state)
{
    json_t *ret = NULL;
    char err[256] = "";
    assert_int_equal(
        qmp_parse_reply("{\"return\": {\"status\": \"running\"}}", &ret, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(ret, "status")), "running");
    json_decref(ret);
    assert_int_equal(qmp_parse_reply("{\"error\": {\"class\": \"GenericError\", \"desc\": "
                                     "\"nope\"}}",
                                     NULL, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "GenericError: nope");
    /* events, greetings and garbage are not replies */
    assert_int_equal(
        qmp_parse_reply("{\"event\": \"STOP\", \"timestamp\": {}}", NULL, err, sizeof(err)), 1);
    assert_int_equal(qmp_parse_reply("{\"QMP\": {}}", NULL, err, sizeof(err)), 1);
    assert_int_equal(qmp_parse_reply("not json", NULL, err, sizeof(err)), 1);
    assert_int_equal(qmp_parse_reply("[1]", NULL, err, sizeof(err)), 1);
    assert_int_equal(qmp_parse_reply("{\"error\": 5}", NULL, err, sizeof(err)), 1);
}

static void test_cpuinfo(void **state)
{
    assert_true(cpuinfo_has_hw_virt("processor\t: 0\nflags\t\t: fpu vme vmx sse\n"));
    assert_true(cpuinfo_has_hw_virt("flags\t\t: fpu svm\n"));
    assert_false(cpuinfo_has_hw_virt("flags\t\t: fpu vme hypervisor sse\n"));
    /* vmx inside another word does not count */
    assert_false(cpuinfo_has_hw_virt("flags\t\t: fpu vmxsomething avmx\n"));
    /* only flags lines are read */
    assert_false(cpuinfo_has_hw_virt("model name\t: vmx svm edition\nflags\t: fpu\n"));
    assert_string_equal(accel_choose("tcg"), "tcg");
    assert_string_equal(accel_choose("kvm"), "kvm");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),   cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_parse_u64),    cmocka_unit_test(test_number_ranges),
        cmocka_unit_test(test_path_beneath), cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_config),       cmocka_unit_test(test_qmp_parse_reply),
        cmocka_unit_test(test_cpuinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
