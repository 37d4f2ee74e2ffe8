/*
 * images_fetch.c - an image made available on a host that does not mount
 * the cluster's library (docs/cluster.md, "Images"): which hosts read the
 * library itself (images_dir the controller's), the image's paths as a
 * host sees them, and the task "image.fetch" that copies an image's files
 * to a host that lacks them: the checksums first when the image has none
 * yet (sha256sum, a job, off the loop; kept in images.sha256), then the
 * agent's image.fetch (it GETs /v1/cluster/images/NAME/FILE with its own
 * credential and verifies size and checksum before renaming into place),
 * then the host's copy recorded (host_images). Every caller needing the
 * same image on the same host waits for the one task. The host's copy is
 * recorded only after the agent verified it, so an interrupted fetch
 * (either side killed) leaves no copy any VM is given; its task ends
 * failed at the controller's restart and the next create fetches again.
 */
#include "ctl/images_fetch.h"
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/hosts_int.h"
#include "ctl/tasks.h"
#include "lib/config.h"
#include "lib/failpoint.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/sha256.h"
#include "lib/util.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct waiter {
    struct waiter *next;
    ctl_image_ready_fn done;
    void *ctx;
};

struct fetch_op {
    struct fetch_op *next;
    struct ctl *c;
    char host[37];
    struct image_rec img;
    char task[37];
    uint64_t call;
    struct job *sum;
    struct waiter *waiters;
};

static struct fetch_op *ops;

bool ctl_host_shares_library(struct ctl *c, const char *host_id)
{
    const struct ctl_host *h = ctl_host_facts(c, host_id);
    return !h || !h->images_dir[0] || !strcmp(h->images_dir, c->cfg->images_dir);
}

/* path under the library -> the same under dir; unchanged otherwise. */
static void rebase(char *path, size_t len, const char *lib, const char *dir)
{
    const char *rest = path[0] ? path_beneath(lib, path) : NULL;
    if (!rest || !*rest)
        return;
    char out[1024];
    if (snprintf_checked(out, sizeof out, "%s/%s", dir, rest) >= 0 && strlen(out) < len)
        snprintf(path, len, "%s", out);
}

void ctl_image_on_host(struct ctl *c, const char *host_id, struct image_rec *img)
{
    if (ctl_host_shares_library(c, host_id))
        return;
    const char *dir = ctl_host_facts(c, host_id)->images_dir;
    rebase(img->path, sizeof img->path, c->cfg->images_dir, dir);
    rebase(img->kernel, sizeof img->kernel, c->cfg->images_dir, dir);
    rebase(img->initrd, sizeof img->initrd, c->cfg->images_dir, dir);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

bool ctl_image_serves(const struct image_rec *img, const char *file, char path[512])
{
    const char *files[3] = {img->path, img->kernel, img->initrd};
    for (int i = 0; i < 3; i++)
        if (files[i][0] && !strcmp(base_name(files[i]), file)) {
            snprintf(path, 512, "%s", files[i]);
            return true;
        }
    return false;
}

static void op_free(struct fetch_op *op)
{
    for (struct fetch_op **p = &ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            break;
        }
    while (op->waiters) {
        struct waiter *w = op->waiters;
        op->waiters = w->next;
        free(w);
    }
    ctl_agents_forget(op->c, op);
    free(op);
}

/* Every waiter told (err NULL: the host has it), the op gone. */
static void op_end(struct fetch_op *op, const struct yerr *err)
{
    struct waiter *w = op->waiters;
    op->waiters = NULL;
    struct ctl *c = op->c;
    if (err)
        task_fail(c->tasks, op->task, err);
    op_free(op);
    while (w) {
        struct waiter *next = w->next;
        if (w->done)
            w->done(w->ctx, err);
        free(w);
        w = next;
    }
}

static void op_fail(struct fetch_op *op, const struct yerr *err)
{
    struct yerr e = *err;
    if (e.code != YE_CANCELLED)
        yerr_wrap(&e, "fetching image '%s' to host %s failed: ", op->img.name,
                  ctl_host_name(op->c, op->host));
    ctl_event(op->c, "image", op->img.name, "fetch", "error", "%s", e.message);
    op_end(op, &e);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct fetch_op *op = ctx;
    task_progress(op->c->tasks, op->task, done, total);
}

static void on_fetched(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct fetch_op *op = ctx;
    struct ctl *c = op->c;
    op->call = 0;
    if (aerr)
        return op_fail(op, aerr);
    struct host_image_rec h = {0};
    snprintf(h.host, sizeof h.host, "%s", op->host);
    snprintf(h.image, sizeof h.image, "%s", op->img.id);
    snprintf(h.name, sizeof h.name, "%s", op->img.name);
    snprintf(h.sha256, sizeof h.sha256, "%s", op->img.sha256);
    json_int_t bytes = json_integer_value(json_object_get(r, "bytes"));
    json_int_t fetched = json_integer_value(json_object_get(r, "fetched"));
    json_int_t ms = json_integer_value(json_object_get(r, "ms"));
    h.bytes = bytes > 0 ? (uint64_t)bytes : 0;
    h.fetched_at = now_ms();
    if (store_host_image_put(c->store, &h) != 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(c->store));
        return op_fail(op, &e);
    }
    const char *host = ctl_host_name(c, op->host);
    /* the agent's last progress event may come after its reply */
    task_progress(c->tasks, op->task, h.bytes, h.bytes);
    ctl_event(c, "image", op->img.name, "fetch", "ok", "on host %s: %lld bytes (%lld copied)", host,
              (long long)bytes, (long long)fetched);
    task_succeed(c->tasks, op->task,
                 json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s}", "image", op->img.name, "host", host,
                           "host_id", op->host, "bytes", bytes, "fetched", fetched, "agent_ms", ms,
                           "sha256", op->img.sha256));
    op_end(op, NULL);
}

/* The checksums are there: the agent fetches. */
static void call_agent(struct fetch_op *op)
{
    struct ctl *c = op->c;
    struct yerr err = {0};
    char cred[65];
    if (!c->hosts || !c->cfg->advertise_url[0]) {
        yerr_set(&err, YE_UNAVAILABLE,
                 "this controller has no advertise_url: hosts cannot fetch images from it");
        return op_fail(op, &err);
    }
    hosts_credential(c->hosts->token, c->hosts->token_len, op->host, cred);
    json_t *files = json_array();
    const char *paths[3] = {op->img.path, op->img.kernel, op->img.initrd};
    char sums[3][SHA256_HEX] = {{0}};
    sscanf(op->img.sha256, "%64s %64s %64s", sums[0], sums[1], sums[2]);
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if (!paths[i][0])
            continue;
        if (stat(paths[i], &st) < 0 || !S_ISREG(st.st_mode) || strlen(sums[i]) != 64) {
            json_decref(files);
            yerr_set(&err, YE_CONFLICT, "image '%s': %s is not in the library (or has no checksum)",
                     op->img.name, paths[i]);
            return op_fail(op, &err);
        }
        json_array_append_new(files, json_pack("{s:s,s:I,s:s}", "file", base_name(paths[i]), "size",
                                               (json_int_t)st.st_size, "sha256", sums[i]));
    }
    json_t *args =
        json_pack("{s:s,s:s,s:s,s:s,s:o}", "image", op->img.name, "url", c->cfg->advertise_url,
                  "host_id", op->host, "credential", cred, "files", files);
    memset(cred, 0, sizeof cred);
    op->call = ctl_host_call(c, op->host, AV_IMAGE_FETCH, args, on_fetched, on_progress, op);
    if (!op->call) {
        yerr_set(&err, YE_INTERNAL, "agent: the call could not be made");
        op_fail(op, &err);
    }
}

static void summed(void *ctx, const struct job_result *r)
{
    struct fetch_op *op = ctx;
    struct ctl *c = op->c;
    op->sum = NULL;
    struct yerr err = {0};
    if (r->status != 0) {
        yerr_set(&err, r->signal ? YE_CANCELLED : YE_DISK_ERROR, "sha256sum of image '%s': %.200s",
                 op->img.name, r->err);
        return op_fail(op, &err);
    }
    /* one "HEX  PATH" line per file, in the order given */
    char out[200] = "";
    const char *p = r->out;
    const char *paths[3] = {op->img.path, op->img.kernel, op->img.initrd};
    for (int i = 0; i < 3; i++) {
        char hex[65] = "-";
        if (paths[i][0]) {
            if (sscanf(p, "%64[0-9a-f]", hex) != 1 || strlen(hex) != 64) {
                yerr_set(&err, YE_DISK_ERROR, "sha256sum of image '%s': no checksum", op->img.name);
                return op_fail(op, &err);
            }
            const char *nl = strchr(p, '\n');
            p = nl ? nl + 1 : p + strlen(p);
        }
        size_t l = strlen(out);
        snprintf(out + l, sizeof out - l, "%s%s", l ? " " : "", hex);
    }
    if (store_image_set_sha256(c->store, op->img.id, out) != 0) {
        yerr_db(&err, store_errmsg(c->store));
        return op_fail(op, &err);
    }
    snprintf(op->img.sha256, sizeof op->img.sha256, "%s", out);
    call_agent(op);
}

static void start_sum(struct fetch_op *op)
{
    char *argv[6] = {"sha256sum", "--"};
    int n = 2;
    if (op->img.path[0])
        argv[n++] = op->img.path;
    if (op->img.kernel[0])
        argv[n++] = op->img.kernel;
    if (op->img.initrd[0])
        argv[n++] = op->img.initrd;
    argv[n] = NULL;
    struct job_spec sp = {
        .argv = argv, .background_nice = 10, .capture_tail = false, .on_done = summed, .ctx = op};
    char why[200];
    op->sum = job_start(op->c->base, &sp, why, sizeof why);
    if (!op->sum) {
        struct yerr err;
        yerr_set(&err, YE_INTERNAL, "cannot run sha256sum: %s", why);
        op_fail(op, &err);
    }
}

static void on_cancel(void *ctx)
{
    struct fetch_op *op = ctx;
    if (op->sum)
        job_stop(op->sum);
    else if (op->call)
        ctl_host_cancel(op->c, op->host, op->call);
}

bool ctl_image_fetching(struct ctl *c, const char *image_id)
{
    for (struct fetch_op *op = ops; op; op = op->next)
        if (op->c == c && !strcmp(op->img.id, image_id))
            return true;
    return false;
}

int ctl_image_ensure(struct ctl *c, const char *host_id, const struct image_rec *img,
                     ctl_image_ready_fn done, void *ctx, struct yerr *err)
{
    if (ctl_host_shares_library(c, host_id))
        return 0;
    struct host_image_rec have;
    int rc = store_host_image_get(c->store, host_id, img->id, &have);
    if (rc < 0)
        return yerr_db(err, store_errmsg(c->store));
    if (rc == 0)
        return 0;
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    w->done = done;
    w->ctx = ctx;
    for (struct fetch_op *op = ops; op; op = op->next)
        if (op->c == c && !strcmp(op->host, host_id) && !strcmp(op->img.id, img->id)) {
            w->next = op->waiters; /* the fetch that runs: one for all */
            op->waiters = w;
            return 1;
        }
    if (!c->tasks) {
        free(w);
        return yerr_set(err, YE_UNAVAILABLE, "no tasks here to fetch image '%s'", img->name);
    }
    struct fetch_op *op = calloc(1, sizeof *op);
    if (!op) {
        free(w);
        return yerr_set(err, YE_INTERNAL, "out of memory");
    }
    op->c = c;
    op->img = *img;
    snprintf(op->host, sizeof op->host, "%s", host_id);
    char key[120], obj[SHA256_HEX], name[64];
    snprintf(key, sizeof key, "fetch:%s:%s", host_id, img->id);
    sha256_hex(key, obj);
    obj[36] = 0; /* the task's object: this image on this host */
    snprintf(name, sizeof name, "%.30s@%.32s", img->name, ctl_host_name(c, host_id));
    struct task_rec t;
    if (task_begin(c->tasks, "image.fetch", "image", obj, name, &t, err) < 0) {
        free(w);
        free(op);
        return -1;
    }
    snprintf(op->task, sizeof op->task, "%s", t.id);
    op->waiters = w;
    op->next = ops;
    ops = op;
    task_on_cancel(c->tasks, op->task, on_cancel, op);
    ctl_event(c, "image", img->name, "fetch", "info", "to host %s (task %s)",
              ctl_host_name(c, host_id), op->task);
    FAILPOINT("image_fetch.after_begin"); /* task running, nothing asked of the agent */
    if (img->sha256[0])
        call_agent(op);
    else
        start_sum(op);
    return 1;
}

void ctl_image_fetch_forget(struct ctl *c, void *ctx)
{
    for (struct fetch_op *op = ops; op; op = op->next)
        for (struct waiter *w = op->waiters; w; w = w->next)
            if (op->c == c && w->ctx == ctx)
                w->done = NULL;
}

void ctl_image_fetches_shutdown(struct ctl *c)
{
    for (struct fetch_op *op = ops, *next; op; op = next) {
        next = op->next;
        if (op->c != c)
            continue;
        if (op->sum)
            job_detach(op->sum, true);
        struct yerr e;
        yerr_set(&e, YE_CANCELLED, "yund stopped");
        task_fail(c->tasks, op->task, &e);
        op_free(op);
    }
}

static void copy_removed(void *ctx, json_t *r, const struct yerr *err)
{
    (void)ctx;
    (void)r;
    if (err)
        log_warn("image copy: %s", err->message);
}

void ctl_image_remove_copies(struct ctl *c, const struct image_rec *img)
{
    struct host_image_rec *rows = NULL;
    size_t n = 0;
    if (store_host_image_list(c->store, img->id, &rows, &n) != 0) {
        log_err("image %s: its host copies not listed: %s", img->name, store_errmsg(c->store));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ctl_host *h = ctl_host_facts(c, rows[i].host);
        char dir[600];
        if (h && h->images_dir[0] &&
            snprintf_checked(dir, sizeof dir, "%s/%s", h->images_dir, img->name) >= 0)
            ctl_host_call(c, rows[i].host, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", dir),
                          copy_removed, NULL, NULL);
        if (store_host_image_delete(c->store, rows[i].host, img->id) != 0)
            log_err("image %s: copy on host %s not forgotten: %s", img->name, rows[i].host,
                    store_errmsg(c->store));
    }
    free(rows);
}

static int recover_fetch(void *ctx, struct task_rec *k, struct yerr *err)
{
    (void)ctx;
    (void)err;
    (void)k; /* nothing was recorded before the copy was verified: it ends failed */
    return 0;
}

void ctl_images_fetch_init(struct ctl *c)
{
    if (c->tasks)
        tasks_register_kind(c->tasks, "image.fetch", recover_fetch, c);
}
