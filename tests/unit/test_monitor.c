/*
 * test_monitor.c - unit tests for the monitor's pure parts: /proc parsers,
 * the sample rings, alert rule parsing, the alert state machine, and the
 * notification bodies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/alert_payload.h"
#include "monitor/alert_rule.h"
#include "monitor/monitor_int.h"
#include "monitor/notify.h"
#include "lib/procfs.h"
#include "monitor/series.h"

static void test_procfs(void **state)
{
    uint64_t busy, total, a, b, c, d;
    assert_int_equal(
        procfs_stat_cpu("cpu  100 5 50 800 45 0 0 0 0 0\ncpu0 1 2 3 4\n", &busy, &total), 0);
    assert_true(total == 1000 && busy == 155);
    assert_int_equal(procfs_stat_cpu("intr 1 2 3", &busy, &total), -1);
    assert_int_equal(
        procfs_meminfo("MemTotal:  1000 kB\nMemFree: 10 kB\nMemAvailable:  400 kB\n", &a, &b), 0);
    assert_true(a == 1024000 && b == 409600);
    double l;
    assert_int_equal(procfs_loadavg("0.52 0.40 0.30 1/200 999\n", &l), 0);
    assert_true(l > 0.519 && l < 0.521);
    const char *ds = "   8       0 sda 10 0 200 5 20 0 400 9 0 0 0\n"
                     "   8       1 sda1 10 0 200 5 20 0 400 9 0 0 0\n"
                     "   7       0 loop0 1 0 999 1 1 0 999 1 0 0 0\n"
                     " 259       0 nvme0n1 1 0 10 1 1 0 20 1 0 0 0\n"
                     " 259       1 nvme0n1p1 1 0 10 1 1 0 20 1 0 0 0\n";
    assert_int_equal(procfs_diskstats(ds, &a, &b), 0);
    assert_true(a == (200 + 10) * 512 && b == (400 + 20) * 512);
    const char *nd = "Inter-|   Receive\n face |bytes packets\n"
                     "    lo: 999 9 0 0 0 0 0 0 999 9 0 0 0 0 0 0\n"
                     "  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
                     "  eth1: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n";
    assert_int_equal(procfs_net_dev(nd, &a, &b, &c, &d), 0);
    assert_true(a == 1001 && b == 2002 && c == 11 && d == 22);
    /* a command name with spaces and parentheses */
    const char *st = "1234 (qemu (a b)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0";
    assert_int_equal(procfs_pid_cpu_ticks(st, &a), 0);
    assert_true(a == 300);
    assert_int_equal(procfs_status_rss("Name: x\nVmRSS:\t  2048 kB\n", &a), 0);
    assert_true(a == 2048 * 1024);
    assert_int_equal(procfs_status_rss("Name: x\n", &a), -1);
}

/* A host's counters into its series (the pushed samples' path): rates on
 * the host's own clock ("at"), none from a counter that went backwards or
 * a first sample, nothing from used memory past the total. */
static void test_host_apply(void **state)
{
    struct monitor m;
    memset(&m, 0, sizeof m);
    series_init(&m.ss);
    struct host_prev p = {0};
    struct host_counters h = {.clk_tck = 100,
                              .have_cpu = true,
                              .cpu_busy = 100,
                              .cpu_total = 1000,
                              .have_net = true,
                              .net_rx_bytes = 1000,
                              .net_tx_bytes = 0,
                              .have_mem = true,
                              .mem_total = 100,
                              .mem_available = 40};
    mon_apply_host(&m, "host/h2", &p, &h, 10000, 500);
    assert_null(series_get(&m.ss, "host/h2", "cpu")); /* no rate from one sample */
    double v;
    assert_int_equal(series_last(series_get(&m.ss, "host/h2", "mem_used"), NULL, &v), 0);
    assert_true(v == 60);
    h.cpu_busy = 150, h.cpu_total = 1100, h.net_rx_bytes = 3000;
    mon_apply_host(&m, "host/h2", &p, &h, 12000, 501); /* 2 s later on h2's clock */
    assert_int_equal(series_last(series_get(&m.ss, "host/h2", "cpu"), NULL, &v), 0);
    assert_true(v == 50);
    assert_int_equal(series_last(series_get(&m.ss, "host/h2", "net_rx_bps"), NULL, &v), 0);
    assert_true(v == 1000);
    /* backwards (a reboot): no rate, the new figures are the base */
    h.cpu_busy = 10, h.cpu_total = 20, h.net_rx_bytes = 5;
    h.mem_available = 200; /* more than the total */
    mon_apply_host(&m, "host/h2", &p, &h, 14000, 502);
    int64_t ts;
    assert_int_equal(series_last(series_get(&m.ss, "host/h2", "cpu"), &ts, &v), 0);
    assert_true(ts == 501);
    assert_int_equal(series_last(series_get(&m.ss, "host/h2", "net_rx_bps"), &ts, &v), 0);
    assert_true(ts == 501);
    assert_int_equal(series_last(series_get(&m.ss, "host/h2", "mem_used"), &ts, &v), 0);
    assert_true(ts == 501);
    assert_null(series_get(&m.ss, "host", "cpu")); /* another host's series only */
    series_free(&m.ss);
}

static void test_series(void **state)
{
    struct series_store s;
    series_init(&s);
    for (int i = 0; i < SERIES_RING + 10; i++)
        series_add(&s, "vm/a", "cpu", 1000 * (int64_t)i, (double)i);
    struct series *r = series_get(&s, "vm/a", "cpu");
    assert_non_null(r);
    assert_int_equal(r->count, SERIES_RING);
    double v;
    int64_t ts;
    assert_int_equal(series_last(r, &ts, &v), 0);
    assert_true(v == SERIES_RING + 9 && ts == 1000 * (SERIES_RING + 9));
    /* window of the last 3 samples: 367, 368, 369 */
    int64_t end = 1000 * (SERIES_RING + 9);
    assert_int_equal(series_aggregate(r, end - 2000, end, AGG_AVG, &v), 0);
    assert_true(v == SERIES_RING + 8);
    assert_int_equal(series_aggregate(r, end - 2000, end, AGG_MAX, &v), 0);
    assert_true(v == SERIES_RING + 9);
    assert_int_equal(series_aggregate(r, end - 2000, end, AGG_MIN, &v), 0);
    assert_true(v == SERIES_RING + 7);
    assert_int_equal(series_aggregate(r, end + 1, end + 5, AGG_AVG, &v), -1);
    /* oldest kept sample is #10; buckets of 100 s */
    struct point pts[SERIES_RING];
    size_t n = series_points(r, 0, 100000, pts, SERIES_RING);
    assert_true(pts[0].ts == 0 && pts[0].v == (10 + 99) / 2.0); /* samples 10..99 */
    assert_true(n == 4);
    series_add(&s, "vm/b", "cpu", 0, 1);
    series_drop_object(&s, "vm/a");
    assert_null(series_get(&s, "vm/a", "cpu"));
    assert_non_null(series_get(&s, "vm/b", "cpu"));
    series_free(&s);
}

static struct alert_rule rule_from(const char *json_text)
{
    struct alert_rule r;
    char err[256];
    json_t *j = json_loads(json_text, 0, NULL);
    assert_non_null(j);
    int rc = alert_rule_from_json(j, &r, err, sizeof(err));
    json_decref(j);
    if (rc != 0)
        fail_msg("rule rejected: %s", err);
    return r;
}

static void test_rule_parsing(void **state)
{
    struct alert_rule r = rule_from("{\"name\":\"hot\",\"metric\":\"cpu\",\"scope\":\"vm:web1\","
                                    "\"agg\":\"max\",\"window\":\"2m\",\"op\":\">=\","
                                    "\"threshold\":90.5,\"for\":\"30s\",\"repeat\":\"1h\","
                                    "\"labels\":{\"team\":\"ops\"},"
                                    "\"channels\":[\"webhook:http://x/y\",\"email:a@b.c\","
                                    "\"sms:+1 555-0100\"]}");
    assert_int_equal(r.scope, SCOPE_VM);
    assert_string_equal(r.target, "web1");
    assert_int_equal(r.agg, AGG_MAX);
    assert_int_equal(r.window_s, 120);
    assert_int_equal(r.for_s, 30);
    assert_int_equal(r.repeat_s, 3600);
    assert_int_equal(r.op, OP_GE);
    assert_true(r.threshold == 90.5);
    assert_int_equal(r.nchannels, 3);
    assert_string_equal(r.severity, "warning");
    /* round trip through JSON */
    json_t *j = alert_rule_to_json(&r);
    struct alert_rule r2;
    char err[256];
    assert_int_equal(alert_rule_from_json(j, &r2, err, sizeof(err)), 0);
    json_decref(j);
    assert_int_equal(r2.window_s, 120);
    assert_string_equal(r2.label_v[0], "ops");

    /* host:NAME: one host of the cluster, host metrics */
    struct alert_rule hr = rule_from("{\"name\":\"h2hot\",\"metric\":\"load1\","
                                     "\"scope\":\"host:h2\",\"op\":\">\",\"threshold\":0}");
    assert_int_equal(hr.scope, SCOPE_HOST_NAMED);
    assert_string_equal(hr.target, "h2");
    json_t *hj = alert_rule_to_json(&hr);
    assert_string_equal(json_string_value(json_object_get(hj, "scope")), "host:h2");
    assert_int_equal(alert_rule_from_json(hj, &r2, err, sizeof(err)), 0);
    assert_int_equal(r2.scope, SCOPE_HOST_NAMED);
    json_decref(hj);

    static const char *const bad[][2] = {
        {"{\"name\":\"a\",\"metric\":\"cpu\",\"scope\":\"host:\",\"op\":\">\","
         "\"threshold\":1}",
         "scope must be"},
        {"{\"name\":\"a\",\"metric\":\"mem_rss\",\"scope\":\"host:h2\",\"op\":\">\","
         "\"threshold\":1}",
         "unknown metric"}, /* a VM metric on a host */
        {"{\"name\":\"a\",\"metric\":\"cpux\",\"op\":\">\",\"threshold\":1}", "unknown metric"},
        {"{\"name\":\"a\",\"metric\":\"net_rx_bps\",\"op\":\">\",\"threshold\":1}",
         "unknown metric"}, /* host-only metric on VMs */
        {"{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1,\"window\":-1}",
         "window"},
        {"{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\"~\",\"threshold\":1}", "op must be"},
        {"{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\"}", "threshold"},
        {"{\"name\":\"a b\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1}", "character"},
        {"{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1,\"channels\":"
         "[\"email:nobody\"]}",
         "email"},
        {"{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1,\"x\":1}",
         "unknown field"},
        {"{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1,\"severity\":\"meh\"}",
         "severity"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *b = json_loads(bad[i][0], 0, NULL);
        assert_int_equal(alert_rule_from_json(b, &r2, err, sizeof(err)), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i][1]);
        json_decref(b);
    }
}

/* Durations from outside: the number is range-checked before it is scaled,
 * so text past int64 or a product past int is refused, never wrapped. */
static void test_rule_duration_range(void **state)
{
    static const char *const bad[] = {
        "\"9223372036854775807m\"",
        "\"99999999999999999h\"",
        "\"99999999999999999999\"",
        "\"2592001\"",
        "\"721h\"",
        "\"31d\"",
        "2592001",
        "-1",
        "\"-1s\"",
        "\"1.5h\"",
        "\"1w\"",
        "1.5",
    };
    char text[256], err[256];
    struct alert_rule r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 "{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1,\"for\":%s}",
                 bad[i]);
        json_t *b = json_loads(text, 0, NULL);
        assert_non_null(b);
        if (alert_rule_from_json(b, &r, err, sizeof(err)) != -1)
            fail_msg("for %s was accepted as %d s", bad[i], r.for_s);
        assert_non_null(strstr(err, "for must be"));
        json_decref(b);
    }
    r = rule_from("{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\",\"threshold\":1,"
                  "\"for\":\"30d\",\"window\":\"720h\",\"repeat\":2592000}");
    assert_int_equal(r.for_s, 2592000);
    assert_int_equal(r.window_s, 2592000);
    assert_int_equal(r.repeat_s, 2592000);
}

static void test_alert_state_machine(void **state)
{
    struct alert_rule r = rule_from("{\"name\":\"a\",\"metric\":\"cpu\",\"op\":\">\","
                                    "\"threshold\":80,\"for\":\"30s\",\"repeat\":\"60s\"}");
    struct alert_inst a = {0};
    assert_int_equal(alert_step(&r, &a, true, 50, 0), AA_NONE);
    assert_int_equal(a.state, AS_INACTIVE);
    assert_int_equal(alert_step(&r, &a, true, 90, 1000), AA_NONE);
    assert_int_equal(a.state, AS_PENDING);
    assert_int_equal(alert_step(&r, &a, true, 90, 30999), AA_NONE); /* for not yet held */
    assert_int_equal(alert_step(&r, &a, true, 90, 31000), AA_FIRE);
    assert_int_equal(a.state, AS_FIRING);
    assert_int_equal(alert_step(&r, &a, true, 95, 60000), AA_NONE);
    assert_int_equal(alert_step(&r, &a, true, 95, 91000), AA_REPEAT);
    assert_int_equal(alert_step(&r, &a, true, 10, 92000), AA_RESOLVE);
    assert_int_equal(a.state, AS_RESOLVED);
    assert_true(a.resolved_at == 92000);
    /* a blip shorter than `for` never fires */
    struct alert_inst b = {0};
    alert_step(&r, &b, true, 90, 0);
    assert_int_equal(alert_step(&r, &b, true, 70, 10000), AA_NONE);
    assert_int_equal(b.state, AS_INACTIVE);
    /* no data counts as "not breaching": firing resolves */
    struct alert_rule z = rule_from("{\"name\":\"z\",\"metric\":\"cpu\",\"op\":\">\","
                                    "\"threshold\":1,\"for\":0}");
    struct alert_inst c = {0};
    assert_int_equal(alert_step(&z, &c, true, 5, 0), AA_FIRE); /* for=0 fires at once */
    assert_int_equal(alert_step(&z, &c, false, 0, 1000), AA_RESOLVE);
}

static void test_payload(void **state)
{
    struct alert_rule r = rule_from("{\"name\":\"hot\",\"metric\":\"cpu\",\"op\":\">\","
                                    "\"threshold\":80,\"severity\":\"critical\","
                                    "\"labels\":{\"team\":\"ops\"}}");
    struct alert_note notes[2] = {{.object = "vm/a", .value = 91, .starts_at = 1000},
                                  {.object = "vm/b", .value = 85, .starts_at = 2000}};
    char *text = alert_webhook_json(&r, notes, 2, "h1", "http://yund/");
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    assert_string_equal(json_string_value(json_object_get(j, "version")), "4");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "firing");
    assert_string_equal(json_string_value(json_object_get(j, "groupKey")),
                        "{}:{alertname=\"hot\"}");
    json_t *alerts = json_object_get(j, "alerts");
    assert_int_equal(json_array_size(alerts), 2);
    json_t *a0 = json_array_get(alerts, 0);
    json_t *l = json_object_get(a0, "labels");
    assert_string_equal(json_string_value(json_object_get(l, "vm")), "a");
    assert_string_equal(json_string_value(json_object_get(l, "team")), "ops");
    assert_string_equal(json_string_value(json_object_get(a0, "startsAt")),
                        "1970-01-01T00:00:01.000Z");
    assert_string_equal(json_string_value(json_object_get(a0, "endsAt")), "0001-01-01T00:00:00Z");
    /* fingerprints differ per alert and are stable */
    assert_string_not_equal(
        json_string_value(json_object_get(a0, "fingerprint")),
        json_string_value(json_object_get(json_array_get(alerts, 1), "fingerprint")));
    json_decref(j);
    char *subject, *body;
    alert_message_text(&r, notes, 2, &subject, &body);
    assert_string_equal(subject, "[FIRING:2] hot (critical)");
    assert_non_null(strstr(body, "vm/b avg of cpu"));
    free(subject);
    free(body);
    char *sms = notify_sms_body("{\"to\":\"{to}\",\"text\":\"{message}\"}", "+1", "a \"b\"\n");
    assert_string_equal(sms, "{\"to\":\"+1\",\"text\":\"a \\\"b\\\"\\u000a\"}");
    free(sms);
    sms = notify_sms_body("to={to}&m={message}", "+1 5", "x&y");
    assert_string_equal(sms, "to=%2B1%205&m=x%26y");
    free(sms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_procfs),
        cmocka_unit_test(test_series),
        cmocka_unit_test(test_host_apply),
        cmocka_unit_test(test_rule_parsing),
        cmocka_unit_test(test_rule_duration_range),
        cmocka_unit_test(test_alert_state_machine),
        cmocka_unit_test(test_payload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
