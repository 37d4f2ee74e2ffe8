/* test_agent_hotplug.c - the volume hot-plug verbs (agent_hotplug.c): bad
 * arguments answer YE_INVALID_ARGUMENT from the loop and touch nothing; a
 * well-formed call on a VM yund holds no QMP connection to answers
 * YE_UNAVAILABLE (not a verdict on the volume). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_local.h"
#include "compute/engine.h"
#include "lib/config.h"
#include "lib/util.h"

struct got {
    int calls;
    enum yerr_code code;
};

static void on_got(void *ctx, json_t *result, const struct yerr *err)
{
    struct got *g = ctx;
    g->calls++;
    g->code = err ? err->code : YE_NONE;
    assert_true((result == NULL) == (err != NULL));
}

static void test_hotplug_bad_args(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-hotplug-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pool[600], vol[700], outside[700];
    snprintf(pool, sizeof pool, "%s/pools/default", dir);
    assert_int_equal(mkdir_p(pool, 0700), 0);
    snprintf(vol, sizeof vol, "%s/v1.qcow2", pool);
    snprintf(outside, sizeof outside, "%s/elsewhere.qcow2", dir);
    FILE *f = fopen(vol, "w");
    assert_non_null(f);
    fclose(f);
    f = fopen(outside, "w");
    assert_non_null(f);
    fclose(f);

    struct yun_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, &cfg, &e);
    const char *id = "0123abcd-0000-0000-0000-000000000000";
    char dotted[800];
    snprintf(dotted, sizeof dotted, "%s/../../elsewhere.qcow2", pool);
    struct {
        enum agent_verb v;
        json_t *args;
        enum yerr_code want;
    } calls[] = {
        {AV_VM_VOLUME_PLUG, json_object(), YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG,
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", "../x", "node", "vol-1", "device",
                   "vdev-1", "serial", "yun1", "chain", "path", vol, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a node name QEMU would take as JSON */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "a\",\"x", "device",
                   "vdev-1", "serial", "yun1", "chain", "path", vol, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* no serial */
         json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "chain", "path", vol, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* an empty chain */
         json_pack("{s:s,s:s,s:s,s:s,s:[]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a file outside the pool */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", outside, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* out of the pool through .. */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", dotted, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a format qemu would probe */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", vol, "format", "vmdk"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a backing layer that is not a pool file */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s},{s:s,s:s}]}", "vm", id, "node", "vol-1", "device",
                   "vdev-1", "serial", "yun1", "chain", "path", vol, "format", "qcow2", "path",
                   "/etc/passwd", "format", "raw"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s}", "vm", id), YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s,s:s}", "vm", id, "device", ""), YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s,s:s,s:i}", "vm", id, "device", "vdev-1", "node", 3),
         YE_INVALID_ARGUMENT},
        {AV_VM_NODE_CLOSE, json_pack("{s:s}", "vm", id), YE_INVALID_ARGUMENT},
        {AV_VM_DEVICES, json_pack("{s:i}", "vm", 1), YE_INVALID_ARGUMENT},
        /* well-formed, but yund holds no QMP connection to that VM */
        {AV_VM_VOLUME_PLUG,
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", vol, "format", "qcow2"),
         YE_UNAVAILABLE},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s,s:s}", "vm", id, "device", "vdev-1"), YE_UNAVAILABLE},
        {AV_VM_NODE_CLOSE, json_pack("{s:s,s:s}", "vm", id, "node", "vol-1"), YE_UNAVAILABLE},
        {AV_VM_DEVICES, json_pack("{s:s}", "vm", id), YE_UNAVAILABLE},
    };
    size_t n = sizeof calls / sizeof calls[0];
    struct got got[sizeof calls / sizeof calls[0]];
    memset(got, 0, sizeof got);
    for (size_t i = 0; i < n; i++)
        assert_true(agent_call(a, calls[i].v, calls[i].args, on_got, NULL, &got[i]) > 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].calls, 0); /* never inside the call */
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].calls, 1);
        if (got[i].code != calls[i].want)
            fail_msg("call #%zu answered %d, not %d", i, (int)got[i].code, (int)calls[i].want);
    }
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("vm.volume_plug", &v), 0);
    assert_int_equal(v, AV_VM_VOLUME_PLUG);
    assert_string_equal(agent_verb_name(AV_VM_DEVICES), "vm.devices");
    agent_free(a);
    event_base_free(base);
    unlink(vol);
    unlink(outside);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hotplug_bad_args)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
