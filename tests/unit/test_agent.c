/* test_agent.c - the in-process agent's call mechanism: replies come from the
 * loop (never inside agent_call), exactly once; bad arguments, unknown verbs
 * and forgotten callers; the snapshot merge verbs' argument checks, the layer
 * sweep and the block-job event (agent_merge.c). */
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
    g->res = result ? json_incref(result) : NULL;
}

struct evseen {
    int n;
    char type[32], job[32], error[64];
};

static void on_ev(void *ctx, const char *type, json_t *ev)
{
    struct evseen *s = ctx;
    s->n++;
    snprintf(s->type, sizeof s->type, "%s", type);
    const char *j = json_string_value(json_object_get(ev, "job"));
    const char *e = json_string_value(json_object_get(ev, "error"));
    snprintf(s->job, sizeof s->job, "%s", j ? j : "");
    snprintf(s->error, sizeof s->error, "%s", e ? e : "");
}

static void touch(const char *dir, const char *f)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, f);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
}

static bool exists(const char *dir, const char *f)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, f);
    return access(p, F_OK) == 0;
}

static void test_merge_verbs(void **st)
{
    (void)st;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    char tmp[] = "/tmp/yun-test-agent-XXXXXX";
    assert_non_null(mkdtemp(tmp));
    snprintf(e.vms_dir, sizeof e.vms_dir, "%s", tmp);
    const char *id = "0123abcd-0000-0000-0000-000000000000";
    char vmdir[400];
    snprintf(vmdir, sizeof vmdir, "%s/%s", tmp, id);
    assert_int_equal(mkdir(vmdir, 0700), 0);
    touch(vmdir, "disk.qcow2");
    touch(vmdir, "disk-0000aaaa.qcow2");
    touch(vmdir, "disk-0000bbbb.qcow2");
    touch(vmdir, "console.log");
    struct agent *a = agent_local_new(base, NULL, &e);
    struct evseen seen = {0};
    assert_int_equal(agent_subscribe(a, on_ev, &seen), 0);

    struct got bad_vm = {0}, bad_job = {0}, bad_top = {0}, bad_base = {0}, no_qmp = {0}, jobs = {0},
               bad_keep = {0}, swept = {0};
    agent_call(a, AV_VM_BLOCK_STREAM,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "vm", "../x", "job", "yun-merge-1", "top",
                         "disk-0000aaaa.qcow2", "from", "disk.qcow2", "base", "disk.qcow2",
                         "backing_file", "disk.qcow2"),
               on_got, NULL, &bad_vm);
    agent_call(a, AV_VM_BLOCK_STREAM,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "vm", id, "job", "x; rm", "top",
                         "disk-0000aaaa.qcow2", "from", "disk.qcow2", "base", "disk.qcow2",
                         "backing_file", "disk.qcow2"),
               on_got, NULL, &bad_job);
    agent_call(a, AV_VM_BLOCK_STREAM,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "vm", id, "job", "yun-merge-1", "top",
                         "../../etc/passwd", "from", "disk.qcow2", "base", "disk.qcow2",
                         "backing_file", "disk.qcow2"),
               on_got, NULL, &bad_top);
    /* without a state directory no path is an image */
    agent_call(a, AV_VM_BLOCK_STREAM,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "vm", id, "job", "yun-merge-1", "top",
                         "disk-0000aaaa.qcow2", "from", "disk.qcow2", "base", "/etc/passwd",
                         "backing_file", "/etc/passwd"),
               on_got, NULL, &bad_base);
    agent_call(a, AV_VM_BLOCK_STREAM,
               json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "vm", id, "job", "yun-merge-1", "top",
                         "disk-0000aaaa.qcow2", "from", "disk-0000bbbb.qcow2", "base", "disk.qcow2",
                         "backing_file", "disk.qcow2"),
               on_got, NULL, &no_qmp);
    agent_call(a, AV_VM_BLOCK_JOBS, json_pack("{s:s}", "vm", id), on_got, NULL, &jobs);
    agent_call(a, AV_VM_LAYERS_SWEEP, json_pack("{s:s,s:[i]}", "vm", id, "keep", 1), on_got, NULL,
               &bad_keep);
    agent_call(a, AV_VM_LAYERS_SWEEP,
               json_pack("{s:s,s:[s,s]}", "vm", id, "keep", "disk.qcow2", "disk-0000bbbb.qcow2"),
               on_got, NULL, &swept);
    assert_int_equal(swept.calls, 0); /* never inside the call */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(bad_vm.code, YE_INVALID_ARGUMENT);
    assert_int_equal(bad_job.code, YE_INVALID_ARGUMENT);
    assert_int_equal(bad_top.code, YE_INVALID_ARGUMENT);
    assert_int_equal(bad_base.code, YE_INVALID_ARGUMENT);
    assert_int_equal(no_qmp.code, YE_UNAVAILABLE); /* no QMP connection: not a verdict */
    assert_int_equal(jobs.code, YE_UNAVAILABLE);
    assert_int_equal(bad_keep.code, YE_INVALID_ARGUMENT);
    assert_int_equal(swept.code, YE_NONE);
    json_t *removed = json_object_get(swept.res, "removed");
    assert_int_equal(json_array_size(removed), 1);
    assert_string_equal(json_string_value(json_array_get(removed, 0)), "disk-0000aaaa.qcow2");
    assert_true(exists(vmdir, "disk.qcow2"));
    assert_true(exists(vmdir, "disk-0000bbbb.qcow2"));
    assert_false(exists(vmdir, "disk-0000aaaa.qcow2"));
    assert_true(exists(vmdir, "console.log")); /* only disk layers */
    json_decref(swept.res);
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("vm.block_stream", &v), 0);
    assert_int_equal(v, AV_VM_BLOCK_STREAM);

    /* QEMU's block-job events become the agent's "vm.block_job" */
    assert_non_null(e.on_block_job);
    json_t *d = json_pack("{s:s,s:s}", "device", "yun-merge-0123abcd", "error", "EIO");
    e.on_block_job(e.on_block_job_ctx, id, "BLOCK_JOB_COMPLETED", d);
    json_decref(d);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.type, "vm.block_job");
    assert_string_equal(seen.job, "yun-merge-0123abcd");
    assert_string_equal(seen.error, "EIO");
    d = json_pack("{s:s}", "device", "yun-merge-0123abcd");
    e.on_block_job(e.on_block_job_ctx, id, "BLOCK_JOB_READY", d); /* not an end */
    assert_int_equal(seen.n, 1);
    e.on_block_job(e.on_block_job_ctx, id, "BLOCK_JOB_CANCELLED", d);
    json_decref(d);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.error, "the block job was cancelled");

    agent_free(a);
    event_base_free(base);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reply_from_loop),
                                       cmocka_unit_test(test_merge_verbs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
