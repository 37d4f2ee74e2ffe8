/* test_agent_attach.c - the reconcile pass's host verbs (agent_attach.c):
 * argument checks, vm.attach of a VM with no QEMU (its runtime entry goes),
 * host.orphans naming only unknown VM directories, host.housekeep cutting a
 * console log back, and engine_reconcile_soon raising "host.reconcile". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_local.h"
#include "compute/engine.h"
#include "lib/config.h"
#include "lib/util.h"

struct got {
    int calls;
    enum yerr_code code;
    json_t *res;
};

static void on_got(void *ctx, json_t *result, const struct yerr *err)
{
    struct got *g = ctx;
    g->calls++;
    g->code = err ? err->code : YE_NONE;
    json_decref(g->res);
    g->res = result ? json_incref(result) : NULL;
}

static enum yerr_code call(struct agent *a, struct event_base *b, enum agent_verb v, json_t *args,
                           struct got *g)
{
    json_decref(g->res);
    memset(g, 0, sizeof *g);
    assert_true(agent_call(a, v, args, on_got, NULL, g) > 0);
    assert_int_equal(g->calls, 0); /* never from inside agent_call */
    for (int i = 0; i < 100 && !g->calls; i++)
        event_base_loop(b, EVLOOP_NONBLOCK);
    assert_int_equal(g->calls, 1);
    return g->code;
}

static int reconcile_events;
static void on_event(void *ctx, const char *type, json_t *ev)
{
    (void)ctx;
    (void)ev;
    if (!strcmp(type, "host.reconcile"))
        reconcile_events++;
}

static void test_attach_verbs(void **st)
{
    (void)st;
    char tmp[] = "/tmp/yun-test-attach-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    struct yun_config cfg;
    config_defaults(&cfg);
    cfg.console_log_max = 4096;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    e.base = base;
    e.cfg = &cfg;
    snprintf(e.vms_dir, sizeof e.vms_dir, "%s/vms", tmp);
    assert_int_equal(mkdir(e.vms_dir, 0700), 0);
    struct agent *a = agent_local_new(base, &cfg, &e);

    const char *known = "0123abcd-0000-4000-8000-000000000001";
    const char *orphan = "0123abcd-0000-4000-8000-000000000002";
    char d[600];
    snprintf(d, sizeof d, "%s/%s", e.vms_dir, known);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(d, sizeof d, "%s/%s", e.vms_dir, orphan);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(d, sizeof d, "%s/not-a-vm-id_", e.vms_dir);
    assert_int_equal(mkdir(d, 0700), 0);

    struct got g = {0};
    /* bad arguments */
    assert_int_equal(call(a, base, AV_VM_ATTACH, json_pack("{s:s}", "vm", known), &g),
                     YE_INVALID_ARGUMENT); /* no uid */
    assert_int_equal(call(a, base, AV_VM_ATTACH,
                          json_pack("{s:s,s:i,s:i}", "vm", known, "uid", 0, "pid", -1), &g),
                     YE_INVALID_ARGUMENT);
    assert_int_equal(call(a, base, AV_VM_ATTACH,
                          json_pack("{s:s,s:i,s:i}", "vm", known, "uid", 0, "cpu_weight", 10001),
                          &g),
                     YE_INVALID_ARGUMENT);
    assert_int_equal(call(a, base, AV_HOST_ORPHANS, json_object(), &g), YE_INVALID_ARGUMENT);
    assert_int_equal(call(a, base, AV_HOST_HOUSEKEEP, json_pack("{s:s}", "vms", "x"), &g),
                     YE_INVALID_ARGUMENT);

    /* a VM with no QEMU: gone, and yund held no connection to it; its
     * runtime entry (no watch, no restart) goes */
    struct vm_rec vm = {0};
    snprintf(vm.id, sizeof vm.id, "%s", known);
    snprintf(vm.name, sizeof vm.name, "k");
    assert_non_null(engine_rt_get(&e, &vm));
    assert_int_equal(call(a, base, AV_VM_ATTACH,
                          json_pack("{s:s,s:s,s:i,s:i,s:b,s:i}", "vm", known, "name", "k", "uid", 0,
                                    "pid", 0, "check", 1, "pass", 1),
                          &g),
                     YE_NONE);
    assert_string_equal(json_string_value(json_object_get(g.res, "seen")), "gone");
    assert_true(json_is_true(json_object_get(g.res, "fresh")));
    assert_false(json_is_true(json_object_get(g.res, "shutdown_seen")));
    assert_null(engine_rt_find(&e, known));

    /* only the unknown directory shaped like a VM id is an orphan */
    assert_int_equal(
        call(a, base, AV_HOST_ORPHANS, json_pack("{s:[s],s:i}", "known", known, "pass", 1), &g),
        YE_NONE);
    json_t *o = json_object_get(g.res, "orphans");
    assert_int_equal(json_array_size(o), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0), "vm")), orphan);
    assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0), "seen")), "gone");

    /* a console log past its cap is cut back */
    char log[700];
    snprintf(log, sizeof log, "%s/%s/console.log", e.vms_dir, known);
    FILE *f = fopen(log, "w");
    assert_non_null(f);
    for (int i = 0; i < 1000; i++)
        fputs("0123456789\n", f);
    fclose(f);
    assert_int_equal(
        call(a, base, AV_HOST_HOUSEKEEP, json_pack("{s:[s,s]}", "vms", known, orphan), &g),
        YE_NONE);
    json_t *cut = json_object_get(g.res, "cut");
    assert_int_equal(json_array_size(cut), 1);
    assert_string_equal(json_string_value(json_array_get(cut, 0)), known);
    struct stat sb;
    assert_int_equal(stat(log, &sb), 0);
    assert_true(sb.st_size <= 4096);

    /* a pass wanted soon is the controller's: an agent event */
    assert_int_equal(agent_subscribe(a, on_event, NULL), 0);
    engine_reconcile_soon(&e);
    assert_int_equal(reconcile_events, 1);

    json_decref(g.res);
    agent_free(a);
    event_base_free(base);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attach_verbs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
