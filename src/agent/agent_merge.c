/*
 * agent_merge.c - host verbs for merging a snapshot being deleted: QEMU's
 * block-stream job into a running VM's chain (and its jobs' progress), and
 * the sweep of disk layers no record names. The decisions and the rows are
 * the controller's (ctl/snapshots_merge.c, ctl/snapshots_reconcile.c); an
 * offline merge is the disk.rebase verb (agent_disk.c). No store access;
 * QMP only over the VM's event connection; nothing blocks the loop.
 *
 *   vm.block_stream {"vm","job","top","from","base","backing_file"}
 *                   -> {"started": bool}
 *                   streams `from`'s data into `top` (both layers of the
 *                   running chain, `from` the one under `top`) down to
 *                   `base` (a layer, or the image's absolute path) as QEMU
 *                   job `job`; the top's header then names `backing_file`.
 *                   "started": false when `top` no longer sits on `from`
 *                   (already streamed); true when the job runs (also when
 *                   it was running already, or its reply was lost but the
 *                   job shows in query-block-jobs). Its end is the event
 *                   "vm.block_job" {"vm","job"[,"error"]}.
 *   vm.block_jobs   {"vm"} -> {"jobs": [{"job","offset","len"}]}
 *   vm.layers_sweep {"vm","keep": [file...]} -> {"removed": [file...]}
 *                   removes every disk*.qcow2 of the VM's directory not in
 *                   keep (a crash between making a layer and recording it).
 * A QMP verb with no reply within QMP_TIMEOUT_MS answers YE_QEMU_ERROR ("no
 * answer"): not "nothing happened".
 */
#include "agent/agent_local.h"
#include "compute/confine.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "compute/qmp.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QMP_TIMEOUT_MS 10000

/* A layer's bare name: disk.qcow2 or disk-XXXXXXXX.qcow2. */
static bool layer_ok(const char *f)
{
    size_t n = f ? strlen(f) : 0;
    return f && (!strcmp(f, "disk.qcow2") ||
                 (n == 19 && !strncmp(f, "disk-", 5) && !strcmp(f + 13, ".qcow2") &&
                  strspn(f + 5, "0123456789abcdef") == 8));
}

/* The image a chain ends in: an absolute path under the image library
 * (images_dir: DIR/images, or the cluster's shared library). */
static bool image_ok(struct agent_local *al, const char *p)
{
    char d[512];
    snprintf(d, sizeof d, "%s", al->cfg ? al->cfg->images_dir : "");
    const char *rest = p && p[0] == '/' && !path_has_dot_component(p) ? path_beneath(d, p) : NULL;
    return al->cfg && rest && *rest && strlen(p) < 400;
}

static bool job_ok(const char *j)
{
    return j && !strncmp(j, "yun-", 4) && strlen(j) < 32 &&
           strspn(j, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(j);
}

/* ---- QMP exchanges on the event connection, chained ---- */

typedef void (*mq_fn)(void *ctx, json_t *ret, const char *err);

/* One command in flight; it outlives a timeout (the watch holds it as its
 * callback's context) and is freed when the reply comes. */
struct mq {
    struct mq *next;
    mq_fn fn;
    void *ctx; /* NULL once answered by the timer */
    struct event *timer;
};
static struct mq *mqs;

static void mq_free(struct mq *q)
{
    struct mq **pp = &mqs;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp)
        *pp = q->next;
    if (q->timer)
        event_free(q->timer);
    free(q);
}

static void mq_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mq *q = arg;
    void *ctx = q->ctx;
    q->ctx = NULL;
    if (ctx)
        q->fn(ctx, NULL, "QEMU did not answer (no answer)");
}

static void mq_reply(void *arg, json_t *ret, const char *err)
{
    struct mq *q = arg;
    void *ctx = q->ctx;
    mq_fn fn = q->fn;
    mq_free(q);
    if (ctx)
        fn(ctx, ret, err);
}

/* Sends cmd to the VM's QEMU; fn runs once, from the loop (or at once with
 * an error when it cannot be sent: -1 then, fn not run). */
static int mq_send(struct agent_local *al, const char *vm_id, const char *cmd, json_t *args,
                   mq_fn fn, void *ctx, const char **why)
{
    struct vm_rt *rt = engine_rt_find(al->host, vm_id);
    if (!rt || !rt->watch) {
        *why = "yund holds no QMP connection to the vm";
        return -1;
    }
    struct mq *q = calloc(1, sizeof *q);
    if (!q || !(q->timer = evtimer_new(al->base, mq_timeout, q))) {
        free(q);
        *why = "out of memory";
        return -1;
    }
    q->fn = fn;
    q->ctx = ctx;
    if (qmp_watch_command(rt->watch, cmd, args, mq_reply, q) < 0) {
        event_free(q->timer);
        free(q);
        *why = "cannot send the command to QEMU";
        return -1;
    }
    q->next = mqs;
    mqs = q;
    struct timeval tv = {QMP_TIMEOUT_MS / 1000, (QMP_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(q->timer, &tv);
    return 0;
}

/* ---- vm.block_jobs ---- */

static json_t *jobs_of(json_t *ret)
{
    json_t *out = json_array();
    size_t i;
    json_t *j;
    json_array_foreach(ret, i, j)
    {
        const char *dev = json_string_value(json_object_get(j, "device"));
        if (dev)
            json_array_append_new(
                out, json_pack("{s:s,s:I,s:I}", "job", dev, "offset",
                               (json_int_t)json_integer_value(json_object_get(j, "offset")), "len",
                               (json_int_t)json_integer_value(json_object_get(j, "len"))));
    }
    return out;
}

static void on_jobs(void *ctx, json_t *ret, const char *err)
{
    struct agent_op *op = ctx;
    if (err)
        agent_op_fail(op, YE_QEMU_ERROR, "query-block-jobs: %s", err);
    else
        agent_op_reply(op, json_pack("{s:o}", "jobs", jobs_of(ret)), NULL);
}

static void block_jobs(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *vm, *why;
    if (!agent_op_host(al, op) || !(vm = agent_op_vm_id(op, args)))
        return;
    if (mq_send(al, vm, "query-block-jobs", NULL, on_jobs, op, &why) < 0)
        agent_op_fail(op, YE_UNAVAILABLE, "%s", why);
}

/* ---- vm.block_stream ---- */

struct stream {
    struct agent_local *al;
    struct agent_op *op;
    char vm[37], job[32];
    char top[512], from[512], base[512]; /* absolute paths */
    char backing_file[512];
    bool base_is_image;
};

static void stream_ok(struct stream *s, bool started)
{
    agent_op_reply(s->op, json_pack("{s:b}", "started", started), NULL);
    free(s);
}

static void stream_fail(struct stream *s, enum yerr_code code, const char *msg)
{
    agent_op_fail(s->op, code, "%s", msg ? msg : "error");
    free(s);
}

static bool has_job(json_t *ret, const char *job)
{
    size_t i;
    json_t *j;
    json_array_foreach(ret, i, j)
    {
        const char *dev = json_string_value(json_object_get(j, "device"));
        if (dev && !strcmp(dev, job))
            return true;
    }
    return false;
}

/* The path of the file a node is, from QEMU's name for it: plain (relative
 * names are in the VM's directory) or json:{..."file":{"filename":F}};
 * "" for the image, which QEMU has by fd (fdset QEMU_FDSET_IMAGE). */
static void node_path(struct stream *s, const char *name, char *out, size_t len, bool *image)
{
    json_t *j = NULL;
    *image = false;
    if (!strncmp(name, "json:", 5)) {
        j = json_loads(name + 5, 0, NULL);
        const char *f = json_string_value(json_object_get(json_object_get(j, "file"), "filename"));
        name = f ? f : "";
    }
    char set[32];
    snprintf(set, sizeof set, "/dev/fdset/%d", QEMU_FDSET_IMAGE);
    struct vm_rec vm = {0};
    snprintf(vm.id, sizeof vm.id, "%s", s->vm);
    if (!strcmp(name, set)) {
        *image = true;
        out[0] = 0;
    } else {
        vm_qemu_abs(s->al->host, &vm, name, out, len);
    }
    json_decref(j);
}

/* The format node for a file (not the protocol node under it, nor a
 * filter over it: a running stream puts a copy-on-read node on its top). */
static json_t *node_for(struct stream *s, json_t *nodes, const char *file, bool image)
{
    size_t i;
    json_t *nd;
    json_array_foreach(nodes, i, nd)
    {
        const char *f = json_string_value(json_object_get(nd, "file"));
        const char *drv = json_string_value(json_object_get(nd, "drv"));
        char path[512];
        bool is_image;
        if (!f || !drv || (strcmp(drv, "qcow2") && strcmp(drv, "raw")))
            continue;
        node_path(s, f, path, sizeof path, &is_image);
        if ((image && is_image) || (path[0] && !strcmp(path, file)))
            return nd;
    }
    return NULL;
}

static void on_stream_recheck(void *ctx, json_t *ret, const char *err)
{
    struct stream *s = ctx;
    if (!err && has_job(ret, s->job)) /* the reply was lost but the job runs */
        stream_ok(s, true);
    else
        stream_fail(s, YE_QEMU_ERROR, err ? err : "block-stream failed");
}

static void on_stream_started(void *ctx, json_t *ret, const char *err)
{
    struct stream *s = ctx;
    (void)ret;
    const char *why;
    if (!err) {
        stream_ok(s, true);
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "block-stream: %s", err);
    if (mq_send(s->al, s->vm, "query-block-jobs", NULL, on_stream_recheck, s, &why) < 0)
        stream_fail(s, YE_QEMU_ERROR, msg);
}

static void on_nodes(void *ctx, json_t *nodes, const char *err)
{
    struct stream *s = ctx;
    if (err) {
        stream_fail(s, YE_QEMU_ERROR, err);
        return;
    }
    json_t *t = node_for(s, nodes, s->top, false);
    json_t *b = node_for(s, nodes, s->base, s->base_is_image);
    if (!t || !b) {
        char msg[600];
        snprintf(msg, sizeof msg, "QEMU does not have %s open", t ? s->base : s->top);
        stream_fail(s, YE_QEMU_ERROR, msg);
        return;
    }
    const char *tb = json_string_value(json_object_get(t, "backing_file"));
    char tback[512] = "";
    bool img;
    if (tb)
        node_path(s, tb, tback, sizeof tback, &img);
    if (!tb || strcmp(tback, s->from)) {
        /* already streamed (yund restarted while the job ran) */
        stream_ok(s, false);
        return;
    }
    /* the top's header is to name the base as yund does, not as QEMU */
    json_t *a = json_pack("{s:s,s:s,s:s,s:s}", "job-id", s->job, "device",
                          json_string_value(json_object_get(t, "node-name")), "base-node",
                          json_string_value(json_object_get(b, "node-name")), "backing-file",
                          s->backing_file);
    const char *why;
    int rc = mq_send(s->al, s->vm, "block-stream", a, on_stream_started, s, &why);
    json_decref(a);
    if (rc < 0)
        stream_fail(s, YE_UNAVAILABLE, why);
}

static void on_stream_jobs(void *ctx, json_t *ret, const char *err)
{
    struct stream *s = ctx;
    const char *why;
    if (err)
        stream_fail(s, YE_QEMU_ERROR, err);
    else if (has_job(ret, s->job))
        stream_ok(s, true);
    else if (mq_send(s->al, s->vm, "query-named-block-nodes", NULL, on_nodes, s, &why) < 0)
        stream_fail(s, YE_UNAVAILABLE, why);
}

static void block_stream(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *vm, *why;
    if (!e || !(vm = agent_op_vm_id(op, args)))
        return;
    const char *job = json_string_value(json_object_get(args, "job"));
    const char *top = json_string_value(json_object_get(args, "top"));
    const char *from = json_string_value(json_object_get(args, "from"));
    const char *base = json_string_value(json_object_get(args, "base"));
    const char *bf = json_string_value(json_object_get(args, "backing_file"));
    bool base_image = image_ok(al, base);
    if (!job_ok(job) || !layer_ok(top) || !layer_ok(from) || !(layer_ok(base) || base_image) ||
        !bf || (base_image ? strcmp(bf, base) != 0 : !layer_ok(bf))) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.block_stream: job, top, from (layers), base (a layer or the "
                      "image) and backing_file");
        return;
    }
    struct stream *s = calloc(1, sizeof *s);
    if (!s) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    s->al = al;
    s->op = op;
    s->base_is_image = base_image;
    snprintf(s->vm, sizeof s->vm, "%s", vm);
    snprintf(s->job, sizeof s->job, "%s", job);
    snprintf(s->backing_file, sizeof s->backing_file, "%s", bf);
    struct vm_rec r = {0};
    snprintf(r.id, sizeof r.id, "%s", vm);
    engine_vm_path(e, &r, top, s->top, sizeof s->top);
    engine_vm_path(e, &r, from, s->from, sizeof s->from);
    if (base_image)
        snprintf(s->base, sizeof s->base, "%s", base);
    else
        engine_vm_path(e, &r, base, s->base, sizeof s->base);
    if (mq_send(al, vm, "query-block-jobs", NULL, on_stream_jobs, s, &why) < 0)
        stream_fail(s, YE_UNAVAILABLE, why);
}

/* ---- vm.layers_sweep ---- */

static bool in_keep(json_t *keep, const char *f)
{
    size_t i;
    json_t *k;
    json_array_foreach(keep, i, k)
    {
        const char *s = json_string_value(k);
        if (s && !strcmp(s, f))
            return true;
    }
    return false;
}

static void layers_sweep(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *vm;
    if (!e || !(vm = agent_op_vm_id(op, args)))
        return;
    json_t *keep = json_object_get(args, "keep");
    size_t i;
    json_t *k;
    bool ok = json_is_array(keep);
    json_array_foreach(keep, i, k) ok = ok && json_is_string(k);
    if (!ok) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: vm.layers_sweep: keep (file names)");
        return;
    }
    struct vm_rec r = {0};
    snprintf(r.id, sizeof r.id, "%s", vm);
    char dir[512];
    engine_vm_path(e, &r, NULL, dir, sizeof dir);
    json_t *removed = json_array();
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *f = de->d_name;
        size_t l = strlen(f);
        if (strncmp(f, "disk", 4) || l < 6 || strcmp(f + l - 6, ".qcow2") || in_keep(keep, f))
            continue;
        char path[800];
        snprintf(path, sizeof path, "%s/%s", dir, f);
        if (unlink(path) == 0)
            json_array_append_new(removed, json_string(f));
    }
    if (d)
        closedir(d);
    agent_op_reply(op, json_pack("{s:o}", "removed", removed), NULL);
}

/* ---- the block job events ---- */

static void on_block_job(void *ctx, const char *vm_id, const char *event, json_t *data)
{
    struct agent_local *al = ctx;
    bool cancelled = !strcmp(event, "BLOCK_JOB_CANCELLED");
    if (strcmp(event, "BLOCK_JOB_COMPLETED") && !cancelled)
        return;
    const char *dev = json_string_value(json_object_get(data, "device"));
    const char *error = cancelled ? "the block job was cancelled"
                                  : json_string_value(json_object_get(data, "error"));
    if (!dev)
        return;
    json_t *ev = json_pack("{s:s,s:s}", "vm", vm_id, "job", dev);
    if (error)
        json_object_set_new(ev, "error", json_string(error));
    agent_emit(&al->pub, "vm.block_job", ev);
    json_decref(ev);
}

void agent_merge_attach(struct agent_local *al)
{
    struct engine *e = al->host;
    if (!e)
        return;
    e->on_block_job = on_block_job;
    e->on_block_job_ctx = al;
}

const struct agent_verb_def agent_merge_verbs[] = {
    {AV_VM_BLOCK_STREAM, "vm.block_stream", block_stream},
    {AV_VM_BLOCK_JOBS, "vm.block_jobs", block_jobs},
    {AV_VM_LAYERS_SWEEP, "vm.layers_sweep", layers_sweep},
};
const size_t agent_merge_verbs_count = sizeof agent_merge_verbs / sizeof agent_merge_verbs[0];
