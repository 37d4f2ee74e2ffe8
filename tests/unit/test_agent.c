/* test_agent.c - the in-process agent's call mechanism: replies come from the
 * loop (never inside agent_call), exactly once; bad arguments, unknown verbs
 * and forgotten callers; the snapshot merge verbs' argument checks, the layer
 * sweep and the block-job event (agent_merge.c). And disk.inspect on a real
 * qemu-img: a file from an import directory judged, its identity required by
 * the copy of it. image.remove's argument checks and its rm job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_local.h"
#include "compute/engine.h"
#include "lib/config.h"
#include "lib/util.h"

struct seen {
    int calls;
    enum yerr_code code;
    json_int_t cpus;
    json_t *result;
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->calls++;
    s->code = err ? err->code : YE_NONE;
    assert_true((result == NULL) == (err != NULL));
    if (result)
        s->cpus = json_integer_value(json_object_get(result, "cpus"));
    json_decref(s->result);
    s->result = result ? json_incref(result) : NULL;
}

static void wait_reply(struct event_base *b, struct seen *s)
{
    for (int i = 0; i < 3000 && !s->calls; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(b, &tv);
        event_base_dispatch(b);
    }
    assert_int_equal(s->calls, 1);
}

/* One call, waited for: its error code (YE_NONE on success; s->result). */
static enum yerr_code call(struct agent *a, struct event_base *b, enum agent_verb v, json_t *args,
                           struct seen *s)
{
    json_decref(s->result);
    memset(s, 0, sizeof *s);
    assert_true(agent_call(a, v, args, on_reply, NULL, s) > 0);
    wait_reply(b, s);
    return s->code;
}

static void write_file(const char *path, size_t len, char byte)
{
    char *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, byte, len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
}

static void test_disk_inspect_identity(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-test-agent-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct yun_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    snprintf(cfg.images_dir, sizeof cfg.images_dir, "%s/images", dir);
    snprintf(cfg.qemu_img, sizeof cfg.qemu_img, "qemu-img");
    snprintf(cfg.import_dirs, sizeof cfg.import_dirs, "%s/exchange", dir);
    char exch[300], pool[300], good[400], ragged[400], dst[400];
    snprintf(exch, sizeof exch, "%s/exchange", dir);
    snprintf(pool, sizeof pool, "%s/pools/default", dir);
    assert_int_equal(mkdir_p(exch, 0700), 0);
    assert_int_equal(mkdir_p(pool, 0700), 0);
    snprintf(good, sizeof good, "%s/good.raw", exch);
    snprintf(ragged, sizeof ragged, "%s/ragged.raw", exch);
    snprintf(dst, sizeof dst, "%s/v.raw", pool);
    write_file(good, 1 << 20, 1);
    write_file(ragged, 1000, 1);

    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, &cfg, &e);
    struct seen s = {0};
    /* outside input: no import flag, a format it cannot be, outside import_dirs */
    assert_int_equal(call(a, base, AV_DISK_INSPECT, json_pack("{s:s}", "path", good), &s),
                     YE_INVALID_ARGUMENT);
    assert_int_equal(call(a, base, AV_DISK_INSPECT,
                          json_pack("{s:s,s:b,s:s}", "path", good, "import", 1, "format", "vmdk"),
                          &s),
                     YE_INVALID_ARGUMENT);
    assert_int_equal(call(a, base, AV_DISK_INSPECT,
                          json_pack("{s:s,s:b}", "path", "/etc/passwd", "import", 1), &s),
                     YE_INVALID_ARGUMENT);
    /* not whole sectors: no disk image; a format it is not */
    assert_int_equal(
        call(a, base, AV_DISK_INSPECT, json_pack("{s:s,s:b}", "path", ragged, "import", 1), &s),
        YE_INVALID_IMAGE);
    assert_int_equal(call(a, base, AV_DISK_INSPECT,
                          json_pack("{s:s,s:b,s:s}", "path", good, "import", 1, "format", "qcow2"),
                          &s),
                     YE_INVALID_IMAGE);
    /* a good one: its format, size and identity */
    assert_int_equal(
        call(a, base, AV_DISK_INSPECT, json_pack("{s:s,s:b}", "path", good, "import", 1), &s),
        YE_NONE);
    assert_string_equal(json_string_value(json_object_get(s.result, "format")), "raw");
    assert_int_equal(json_integer_value(json_object_get(s.result, "virtual_size")), 1 << 20);
    char identity[128];
    snprintf(identity, sizeof identity, "%s",
             json_string_value(json_object_get(s.result, "identity")));
    assert_true(identity[0]);
    /* the file written to since: the copy refuses it, and leaves nothing */
    write_file(good, 1 << 20, 2);
    json_t *copy = json_pack("{s:s,s:s,s:b,s:s,s:s,s:s}", "src", good, "src_format", "raw",
                             "import", 1, "identity", identity, "dst", dst, "dst_format", "raw");
    assert_int_equal(call(a, base, AV_DISK_COPY, json_incref(copy), &s), YE_CONFLICT);
    assert_false(path_exists(dst));
    /* judged again, it is copied */
    assert_int_equal(
        call(a, base, AV_DISK_INSPECT, json_pack("{s:s,s:b}", "path", good, "import", 1), &s),
        YE_NONE);
    json_object_set(copy, "identity", json_object_get(s.result, "identity"));
    assert_int_equal(call(a, base, AV_DISK_COPY, copy, &s), YE_NONE);
    assert_true(path_exists(dst));
    json_decref(s.result);
    agent_free(a);
    event_base_free(base);
    remove_tree(dir);
}

/* image.remove: only an image's own directory under images/ (outside
 * input otherwise), removed with what it holds, nothing left aside; a
 * directory already gone is no error. */
static void test_image_remove(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-test-agent-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct yun_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    char img[300], sub[400], file[500], images[300], pool[300];
    snprintf(images, sizeof images, "%s/images", dir);
    snprintf(cfg.images_dir, sizeof cfg.images_dir, "%s", images); /* as config_load sets it */
    snprintf(img, sizeof img, "%s/images/tiny", dir);
    snprintf(sub, sizeof sub, "%s/sub", img);
    snprintf(file, sizeof file, "%s/disk.qcow2", sub);
    snprintf(pool, sizeof pool, "%s/pools/default", dir);
    assert_int_equal(mkdir_p(sub, 0700), 0);
    assert_int_equal(mkdir_p(pool, 0700), 0);
    write_file(file, 4096, 1);

    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, &cfg, &e);
    struct seen s = {0};
    const char *bad[] = {images, sub, pool, "/etc", "relative/x", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(call(a, base, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", bad[i]), &s),
                         YE_INVALID_ARGUMENT);
    char dots[400];
    snprintf(dots, sizeof dots, "%s/images/../pools", dir);
    assert_int_equal(call(a, base, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", dots), &s),
                     YE_INVALID_ARGUMENT);
    assert_int_equal(call(a, base, AV_IMAGE_REMOVE, json_pack("{s:i}", "dir", 1), &s),
                     YE_INVALID_ARGUMENT);
    assert_true(path_exists(file) && path_exists(pool));
    assert_int_equal(call(a, base, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", img), &s), YE_NONE);
    assert_false(path_exists(img));
    char aside[400];
    snprintf(aside, sizeof aside, "%s/images/.tiny.removing", dir);
    assert_false(path_exists(aside));
    assert_true(path_exists(images) && path_exists(pool));
    assert_int_equal(call(a, base, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", img), &s), YE_NONE);
    json_decref(s.result);
    agent_free(a);
    event_base_free(base);
    remove_tree(dir);
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
    json_decref(ok.result);
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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_from_loop), cmocka_unit_test(test_disk_inspect_identity),
        cmocka_unit_test(test_power_verbs_bad_args), cmocka_unit_test(test_merge_verbs),
        cmocka_unit_test(test_image_remove)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
