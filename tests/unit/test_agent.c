/* test_agent.c - the in-process agent's call mechanism: replies come from the
 * loop (never inside agent_call), exactly once; bad arguments, unknown verbs
 * and forgotten callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <string.h>

#include "agent/agent_local.h"
#include "compute/engine.h"

struct seen {
    int calls;
    enum yerr_code code;
    json_int_t cpus;
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->calls++;
    s->code = err ? err->code : YE_NONE;
    assert_true((result == NULL) == (err != NULL));
    if (result)
        s->cpus = json_integer_value(json_object_get(result, "cpus"));
}

static void test_reply_from_loop(void **st)
{
    (void)st;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    e.host_cpus = 7;
    snprintf(e.accel, sizeof e.accel, "tcg");
    struct agent *a = agent_local_new(base, NULL, &e);
    struct seen ok = {0}, bad = {0}, unknown = {0}, gone = {0};
    assert_true(agent_call(a, AV_HOST_FACTS, NULL, on_reply, NULL, &ok) > 0);
    assert_true(agent_call(a, AV_HOST_FACTS, json_string("x"), on_reply, NULL, &bad) > 0);
    assert_true(agent_call(a, AV_NONE, json_object(), on_reply, NULL, &unknown) > 0);
    assert_true(agent_call(a, AV_HOST_FACTS, NULL, on_reply, NULL, &gone) > 0);
    agent_forget(a, &gone);
    assert_int_equal(ok.calls + bad.calls + unknown.calls, 0); /* not inside the call */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.code, YE_NONE);
    assert_int_equal(ok.cpus, 7);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.code, YE_INVALID_ARGUMENT);
    assert_int_equal(unknown.calls, 1);
    assert_int_equal(unknown.code, YE_NOT_IMPLEMENTED);
    assert_int_equal(gone.calls, 0);
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("host.facts", &v), 0);
    assert_int_equal(v, AV_HOST_FACTS);
    assert_string_equal(agent_verb_name(AV_HOST_FACTS), "host.facts");
    assert_int_equal(agent_verb_parse("no.such", &v), -1);
    assert_int_equal(agent_cancel(a, 12345), -1);
    agent_free(a);
    event_base_free(base);
}

/* The VM power and files verbs check their arguments like outside input:
 * each bad one answers YE_INVALID_ARGUMENT, from the loop, and touches
 * nothing (the engine here has no VMs and no directories). */
static void test_power_verbs_bad_args(void **st)
{
    (void)st;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    snprintf(e.vms_dir, sizeof e.vms_dir, "/nonexistent/yun-test/vms");
    struct agent *a = agent_local_new(base, NULL, &e);
    const char *id = "0123abcd-0000-0000-0000-000000000000";
    struct {
        enum agent_verb v;
        json_t *args;
    } bad[] = {
        {AV_VM_POWERDOWN, json_object()},
        {AV_VM_POWERDOWN, json_pack("{s:s}", "vm", "../etc")},
        {AV_VM_QUIT, json_pack("{s:i}", "vm", 7)},
        {AV_VM_END, json_pack("{s:s}", "vm", id)},                  /* no uid */
        {AV_VM_END, json_pack("{s:s,s:i}", "vm", id, "uid", 1000)}, /* not a confined uid */
        {AV_VM_END, json_pack("{s:s,s:i,s:s}", "vm", id, "uid", 0, "pid", "1")},
        {AV_VM_END, json_pack("{s:s,s:i,s:i}", "vm", id, "uid", 0, "pid", -4)},
        {AV_VM_REMOVE, json_pack("{s:s}", "vm", id)},
        {AV_VM_REMOVE, json_pack("{s:s,s:I}", "vm", id, "uid", (json_int_t)1 << 40)},
        {AV_VM_PREPARE, json_pack("{s:s}", "vm", id)},
        {AV_VM_PREPARE, json_pack("{s:s,s:s,s:s,s:i}", "vm", id, "image_path", "relative.qcow2",
                                  "image_format", "qcow2", "disk_bytes", 1 << 20)},
        {AV_VM_PREPARE, json_pack("{s:s,s:s,s:s,s:i}", "vm", id, "image_path", "/etc/../etc/passwd",
                                  "image_format", "qcow2", "disk_bytes", 1 << 20)},
        {AV_VM_PREPARE, json_pack("{s:s,s:s,s:s,s:i}", "vm", id, "image_path", "/etc/passwd",
                                  "image_format", "vmdk", "disk_bytes", 1 << 20)},
        {AV_VM_PREPARE, json_pack("{s:s,s:s,s:s,s:i}", "vm", id, "image_path", "/etc/passwd",
                                  "image_format", "raw", "disk_bytes", 0)},
        {AV_VM_PREPARE, json_pack("{s:s,s:s,s:s,s:i,s:s}", "vm", id, "image_path", "/etc/passwd",
                                  "image_format", "raw", "disk_bytes", 1 << 20, "seed", "yes")},
    };
    size_t n = sizeof bad / sizeof bad[0];
    struct seen seen[sizeof bad / sizeof bad[0]];
    memset(seen, 0, sizeof seen);
    for (size_t i = 0; i < n; i++)
        assert_true(agent_call(a, bad[i].v, bad[i].args, on_reply, NULL, &seen[i]) > 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen[i].calls, 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(seen[i].calls, 1);
        if (seen[i].code != YE_INVALID_ARGUMENT)
            fail_msg("bad arguments #%zu answered %d", i, (int)seen[i].code);
    }
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("vm.end", &v), 0);
    assert_int_equal(v, AV_VM_END);
    assert_string_equal(agent_verb_name(AV_VM_REMOVE), "vm.remove");
    /* a VM with no QEMU and no connection: quit is an error, not a wait */
    struct seen q = {0};
    agent_call(a, AV_VM_QUIT, json_pack("{s:s}", "vm", id), on_reply, NULL, &q);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(q.calls, 1);
    assert_int_equal(q.code, YE_QEMU_ERROR);
    agent_free(a);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reply_from_loop),
                                       cmocka_unit_test(test_power_verbs_bad_args)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
