/* test_agent_migrate.c - the agents' parts of a move. The link measured
 * between hosts: the agent's link.sink and link.probe on the loopback (a
 * real TCP stream, its count checked against what was sent), their
 * argument checks, a probe with the
 * wrong token dropped while the sink waits on for the right one, a sink no
 * one comes to ended by agent_free; ctl/links.c's cache, its checks of
 * the agents' replies, and the bandwidth a prediction is given; the
 * switchover's arguments (one mirror or a list); a target's "incoming" and
 * "pci" checked and put into its argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_local.h"
#include "compute/engine.h"
#include "ctl/links.h"
#include "lib/config.h"
#include "lib/util.h"

struct seen {
    int calls;
    enum yerr_code code;
    json_t *result;
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->calls++;
    s->code = err ? err->code : YE_NONE;
    assert_true((result == NULL) == (err != NULL));
    json_decref(s->result);
    s->result = result ? json_incref(result) : NULL;
}

static enum yerr_code call(struct agent *a, struct event_base *b, enum agent_verb v, json_t *args,
                           struct seen *s)
{
    json_decref(s->result);
    memset(s, 0, sizeof *s);
    assert_true(agent_call(a, v, args, on_reply, NULL, s) > 0);
    for (int i = 0; i < 3000 && !s->calls; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(b, &tv);
        event_base_dispatch(b);
    }
    assert_int_equal(s->calls, 1);
    return s->code;
}

static json_t *probe_args(json_t *sink, const char *token, int ms)
{
    return json_pack("{s:O,s:O,s:s,s:i}", "address", json_object_get(sink, "address"), "port",
                     json_object_get(sink, "port"), "token", token, "ms", ms);
}

static void test_sink_and_probe(void **st)
{
    (void)st;
    struct yun_config cfg;
    config_defaults(&cfg);
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, &cfg, &e);
    struct seen sink = {0}, s = {0};
    assert_int_equal(call(a, base, AV_LINK_SINK, json_object(), &sink), YE_NONE);
    const char *addr = json_string_value(json_object_get(sink.result, "address"));
    const char *token = json_string_value(json_object_get(sink.result, "token"));
    assert_string_equal(addr, "127.0.0.1");
    assert_int_equal(strlen(token), 32);
    assert_true(json_integer_value(json_object_get(sink.result, "port")) > 0);

    /* a stranger's token is dropped; the sink waits on for its sender */
    assert_int_equal(call(a, base, AV_LINK_PROBE,
                          probe_args(sink.result, "0123456789abcdef0123456789abcdef", 50), &s),
                     YE_UNAVAILABLE);
    assert_int_equal(call(a, base, AV_LINK_PROBE, probe_args(sink.result, token, 100), &s),
                     YE_NONE);
    json_int_t bytes = json_integer_value(json_object_get(s.result, "bytes"));
    json_int_t sent = json_integer_value(json_object_get(s.result, "sent"));
    json_int_t us = json_integer_value(json_object_get(s.result, "us"));
    assert_true(bytes > 0 && bytes == sent);
    assert_true(us >= 100000); /* it sent for its 100 ms, then waited for the count */
    assert_true(json_integer_value(json_object_get(s.result, "bps")) > 0);
    printf("loopback: %.0f MiB/s\n", (double)bytes * 1e6 / (double)us / 1048576.0);

    /* the sink served its one sender and is gone: a second probe finds none */
    assert_int_equal(call(a, base, AV_LINK_PROBE, probe_args(sink.result, token, 50), &s),
                     YE_UNAVAILABLE);

    /* controller side: the replies checked, the figure taken */
    struct ctl c;
    memset(&c, 0, sizeof c);
    struct yerr err;
    json_t *pa = ctl_link_probe_args(sink.result, &err);
    assert_non_null(pa);
    assert_int_equal(json_integer_value(json_object_get(pa, "ms")), LINK_PROBE_MS);
    json_decref(pa);
    double bps = 0;
    assert_int_equal(ctl_link_probe_bps(s.result, &bps, &err), -1); /* the failed one: NULL */
    json_t *ok = json_pack("{s:I,s:I}", "bytes", bytes, "us", us);
    assert_int_equal(ctl_link_probe_bps(ok, &bps, &err), 0);
    assert_true(bps > 0);
    json_decref(ok);

    json_decref(sink.result);
    json_decref(s.result);
    agent_free(a);
    event_base_free(base);
}

static void test_bad_args(void **st)
{
    (void)st;
    struct yun_config cfg;
    config_defaults(&cfg);
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, &cfg, &e);
    struct seen s = {0};
    const char *tok = "0123456789abcdef0123456789abcdef";
    json_t *bad[] = {
        json_pack("{s:s,s:i,s:s}", "address", "localhost", "port", 9, "token", tok),
        json_pack("{s:s,s:i,s:s}", "address", "127.0.0.1", "port", 0, "token", tok),
        json_pack("{s:s,s:i,s:s}", "address", "127.0.0.1", "port", 65536, "token", tok),
        json_pack("{s:s,s:s,s:s}", "address", "127.0.0.1", "port", "9", "token", tok),
        json_pack("{s:s,s:i,s:s}", "address", "127.0.0.1", "port", 9, "token", "short"),
        json_pack("{s:s,s:i}", "address", "127.0.0.1", "port", 9),
        json_pack("{s:s,s:i,s:s,s:i}", "address", "127.0.0.1", "port", 9, "token", tok, "ms", 10),
        json_pack("{s:s,s:i,s:s,s:i}", "address", "127.0.0.1", "port", 9, "token", tok, "ms", 5000),
        json_pack("{s:s,s:i,s:s,s:s}", "address", "127.0.0.1", "port", 9, "token", tok, "ms", "x"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(call(a, base, AV_LINK_PROBE, bad[i], &s), YE_INVALID_ARGUMENT);

    /* a sink no one comes to ends with the agent, its thread joined */
    assert_int_equal(call(a, base, AV_LINK_SINK, json_object(), &s), YE_NONE);
    json_decref(s.result);
    int64_t t0 = monotonic_ms();
    agent_free(a);
    assert_true(monotonic_ms() - t0 < 2000);
    event_base_free(base);
}

static void test_links_cache_and_choice(void **st)
{
    (void)st;
    struct ctl c;
    memset(&c, 0, sizeof c);
    double bps = 0;
    int64_t age = -1;
    assert_false(ctl_link_cached(&c, "a", "b", &bps, &age));
    ctl_link_note(&c, "a", "b", 5e8);
    assert_true(ctl_link_cached(&c, "a", "b", &bps, &age));
    assert_true(bps == 5e8 && age >= 0 && age < LINK_TTL_MS);
    assert_false(ctl_link_cached(&c, "b", "a", &bps, &age)); /* a direction each */
    ctl_link_note(&c, "a", "b", 7e8);                        /* the same slot again */
    assert_true(ctl_link_cached(&c, "a", "b", &bps, &age) && bps == 7e8);
    int used = 0;
    for (int i = 0; i < CTL_LINKS_SEEN; i++)
        used += c.links[i].bps > 0;
    assert_int_equal(used, 1);
    for (int i = 0; i < CTL_LINKS_SEEN + 3; i++) { /* more pairs than slots: no overflow */
        char t[8];
        snprintf(t, sizeof t, "t%d", i);
        ctl_link_note(&c, "a", t, 1e6 * (i + 1));
    }
    assert_true(ctl_link_cached(&c, "a", "t18", &bps, &age) && bps == 19e6);
    c.links[0].at_ms -= LINK_TTL_MS + 1; /* stale figures are not used */
    assert_false(ctl_link_cached(&c, c.links[0].source, c.links[0].target, &bps, &age));

    struct link_view v = {.measured_bps = 2e8};
    ctl_link_choose(&v, 0);
    assert_string_equal(v.source, "measured");
    assert_true(v.bandwidth_bps == 2e8);
    ctl_link_choose(&v, 1 << 20); /* the cap is below the link */
    assert_string_equal(v.source, "max_bandwidth");
    assert_true(v.bandwidth_bps == 1 << 20);
    ctl_link_choose(&v, 1ull << 40); /* the link is below the cap */
    assert_string_equal(v.source, "measured");
    struct link_view none = {0};
    snprintf(none.why, sizeof none.why, "no sink");
    ctl_link_choose(&none, 0);
    assert_string_equal(none.source, "assumed");
    assert_true(none.bandwidth_bps == LINK_ASSUMED_BPS);
    json_t *j = ctl_link_json(&none);
    assert_string_equal(json_string_value(json_object_get(j, "why")), "no sink");
    assert_null(json_object_get(j, "measured_bps"));
    json_decref(j);
    j = ctl_link_json(&v);
    assert_int_equal(json_integer_value(json_object_get(j, "measured_bps")), 200000000);
    json_decref(j);

    /* the agents' replies are another host's messages: checked */
    struct yerr err;
    json_t *bad_sinks[] = {
        json_pack("{s:s,s:i,s:s}", "address", "x", "port", 9, "token",
                  "0123456789abcdef0123456789abcdef"),
        json_pack("{s:s,s:i,s:s}", "address", "10.0.0.1", "port", 70000, "token",
                  "0123456789abcdef0123456789abcdef"),
        json_pack("{s:s,s:i,s:s}", "address", "10.0.0.1", "port", 9, "token", "abc"),
        json_pack("{s:s,s:i}", "address", "10.0.0.1", "port", 9),
        json_pack("[]"),
    };
    for (size_t i = 0; i < sizeof bad_sinks / sizeof bad_sinks[0]; i++) {
        assert_null(ctl_link_probe_args(bad_sinks[i], &err));
        assert_int_equal(err.code, YE_BAD_GATEWAY);
        json_decref(bad_sinks[i]);
    }
    json_t *bad_probes[] = {json_pack("{s:i,s:i}", "bytes", 0, "us", 5),
                            json_pack("{s:i,s:i}", "bytes", 5, "us", 0),
                            json_pack("{s:s,s:i}", "bytes", "5", "us", 5), json_pack("{}")};
    for (size_t i = 0; i < sizeof bad_probes / sizeof bad_probes[0]; i++) {
        assert_int_equal(ctl_link_probe_bps(bad_probes[i], &bps, &err), -1);
        json_decref(bad_probes[i]);
    }
}

static void test_switchover_args(void **st)
{
    (void)st;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, NULL, &e);
    struct seen s = {0};
    const char *vm = "0f0e0d0c-0b0a-0908-0706-050403020100";
    json_t *bad[] = {
        json_pack("{s:s}", "vm", "../x"),
        json_pack("{s:s,s:s}", "vm", vm, "mirror", "job"), /* a mirror without its node */
        json_pack("{s:s,s:s}", "vm", vm, "node", "n"),
        json_pack("{s:s,s:s,s:s}", "vm", vm, "mirror", "a b", "node", "n"),
        json_pack("{s:s,s:s,s:s}", "vm", vm, "mirror", "job", "node", "n\"x"),
        json_pack("{s:s,s:s,s:i}", "vm", vm, "mirror", "job", "node", 3),
        json_pack("{s:s,s:s,s:s}", "vm", vm, "mirror", "", "node", "n"),
        json_pack("{s:s,s:i}", "vm", vm, "wait_ms", -1),
        json_pack("{s:s,s:i}", "vm", vm, "wait_ms", 5001),
        json_pack("{s:s,s:s}", "vm", vm, "wait_ms", "500"),
        /* mirrors: an array of {job, node}, each once, not beside mirror */
        json_pack("{s:s,s:s}", "vm", vm, "mirrors", "mig-disk0"),
        json_pack("{s:s,s:[s]}", "vm", vm, "mirrors", "mig-disk0"),
        json_pack("{s:s,s:[{s:s}]}", "vm", vm, "mirrors", "job", "mig-disk0"),
        json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "vm", vm, "mirrors", "job", "a", "node", "b", "x",
                  "y"),
        json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s}]}", "vm", vm, "mirrors", "job", "a", "node", "b",
                  "job", "a", "node", "c"),
        json_pack("{s:s,s:[{s:s,s:s}]}", "vm", vm, "mirrors", "job", "a b", "node", "b"),
        json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", vm, "mirror", "m", "node", "n", "mirrors",
                  "job", "a", "node", "b"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(call(a, base, AV_VM_SWITCHOVER, bad[i], &s), YE_INVALID_ARGUMENT);
    /* good arguments, no QEMU watched for the VM: said so, nothing sent */
    assert_int_equal(
        call(a, base, AV_VM_SWITCHOVER,
             json_pack("{s:s,s:s,s:s}", "vm", vm, "mirror", "mig-disk0", "node", "mig-nbd0"), &s),
        YE_QEMU_ERROR);
    assert_int_equal(call(a, base, AV_VM_SWITCHOVER, json_pack("{s:s}", "vm", vm), &s),
                     YE_QEMU_ERROR);
    json_t *many = json_array();
    for (int i = 0; i < 34; i++) {
        char job[16], node[16];
        snprintf(job, sizeof job, "mig-vol%d", i);
        snprintf(node, sizeof node, "mig-nbdv%d", i);
        json_array_append_new(many, json_pack("{s:s,s:s}", "job", job, "node", node));
    }
    assert_int_equal(
        call(a, base, AV_VM_SWITCHOVER, json_pack("{s:s,s:O}", "vm", vm, "mirrors", many), &s),
        YE_INVALID_ARGUMENT); /* 34: more than the disk and 32 volumes */
    json_array_remove(many, 0);
    assert_int_equal(
        call(a, base, AV_VM_SWITCHOVER, json_pack("{s:s,s:o}", "vm", vm, "mirrors", many), &s),
        YE_QEMU_ERROR); /* 33 well formed: only the QEMU is missing */
    assert_int_equal(
        call(a, base, AV_VM_SWITCHOVER, json_pack("{s:s,s:i}", "vm", vm, "wait_ms", 500), &s),
        YE_QEMU_ERROR);
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("vm.switchover", &v), 0);
    assert_int_equal(v, AV_VM_SWITCHOVER);
    assert_int_equal(agent_verb_parse("link.probe", &v), 0);
    assert_int_equal(v, AV_LINK_PROBE);
    agent_free(a);
    event_base_free(base);
}

/* vm.launch's migration-target arguments, and the argv they make */
static void test_incoming_pci(void **st)
{
    (void)st;
    struct launch_incoming in;
    struct yerr err;
    json_t *bad[] = {
        json_pack("{s:s}", "incoming", "yes"),
        json_pack("{s:{s:[i,i]}}", "pci", "nic0", 3, 0), /* pci without incoming */
        json_pack("{s:b,s:[i,i]}", "incoming", 1, "pci", 3, 0),
        json_pack("{s:b,s:{s:[i,i]}}", "incoming", 1, "pci", "nic0", 32, 0),
        json_pack("{s:b,s:{s:[i,i]}}", "incoming", 1, "pci", "nic0", 3, 8),
        json_pack("{s:b,s:{s:[i,i]}}", "incoming", 1, "pci", "nic0", -1, 0),
        json_pack("{s:b,s:{s:[i]}}", "incoming", 1, "pci", "nic0", 3),
        json_pack("{s:b,s:{s:[s,i]}}", "incoming", 1, "pci", "nic0", "3", 0),
        json_pack("{s:b,s:{s:[i,i]}}", "incoming", 1, "pci", "nic 0", 3, 0),
        json_pack("{s:b,s:{s:[i,i]}}", "incoming", 1, "pci", "", 3, 0),
        json_pack("{s:b,s:{s:[i,i]}}", "incoming", 1, "pci", "a-name-of-thirty-two-characters!", 3,
                  0),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(launch_incoming_parse(bad[i], &in, &err), -1);
        assert_int_equal(err.code, YE_INVALID_ARGUMENT);
        json_decref(bad[i]);
    }
    json_t *good = json_pack("{s:b,s:{s:[i,i],s:[i,i]}}", "incoming", 1, "pci", "nic0", 3, 0,
                             "voldev-ab", 6, 0);
    assert_int_equal(launch_incoming_parse(good, &in, &err), 0);
    assert_true(in.on);
    assert_int_equal(in.npins, 2);
    json_decref(good);
    const char *args[] = {"qemu",
                          "-device",
                          "virtio-blk-pci,drive=disk0,id=virtio-disk0",
                          "-device",
                          "virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:01:02:03",
                          "-device",
                          "virtio-blk-pci,drive=vol-ab,id=voldev-ab,serial=d"};
    struct qemu_argv qa = {calloc(8, sizeof(char *)), 7};
    for (int i = 0; i < 7; i++)
        qa.argv[i] = strdup(args[i]);
    char why[200];
    assert_int_equal(launch_incoming_argv(&in, &qa, why, sizeof why), 0);
    assert_int_equal(qa.argc, 9);
    assert_string_equal(qa.argv[2], "virtio-blk-pci,drive=disk0,id=virtio-disk0");
    assert_string_equal(qa.argv[4], "virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:01:02:03,"
                                    "addr=03.0");
    assert_string_equal(qa.argv[6], "virtio-blk-pci,drive=vol-ab,id=voldev-ab,serial=d,addr=06.0");
    assert_string_equal(qa.argv[7], "-incoming");
    assert_string_equal(qa.argv[8], "defer");
    assert_null(qa.argv[9]);
    /* a second time: each device has its addr already */
    struct pci_pin again = {"nic0", 3, 0};
    assert_int_equal(qemu_argv_pin_pci(&qa, &again, 1, why, sizeof why), -1);
    /* a device the source has and this argv does not make */
    struct pci_pin ghost = {"voldev-cd", 7, 0};
    assert_int_equal(qemu_argv_pin_pci(&qa, &ghost, 1, why, sizeof why), -1);
    assert_non_null(strstr(why, "voldev-cd"));
    qemu_argv_free(&qa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sink_and_probe), cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_links_cache_and_choice), cmocka_unit_test(test_switchover_args),
        cmocka_unit_test(test_incoming_pci)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
