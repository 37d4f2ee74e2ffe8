/* test_sample.c - the host.sample message (agent/sample_msg.c) both ways,
 * its argument checks, and the verb itself (agent_sample.c): the host's and
 * a process's counters come back, and a QEMU that never answers QMP is
 * reported by the deadline without its QMP figures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent_local.h"
#include "agent/sample_msg.h"
#include "compute/engine.h"
#include "compute/qmp.h"

#define VM_A "0123abcd-0000-4000-8000-000000000001"

static void test_roundtrip(void **st)
{
    (void)st;
    struct host_counters h = {.clk_tck = 100,
                              .ncpus = 2,
                              .have_cpu = true,
                              .cpu_busy = 10,
                              .cpu_total = 90,
                              .have_load = true,
                              .load1 = 0.5,
                              .have_net = true,
                              .net_rx_bytes = (uint64_t)1 << 40,
                              .net_tx_bytes = 2,
                              .net_rx_packets = 3,
                              .net_tx_packets = 4};
    struct vm_counters_raw v = {.pid = 42,
                                .have_cpu = true,
                                .cpu_ticks = 77,
                                .nvcpu = 2,
                                .vcpu_ticks = {5, 6},
                                .have_sched = true,
                                .vcpu_run_ns = (uint64_t)3 << 40,
                                .vcpu_wait_ns = 7,
                                .have_blk = true,
                                .rd_bytes = 1,
                                .wr_bytes = 2,
                                .rd_ops = 3,
                                .wr_ops = 4,
                                .rd_ns = 5,
                                .wr_ns = 6,
                                .qmp_timeout = true};
    snprintf(v.vm, sizeof v.vm, "%s", VM_A);
    json_t *vms = json_array();
    json_array_append_new(vms, sample_vm_encode(&v));
    json_t *msg = sample_reply_encode(sample_host_encode(&h), vms);
    /* it crosses a network as text */
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    msg = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(msg);
    assert_null(json_object_get(json_object_get(msg, "host"), "memory")); /* absent, not 0 */
    struct host_counters h2;
    struct vm_counters_raw *out;
    size_t n;
    struct yerr err = {0};
    assert_int_equal(sample_reply_decode(msg, &h2, &out, &n, &err), 0);
    assert_int_equal(h2.clk_tck, 100);
    assert_int_equal(h2.ncpus, 2);
    assert_true(h2.have_cpu && h2.have_load && h2.have_net);
    assert_false(h2.have_mem || h2.have_disk);
    assert_int_equal(h2.cpu_total, 90);
    assert_true(h2.net_rx_bytes == (uint64_t)1 << 40);
    assert_true(h2.load1 == 0.5);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].vm, VM_A);
    assert_int_equal(out[0].pid, 42);
    assert_true(out[0].have_cpu && out[0].have_blk && out[0].qmp_timeout);
    assert_false(out[0].have_rss || out[0].have_balloon);
    assert_int_equal(out[0].nvcpu, 2);
    assert_int_equal(out[0].vcpu_ticks[1], 6);
    assert_int_equal(out[0].wr_ns, 6);
    assert_true(out[0].have_sched && out[0].vcpu_run_ns == (uint64_t)3 << 40);
    assert_int_equal(out[0].vcpu_wait_ns, 7);
    free(out);
    json_decref(msg);
}

static int decode_text(const char *text, struct yerr *err)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    struct host_counters h;
    struct vm_counters_raw *v;
    size_t n;
    int rc = sample_reply_decode(j, &h, &v, &n, err);
    free(v);
    json_decref(j);
    return rc;
}

static void test_bad_replies(void **st)
{
    (void)st;
    struct yerr err = {0};
    assert_int_equal(decode_text("{\"host\":{\"clk_tck\":100},\"vms\":[]}", &err), 0);
    const char *bad[] = {
        "{\"vms\":[]}",
        "{\"host\":{},\"vms\":[]}",
        "{\"host\":{\"clk_tck\":100}}",
        "{\"host\":{\"clk_tck\":100,\"cpu\":{\"busy\":-1,\"total\":3}},\"vms\":[]}",
        "{\"host\":{\"clk_tck\":100,\"cpu\":{\"busy\":1}},\"vms\":[]}",
        "{\"host\":{\"clk_tck\":100,\"load1\":\"x\"},\"vms\":[]}",
        "{\"host\":{\"clk_tck\":100},\"vms\":[{\"vm\":\"X;rm\",\"pid\":1}]}",
        "{\"host\":{\"clk_tck\":100},\"vms\":[{\"vm\":\"" VM_A "\",\"pid\":0}]}",
        "{\"host\":{\"clk_tck\":100},\"vms\":[{\"vm\":\"" VM_A "\",\"pid\":1,\"rss\":1.5}]}",
        "{\"host\":{\"clk_tck\":100},\"vms\":[{\"vm\":\"" VM_A
        "\",\"pid\":1,\"vcpu_ticks\":[1,-2]}]}",
        "{\"host\":{\"clk_tck\":100},\"vms\":[{\"vm\":\"" VM_A
        "\",\"pid\":1,\"blockstats\":{\"rd_bytes\":1}}]}",
        "{\"host\":{\"clk_tck\":100,\"ncpus\":0},\"vms\":[]}",
        "{\"host\":{\"clk_tck\":100},\"vms\":[{\"vm\":\"" VM_A "\",\"pid\":1,\"vcpu_wait_ns\":1}]}",
        "{\"host\":{\"clk_tck\":100},\"vms\":[{\"vm\":\"" VM_A
        "\",\"pid\":1,\"vcpu_run_ns\":1,\"vcpu_wait_ns\":-1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.code = YE_NONE;
        assert_int_equal(decode_text(bad[i], &err), -1);
        assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    }
}

static int args_text(const char *text, size_t *n, int *deadline)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    struct sample_target *t;
    struct yerr err = {0};
    int rc = sample_args_decode(j, &t, n, deadline, &err);
    if (rc < 0)
        assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    free(t);
    json_decref(j);
    return rc;
}

/* The pushed event (an agent host's own sample): "at" and the figures are
 * checked, and a bad event is refused whole. */
static void test_push(void **st)
{
    (void)st;
    struct host_counters h = {.clk_tck = 100,
                              .have_cpu = true,
                              .cpu_busy = 10,
                              .cpu_total = 90,
                              .have_mem = true,
                              .mem_total = 1000,
                              .mem_available = 400};
    struct vm_counters_raw v = {.pid = 42, .have_cpu = true, .cpu_ticks = 7};
    snprintf(v.vm, sizeof v.vm, "%s", VM_A);
    json_t *vms = json_array();
    json_array_append_new(vms, sample_vm_encode(&v));
    json_t *reply = sample_reply_encode(sample_host_encode(&h), vms);
    json_t *ev = sample_push_encode(reply, 1700000000123LL);
    assert_non_null(ev);
    struct host_counters h2;
    struct vm_counters_raw *out = NULL;
    size_t n = 0;
    int64_t at = 0;
    struct yerr err = {0};
    assert_int_equal(sample_push_decode(ev, &at, &h2, &out, &n, &err), 0);
    assert_int_equal(at, 1700000000123LL);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].vm, VM_A);
    assert_true(h2.have_mem && h2.mem_available == 400);
    free(out);
    json_decref(ev);

    /* each case: one change to a good event, refused with its reason */
    static const struct {
        const char *path, *value, *why;
    } bad[] = {
        {"at", NULL, "\"at\""},
        {"at", "0", "\"at\""},
        {"at", "-5", "\"at\""},
        {"at", "\"now\"", "\"at\""},
        {"at", "9007199254740993", "\"at\""},
        {"at", "1.5", "\"at\""},
        {"memory", "{\"total\":10,\"available\":11}", "more than its \"total\""},
        {"cpu", "{\"busy\":91,\"total\":90}", "more than its \"total\""},
        {"vms", "twice", "listed twice"},
        {"vms", "7", "\"vms\""},
        {"clk_tck", "0", "clk_tck"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ev = sample_push_encode(reply, 1700000000123LL);
        json_t *target = ev;
        const char *key = bad[i].path;
        if (!strcmp(key, "memory") || !strcmp(key, "cpu") || !strcmp(key, "clk_tck"))
            target = json_object_get(ev, "host");
        if (!bad[i].value)
            json_object_del(target, key);
        else if (!strcmp(bad[i].value, "twice"))
            json_array_append(json_object_get(ev, "vms"),
                              json_array_get(json_object_get(ev, "vms"), 0));
        else
            json_object_set_new(target, key, json_loads(bad[i].value, JSON_DECODE_ANY, NULL));
        struct yerr e2 = {0};
        out = NULL;
        n = 0;
        assert_int_equal(sample_push_decode(ev, &at, &h2, &out, &n, &e2), -1);
        assert_int_equal(e2.code, YE_INVALID_ARGUMENT);
        assert_null(out);
        if (!strstr(e2.message, bad[i].why))
            fail_msg("case %zu: '%s' lacks '%s'", i, e2.message, bad[i].why);
        json_decref(ev);
    }
    struct yerr e3 = {0};
    json_t *str = json_string("x");
    assert_int_equal(sample_push_decode(str, &at, &h2, &out, &n, &e3), -1);
    json_decref(str);
    json_decref(reply);
}

static void test_args(void **st)
{
    (void)st;
    struct sample_target t[2] = {{VM_A, 7}, {"ff", 8}};
    json_t *a = sample_args_encode(t, 2, 300);
    struct sample_target *out;
    size_t n;
    int dl;
    struct yerr err = {0};
    assert_int_equal(sample_args_decode(a, &out, &n, &dl, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(dl, 300);
    assert_string_equal(out[1].vm, "ff");
    assert_int_equal(out[1].pid, 8);
    free(out);
    json_decref(a);
    assert_int_equal(args_text("{}", &n, &dl), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dl, SAMPLE_DEADLINE_MS);
    const char *bad[] = {
        "[]",
        "{\"vms\":{}}",
        "{\"vms\":[1]}",
        "{\"vms\":[{\"vm\":\"../x\",\"pid\":3}]}",
        "{\"vms\":[{\"vm\":\"ab\",\"pid\":-3}]}",
        "{\"vms\":[{\"vm\":\"ab\",\"pid\":99999999999}]}",
        "{\"vms\":[{\"vm\":\"ab\",\"pid\":3,\"path\":\"/etc\"}]}",
        "{\"deadline_ms\":0}",
        "{\"deadline_ms\":100000}",
        "{\"extra\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(args_text(bad[i], &n, &dl), -1);
}

/* ---- the verb ---- */

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
    if (result)
        s->result = json_incref(result);
}

static void run_until(struct event_base *base, struct seen *s)
{
    for (int i = 0; i < 500 && !s->calls; i++) {
        struct timeval tv = {0, 10 * 1000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

/* The KSM counters and a VM's swap cross both ways; a bad "ksm" is refused. */
static void test_ksm_and_swap(void **st)
{
    (void)st;
    struct host_counters h = {.clk_tck = 100,
                              .have_ksm = true,
                              .ksm_run = 1,
                              .ksm_pages_shared = 3,
                              .ksm_pages_sharing = 9,
                              .ksm_saved_bytes = 9 * 4096,
                              .have_ksmd = true,
                              .ksmd_ticks = 12};
    struct vm_counters_raw v = {.pid = 42, .have_swap = true, .swap = 8192};
    snprintf(v.vm, sizeof v.vm, "%s", VM_A);
    json_t *vms = json_array();
    json_array_append_new(vms, sample_vm_encode(&v));
    json_t *msg = sample_reply_encode(sample_host_encode(&h), vms);
    struct host_counters h2;
    struct vm_counters_raw *out;
    size_t n;
    struct yerr err = {0};
    assert_int_equal(sample_reply_decode(msg, &h2, &out, &n, &err), 0);
    assert_true(h2.have_ksm && h2.have_ksmd);
    assert_true(h2.ksm_run == 1 && h2.ksm_pages_shared == 3 && h2.ksm_pages_sharing == 9 &&
                h2.ksm_saved_bytes == 9 * 4096 && h2.ksmd_ticks == 12);
    assert_int_equal(n, 1);
    assert_true(out[0].have_swap && out[0].swap == 8192);
    free(out);
    json_t *k = json_object_get(json_object_get(msg, "host"), "ksm");
    json_object_del(k, "cpu_ticks"); /* ksmd not found: still a sample */
    assert_int_equal(sample_reply_decode(msg, &h2, &out, &n, &err), 0);
    assert_true(h2.have_ksm && !h2.have_ksmd);
    free(out);
    static const char *const bad[] = {
        "{\"run\":3,\"pages_shared\":0,\"pages_sharing\":0,\"saved_bytes\":0}",
        "{\"run\":1,\"pages_shared\":0,\"pages_sharing\":0}",
        "{\"run\":1,\"pages_shared\":-1,\"pages_sharing\":0,\"saved_bytes\":0}",
        "{\"run\":1,\"pages_shared\":0,\"pages_sharing\":0,\"saved_bytes\":0,\"x\":1}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_object_set_new(json_object_get(msg, "host"), "ksm", json_loads(bad[i], 0, NULL));
        memset(&err, 0, sizeof err);
        assert_int_equal(sample_reply_decode(msg, &h2, &out, &n, &err), -1);
        assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    }
    json_object_del(json_object_get(msg, "host"), "ksm");
    json_object_set_new(json_array_get(json_object_get(msg, "vms"), 0), "swap", json_integer(-5));
    assert_int_equal(sample_reply_decode(msg, &h2, &out, &n, &err), -1);
    json_decref(msg);
}

static void test_verb_process(void **st)
{
    (void)st;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, NULL, &e);
    struct seen bad = {0}, ok = {0};
    agent_call(a, AV_HOST_SAMPLE, json_pack("{s:s}", "vms", "x"), on_reply, NULL, &bad);
    /* this test's own process stands in for a QEMU: /proc figures only */
    struct sample_target t = {VM_A, getpid()};
    agent_call(a, AV_HOST_SAMPLE, sample_args_encode(&t, 1, 0), on_reply, NULL, &ok);
    assert_int_equal(bad.calls + ok.calls, 0);
    run_until(base, &ok);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.code, YE_INVALID_ARGUMENT);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.code, YE_NONE);
    struct host_counters h;
    struct vm_counters_raw *v;
    size_t n;
    struct yerr err = {0};
    assert_int_equal(sample_reply_decode(ok.result, &h, &v, &n, &err), 0);
    assert_true(h.have_cpu && h.have_mem && h.clk_tck > 0);
    assert_int_equal(n, 1);
    assert_true(v[0].have_cpu && v[0].have_rss && v[0].rss > 0);
    assert_false(v[0].have_blk || v[0].qmp_timeout);
    free(v);
    json_decref(ok.result);
    agent_free(a);
    event_base_free(base);
}

/* A "QEMU" that accepts the QMP connection and never says a word. */
static void test_verb_silent_qemu(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-test-sample-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/qmp.sock", dir);
    int ls = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 1), 0);

    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    e.base = base;
    struct vm_rt rt;
    memset(&rt, 0, sizeof rt);
    snprintf(rt.id, sizeof rt.id, "%s", VM_A);
    rt.pid = getpid();
    char werr[128];
    rt.watch = qmp_watch_open(base, path, NULL, NULL, NULL, werr, sizeof werr);
    assert_non_null(rt.watch);
    e.rts = &rt;
    struct agent *a = agent_local_new(base, NULL, &e);
    struct seen s = {0}, gone = {0};
    struct sample_target t = {VM_A, getpid()};
    agent_call(a, AV_HOST_SAMPLE, sample_args_encode(&t, 1, 100), on_reply, NULL, &s);
    /* a cancelled sample answers YE_CANCELLED and leaves nothing behind */
    uint64_t id =
        agent_call(a, AV_HOST_SAMPLE, sample_args_encode(&t, 1, 5000), on_reply, NULL, &gone);
    assert_int_equal(agent_cancel(a, id), 0);
    run_until(base, &s);
    assert_int_equal(gone.calls, 1);
    assert_int_equal(gone.code, YE_CANCELLED);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.code, YE_NONE);
    struct host_counters h;
    struct vm_counters_raw *v;
    size_t n;
    struct yerr err = {0};
    assert_int_equal(sample_reply_decode(s.result, &h, &v, &n, &err), 0);
    assert_true(h.have_cpu);
    assert_int_equal(n, 1);
    assert_true(v[0].qmp_timeout);
    assert_true(v[0].have_cpu);
    assert_false(v[0].have_blk || v[0].have_balloon);
    assert_int_equal(v[0].nvcpu, 0);
    free(v);
    json_decref(s.result);
    agent_free(a);
    qmp_watch_close(rt.watch);
    event_base_free(base);
    close(ls);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_args),         cmocka_unit_test(test_push),
        cmocka_unit_test(test_verb_process), cmocka_unit_test(test_verb_silent_qemu),
        cmocka_unit_test(test_ksm_and_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
