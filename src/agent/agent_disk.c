/*
 * agent_disk.c - the disk verbs of the agent: qemu-img work on this host's
 * disk files (create, copy with progress and cancel, rebase, resize, info,
 * check, remove), the image builder and an image directory's removal, all
 * as jobs on the loop.
 *
 * Arguments are plain JSON and are checked like any outside input: a path
 * must be absolute, without "." or "..", under the state directory's
 * pools/, images/ or vms/ (or, where the verb says so, in an import or
 * export directory, opened through storage/exchange.c). disk.inspect judges
 * a file from an import directory, or a freshly built image's disk
 * ("image": true, under images/NAME/), by storage/inspect.c's rules and
 * names it by an identity a disk.copy of it can require. A copy writes
 * DST.part and renames it to DST when complete, so a failure or a cancel
 * leaves nothing but what was there before. disk.create with
 * "exclusive": true refuses a path that exists (409).
 */
#include "agent/agent_local.h"
#include "lib/config.h"
#include "lib/failpoint.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/util.h"
#include "storage/exchange.h"
#include "storage/inspect.h"
#include "storage/qemu_img.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_TIMEOUT_MS  (6 * 3600 * 1000)
#define QUICK_TIMEOUT_MS (120 * 1000)

static const char *str(json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

/* A file yund keeps: under DIR/pools, DIR/vms or the image library
 * (images_dir: DIR/images by default). */
bool agent_state_path_ok(struct agent_local *al, const char *p)
{
    if (!al->cfg || !p || p[0] != '/' || strlen(p) >= 512 || path_has_dot_component(p))
        return false;
    static const char *const dirs[] = {"pools", "vms"};
    for (size_t i = 0; i < 2; i++) {
        char d[PATH_MAX];
        snprintf(d, sizeof d, "%s/%s", al->cfg->state_dir, dirs[i]);
        const char *rest = path_beneath(d, p);
        if (rest && *rest)
            return true;
    }
    return false;
}

bool agent_local_path_ok(struct agent_local *al, const char *p)
{
    if (agent_state_path_ok(al, p))
        return true;
    if (!al->cfg || !p || p[0] != '/' || strlen(p) >= 512 || path_has_dot_component(p))
        return false;
    /* the image library: DIR/images, or the cluster's shared one */
    const char *rest = path_beneath(al->cfg->images_dir, p);
    return rest && *rest;
}

static bool fmt_ok(const char *f)
{
    return f && (!strcmp(f, "qcow2") || !strcmp(f, "raw"));
}

static int arg_u64(json_t *args, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(args, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static struct qimg_ctx qctx(struct agent_local *al, qimg_done_fn done, void *ctx, int timeout)
{
    struct qimg_ctx c = {.base = al->base,
                         .qemu_img = al->cfg->qemu_img,
                         .done = done,
                         .ctx = ctx,
                         .keep_fd = -1,
                         .timeout_ms = timeout};
    return c;
}

/* ---- verbs answered straight from qemu-img ---- */

static void plain_done(void *ctx, json_t *result, const struct yerr *err)
{
    agent_op_reply(ctx, result ? json_incref(result) : NULL, err);
}

static void fail_bad(struct agent_op *op, const char *what)
{
    agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: %s", what);
}

static void disk_create(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = str(args, "path"), *fmt = str(args, "format");
    const char *bk = str(args, "backing"), *bkf = str(args, "backing_format");
    uint64_t size = 0;
    if (!agent_local_path_ok(al, path) || !fmt_ok(fmt))
        return fail_bad(op, "disk.create: path (under the state directory) and format");
    if (!bk && arg_u64(args, "size", &size) < 0)
        return fail_bad(op, "disk.create: size (bytes) is required without a backing file");
    if (bk && (!fmt_ok(bkf) || !agent_local_path_ok(al, bk)))
        return fail_bad(op, "disk.create: backing must be an absolute path, with its format");
    json_t *ex = json_object_get(args, "exclusive");
    if (ex && !json_is_boolean(ex))
        return fail_bad(op, "disk.create: exclusive must be a boolean");
    struct stat st;
    if (json_is_true(ex) && lstat(path, &st) == 0)
        /* a migration's volume file: never over one that is there (a pool
         * this host would share with the source would be the source's) */
        return agent_op_fail(op, YE_CONFLICT, "%s exists already on this host", path);
    struct qimg_ctx c = qctx(al, plain_done, op, QUICK_TIMEOUT_MS);
    struct yerr err = {0};
    if (!qimg_create(&c, path, fmt, size, bk, bkf, &err))
        agent_op_reply(op, NULL, &err);
}

/* A backing file named relatively: a bare file name beside the layer. */
static bool bare_name_ok(const char *f)
{
    return f && f[0] && strlen(f) < 256 && !strchr(f, '/') && strcmp(f, ".") && strcmp(f, "..");
}

static void rebase_progress(void *ctx, uint64_t done, uint64_t total)
{
    agent_op_progress(ctx, done, total);
}

static void rebase_cancel(struct agent_op *op, void *arg)
{
    (void)op;
    qimg_cancel(arg);
}

static void disk_rebase(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = str(args, "path"), *fmt = str(args, "format");
    const char *bk = str(args, "backing"), *bkf = str(args, "backing_format");
    if (!agent_local_path_ok(al, path) || !fmt_ok(fmt) || !bk ||
        (bk[0] && ((!agent_local_path_ok(al, bk) && !bare_name_ok(bk)) || !fmt_ok(bkf))))
        return fail_bad(op, "disk.rebase: path, format, backing (\"\" for none, or a file "
                            "name beside path), backing_format");
    struct qimg_ctx c = qctx(al, plain_done, op, COPY_TIMEOUT_MS);
    c.progress = rebase_progress;
    struct yerr err = {0};
    struct qimg_op *q =
        qimg_rebase(&c, path, fmt, bk, bkf, json_is_true(json_object_get(args, "unsafe")), &err);
    if (!q)
        return agent_op_reply(op, NULL, &err);
    agent_op_on_cancel(op, rebase_cancel, q);
}

static void disk_resize(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = str(args, "path"), *fmt = str(args, "format");
    uint64_t size;
    if (!agent_local_path_ok(al, path) || !fmt_ok(fmt) || arg_u64(args, "size", &size) < 0 || !size)
        return fail_bad(op, "disk.resize: path, format and size");
    struct qimg_ctx c = qctx(al, plain_done, op, QUICK_TIMEOUT_MS);
    struct yerr err = {0};
    if (!qimg_resize(&c, path, fmt, size, &err))
        agent_op_reply(op, NULL, &err);
}

static void disk_info(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = str(args, "path"), *fmt = str(args, "format");
    bool import = json_is_true(json_object_get(args, "import"));
    if ((fmt && !fmt_ok(fmt)) || (!import && !agent_local_path_ok(al, path)) || !al->cfg)
        return fail_bad(op, "disk.info: path (under the state directory, or import)");
    struct qimg_ctx c = qctx(al, plain_done, op, QUICK_TIMEOUT_MS);
    struct yerr err = {0};
    struct exchange_file x = {.fd = -1, .dirfd = -1};
    if (import) {
        if (exchange_open_import(al->cfg, path, &x, &err) < 0)
            return agent_op_reply(op, NULL, &err);
        c.keep_fd = x.fd;
        path = x.fdpath;
    }
    if (!qimg_info(&c, path, fmt, json_is_true(json_object_get(args, "backing_chain")), &err))
        agent_op_reply(op, NULL, &err);
    exchange_close(&x); /* qemu-img holds its own copy */
}

static void disk_check(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = str(args, "path");
    if (!agent_local_path_ok(al, path))
        return fail_bad(op, "disk.check: path (under the state directory)");
    struct qimg_ctx c = qctx(al, plain_done, op, COPY_TIMEOUT_MS);
    struct yerr err = {0};
    if (!qimg_check(&c, path, "qcow2", &err))
        agent_op_reply(op, NULL, &err);
}

static void disk_remove(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = str(args, "path"), *exp = str(args, "export");
    struct yerr err = {0};
    if (exp && al->cfg) {
        if (exchange_remove_part(al->cfg, exp, &err) < 0)
            return agent_op_reply(op, NULL, &err);
        return agent_op_reply(op, json_pack("{s:b}", "removed", 1), NULL);
    }
    if (!agent_local_path_ok(al, path))
        return fail_bad(op, "disk.remove: path (under the state directory)");
    bool removed = unlink(path) == 0;
    if (!removed && errno != ENOENT)
        return agent_op_fail(op, YE_DISK_ERROR, "cannot remove %s: %s", path, strerror(errno));
    agent_op_reply(op, json_pack("{s:b}", "removed", removed), NULL);
}

/* ---- disk.inspect: is a file from outside a usable disk image? ---- */

struct insp {
    struct agent_local *al;
    struct agent_op *op;
    struct exchange_file x; /* held open from info to check: one file judged */
    struct stat st;
    char name[512], want[8];
    struct disk_info di;
};

/* What names the file opened: a copy (disk.copy "identity") refuses a file
 * that is not this one, or was written to since (ctime moves on a write). */
static void file_identity(const struct stat *st, char *buf, size_t len)
{
    snprintf(buf, len, "%llu:%llu:%lld:%lld.%09ld", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, (long long)st->st_ctim.tv_sec,
             (long)st->st_ctim.tv_nsec);
}

static void insp_end(struct insp *in, const struct yerr *err)
{
    if (err) {
        agent_op_reply(in->op, NULL, err);
    } else {
        char id[128];
        file_identity(&in->st, id, sizeof id);
        agent_op_reply(in->op,
                       json_pack("{s:s,s:I,s:s,s:s,s:s}", "format", in->di.format, "virtual_size",
                                 (json_int_t)in->di.virtual_size, "backing", in->di.backing,
                                 "backing_format", in->di.backing_format, "identity", id),
                       NULL);
    }
    exchange_close(&in->x);
    free(in);
}

static void insp_checked(void *ctx, json_t *result, const struct yerr *qerr)
{
    struct insp *in = ctx;
    struct yerr err = {0};
    if (qerr)
        yerr_set(&err, YE_INVALID_IMAGE, "qcow2 metadata is corrupt: %s", qerr->message);
    else
        disk_check_judge(json_object_get(result, "check"), &err);
    insp_end(in, err.code ? &err : NULL);
}

static void insp_info(void *ctx, json_t *result, const struct yerr *qerr)
{
    struct insp *in = ctx;
    struct yerr err = {0};
    bool check = false;
    if (qerr) {
        yerr_set(&err, YE_INVALID_IMAGE, "not a usable disk image: %s", qerr->message);
        return insp_end(in, &err);
    }
    if (disk_info_judge(result, &in->st, in->name, in->want, &in->di, &check, &err) < 0)
        return insp_end(in, &err);
    if (!check)
        return insp_end(in, NULL);
    struct qimg_ctx c = qctx(in->al, insp_checked, in, COPY_TIMEOUT_MS);
    c.keep_fd = in->x.fd;
    if (!qimg_check(&c, in->x.fdpath, "qcow2", &err))
        insp_end(in, &err);
}

/* A file of an image's own directory: DIR/images/NAME/FILE. */
static bool image_file_ok(struct agent_local *al, const char *p)
{
    if (!agent_local_path_ok(al, p))
        return false;
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", al->cfg->images_dir);
    const char *rest = path_beneath(d, p);
    const char *slash = rest ? strchr(rest, '/') : NULL;
    return slash && slash != rest && slash[1] && !strchr(slash + 1, '/');
}

static void disk_inspect_verb(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = str(args, "path"), *fmt = str(args, "format");
    bool image = json_is_true(json_object_get(args, "image"));
    if (!al->cfg || !path || (!image && !json_is_true(json_object_get(args, "import"))) ||
        (image && !image_file_ok(al, path)) || (fmt && fmt[0] && !fmt_ok(fmt)))
        return fail_bad(op, "disk.inspect: path (in an import directory, or an image's file with "
                            "image), import, format");
    struct insp *in = calloc(1, sizeof *in);
    if (!in)
        return agent_op_fail(op, YE_INTERNAL, "out of memory");
    in->al = al;
    in->op = op;
    in->x.fd = in->x.dirfd = -1;
    snprintf(in->name, sizeof in->name, "%s", path);
    snprintf(in->want, sizeof in->want, "%s", fmt ? fmt : "");
    struct yerr err = {0};
    if (image) {
        /* the builder's output, in yund's own state directory */
        in->x.fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in->x.fd < 0) {
            yerr_set(&err, YE_INVALID_IMAGE, "cannot read %s: %s", path, strerror(errno));
            return insp_end(in, &err);
        }
        snprintf(in->x.fdpath, sizeof in->x.fdpath, "/dev/fd/%d", in->x.fd);
    } else if (exchange_open_import(al->cfg, path, &in->x, &err) < 0) {
        return insp_end(in, &err);
    }
    if (fstat(in->x.fd, &in->st) < 0) {
        yerr_set(&err, YE_INVALID_ARGUMENT, "cannot read %s: %s", path, strerror(errno));
        return insp_end(in, &err);
    }
    if (!S_ISREG(in->st.st_mode)) {
        yerr_set(&err, YE_INVALID_ARGUMENT, "%s is not a regular file", path);
        return insp_end(in, &err);
    }
    struct qimg_ctx c = qctx(al, insp_info, in, QUICK_TIMEOUT_MS);
    c.keep_fd = in->x.fd;
    if (!qimg_info(&c, in->x.fdpath, NULL, false, &err))
        insp_end(in, &err);
}

/* ---- disk.copy ---- */

struct copy {
    struct agent_op *op;
    struct agent_local *al;
    uint64_t bytes;
    bool reported;
    struct qimg_op *q;
    struct exchange_file x; /* export: the .part in the export directory */
    bool export, replace;
    char dst[512], part[520];
};

static void copy_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct copy *cp = ctx;
    if (!cp->reported) {
        cp->reported = true;
        FAILPOINT("disk_copy.running"); /* qemu-img is copying */
    }
    agent_op_progress(cp->op, done, total);
}

/* A partial copy goes in a child too: freeing gigabytes of extents is
 * slow (a cancelled 20 GiB clone); if that fails, the pool's orphan
 * sweep finds the .part. */
static void part_remove(struct copy *cp)
{
    /* renamed aside first (one quick metadata call), so a copy to the same
     * destination started right after never has its .part removed */
    char aside[560];
    if (snprintf_checked(aside, sizeof aside, "%s.gone%lld", cp->part, (long long)monotonic_ms()) <
            0 ||
        rename(cp->part, aside) < 0) {
        unlink(cp->part);
        return;
    }
    char *argv[] = {"rm", "-f", "--", aside, NULL};
    struct job_spec sp = {.argv = argv, .timeout_ms = QUICK_TIMEOUT_MS, .background_nice = 10};
    char why[200];
    if (!job_start(cp->al->base, &sp, why, sizeof why))
        unlink(aside);
}

static void copy_finish(struct copy *cp, struct yerr *err)
{
    if (err->code && !cp->export)
        part_remove(cp);
    if (cp->export)
        exchange_close(&cp->x); /* uncommitted: removes the .part */
    if (err->code)
        agent_op_reply(cp->op, NULL, err);
    else
        agent_op_reply(
            cp->op, json_pack("{s:s,s:I}", "path", cp->dst, "bytes", (json_int_t)cp->bytes), NULL);
    free(cp);
}

static void replaced(void *ctx, const struct job_result *r)
{
    struct copy *cp = ctx;
    struct yerr err = {0};
    if (r->status != 0) {
        char line[400];
        proc_last_line(r->err, line, sizeof line);
        yerr_disk(&err, "cannot rename %s: %s", cp->part, line[0] ? line : "mv failed");
    }
    copy_finish(cp, &err);
}

/* A rename over an existing file (a compact's result over the volume) is
 * a child's: the old file's extents are freed and ext4 starts writing the
 * new one back (auto_da_alloc) inside rename(2), which for gigabytes took
 * most of a second on the loop. */
static void replace_start(struct agent_local *al, struct copy *cp)
{
    char *argv[] = {"mv", "-fT", "--", cp->part, cp->dst, NULL};
    struct job_spec sp = {.argv = argv,
                          .timeout_ms = QUICK_TIMEOUT_MS,
                          .capture_tail = true,
                          .background_nice = 10,
                          .on_done = replaced,
                          .ctx = cp};
    char why[200];
    if (!job_start(al->base, &sp, why, sizeof why)) {
        struct yerr err;
        yerr_disk(&err, "cannot rename %s: %s", cp->part, why);
        copy_finish(cp, &err);
    }
}

static void copy_done(void *ctx, json_t *result, const struct yerr *qerr)
{
    struct copy *cp = ctx;
    struct yerr err = {0};
    cp->q = NULL; /* the qemu-img run is over: nothing left to cancel */
    if (qerr)
        err = *qerr;
    if (!err.code && agent_op_cancelled(cp->op))
        yerr_set(&err, YE_CANCELLED, "copy cancelled");
    if (!err.code) {
        FAILPOINT("disk_copy.before_rename");
        if (cp->export) {
            struct stat st;
            if (fstat(cp->x.fd, &st) == 0)
                cp->bytes = (uint64_t)st.st_blocks * 512;
            exchange_commit_export(&cp->x, &err);
        } else {
            cp->bytes = file_size_on_disk(cp->part);
            if (cp->replace) {
                replace_start(cp->al, cp);
                return;
            }
            if (renameat2(AT_FDCWD, cp->part, AT_FDCWD, cp->dst, RENAME_NOREPLACE) < 0)
                yerr_disk(&err, "cannot rename %s: %s", cp->part, strerror(errno));
        }
    }
    copy_finish(cp, &err);
}

static void copy_cancel(struct agent_op *op, void *arg)
{
    struct copy *cp = arg;
    if (cp->q)
        qimg_cancel(cp->q);
}

static void disk_copy(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *src = str(args, "src"), *sf = str(args, "src_format");
    const char *dst = str(args, "dst"), *df = str(args, "dst_format");
    const char *bk = str(args, "backing"), *bkf = str(args, "backing_format");
    bool import = json_is_true(json_object_get(args, "import"));
    bool export = json_is_true(json_object_get(args, "export"));
    if (!al->cfg || !fmt_ok(sf) || !fmt_ok(df) || (import && export) ||
        (!import && !agent_local_path_ok(al, src)) || (!export && !agent_local_path_ok(al, dst)) ||
        (export && !dst) || (bk && (!agent_local_path_ok(al, bk) || !fmt_ok(bkf))))
        return fail_bad(op, "disk.copy: src, dst (under the state directory, or an "
                            "import/export directory) and their formats");
    struct copy *cp = calloc(1, sizeof *cp);
    if (!cp)
        return agent_op_fail(op, YE_INTERNAL, "out of memory");
    cp->op = op;
    cp->al = al;
    cp->x.fd = cp->x.dirfd = -1;
    cp->export = export;
    cp->replace = json_is_true(json_object_get(args, "replace"));
    snprintf(cp->dst, sizeof cp->dst, "%s", dst);
    struct yerr err = {0};
    struct exchange_file in = {.fd = -1, .dirfd = -1};
    struct qimg_ctx c = qctx(al, copy_done, cp, COPY_TIMEOUT_MS);
    c.progress = copy_progress;
    struct qimg_convert cv = {.src = src,
                              .src_format = sf,
                              .dst_format = df,
                              .backing = bk,
                              .backing_format = bkf,
                              .sparse = json_is_true(json_object_get(args, "sparse"))};
    arg_u64(args, "total", &cv.total);
    if (import) {
        if (exchange_open_import(al->cfg, src, &in, &err) < 0)
            goto fail;
        const char *want = str(args, "identity");
        struct stat st;
        char id[128] = "";
        if (want && fstat(in.fd, &st) == 0)
            file_identity(&st, id, sizeof id);
        if (want && strcmp(want, id)) {
            yerr_set(&err, YE_CONFLICT, "%s changed since it was checked: import it again", src);
            goto fail;
        }
        c.keep_fd = in.fd;
        cv.src = in.fdpath;
    }
    if (export) {
        if (exchange_create_export(al->cfg, dst, &cp->x, &err) < 0)
            goto fail;
        c.keep_fd = cp->x.fd;
        cv.dst = cp->x.fdpath;
    } else {
        snprintf(cp->part, sizeof cp->part, "%s.part", dst);
        if (!cp->replace && path_exists(dst)) {
            yerr_set(&err, YE_CONFLICT, "%s exists", dst);
            goto fail;
        }
        unlink(cp->part); /* a leftover of a copy that was interrupted */
        cv.dst = cp->part;
    }
    cp->q = qimg_convert(&c, &cv, &err);
    exchange_close(&in);
    if (!cp->q)
        goto fail;
    agent_op_on_cancel(op, copy_cancel, cp);
    return;
fail:
    exchange_close(&in);
    exchange_close(&cp->x);
    free(cp);
    agent_op_reply(op, NULL, &err);
}

/* ---- image.build ---- */

static void build_done(void *ctx, const struct job_result *r)
{
    struct agent_op *op = ctx;
    if (r->status == 0)
        return agent_op_ok(op);
    char line[400];
    proc_last_line(r->err, line, sizeof line);
    if (!line[0])
        proc_last_line(r->out, line, sizeof line);
    agent_op_fail(op, YE_BUILD_FAILED, "%s",
                  line[0] ? line : "the image builder exited with an error");
}

static int build_env(void *arg)
{
    const char *cache = arg;
    if (cache && cache[0])
        setenv("YUN_IMAGE_CACHE", cache, 1);
    return 0;
}

static void build_cancel(struct agent_op *op, void *arg)
{
    job_stop(arg);
}

static void image_build(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *script = str(args, "script"), *outdir = str(args, "outdir");
    if (!script || script[0] != '/' || !agent_local_path_ok(al, outdir))
        return fail_bad(op, "image.build: script (absolute) and outdir (under images/)");
    char *argv[] = {"bash", (char *)script, (char *)outdir, NULL};
    struct job_spec sp = {.argv = argv,
                          .setup = build_env,
                          .setup_arg = (void *)al->cfg->image_cache,
                          .timeout_ms = 4 * 3600 * 1000,
                          .capture_tail = true,
                          .on_done = build_done,
                          .ctx = op};
    char why[200];
    struct job *j = job_start(al->base, &sp, why, sizeof why);
    if (!j)
        return agent_op_fail(op, YE_INTERNAL, "cannot run the image builder: %s", why);
    agent_op_on_cancel(op, build_cancel, j);
}

/* ---- image.remove: an image's directory, off the loop ---- */

/* An image's own directory: DIR/images/NAME, one component below images/. */
static bool image_dir_ok(struct agent_local *al, const char *p)
{
    if (!agent_local_path_ok(al, p))
        return false;
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s", al->cfg->images_dir);
    const char *rest = path_beneath(d, p);
    return rest && *rest && !strchr(rest, '/');
}

static void remove_done(void *ctx, const struct job_result *r)
{
    struct agent_op *op = ctx;
    if (r->status == 0)
        return agent_op_ok(op);
    char line[400];
    proc_last_line(r->err, line, sizeof line);
    agent_op_fail(op, YE_DISK_ERROR, "cannot remove the image directory: %s",
                  line[0] ? line : "rm failed");
}

/* The directory is first renamed aside (one quick metadata call), so a new
 * image of the same name may be made at once; the copy aside is removed by
 * an rm job. A crash before rm is done leaves only a dot-named directory. */
static void image_remove(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *dir = str(args, "dir");
    if (!image_dir_ok(al, dir))
        return fail_bad(op, "image.remove: dir (an image's directory under images/)");
    const char *base = strrchr(dir, '/') + 1;
    char aside[PATH_MAX];
    int n = snprintf(aside, sizeof aside, "%.*s.%s.removing", (int)(base - dir), dir, base);
    if (n < 0 || (size_t)n >= sizeof aside)
        return fail_bad(op, "image.remove: dir too long");
    if (rename(dir, aside) < 0) {
        if (errno == ENOENT)
            return agent_op_ok(op);
        return agent_op_fail(op, YE_DISK_ERROR, "cannot remove %s: %s", dir, strerror(errno));
    }
    char *argv[] = {"rm", "-rf", "--", aside, NULL};
    struct job_spec sp = {.argv = argv,
                          .timeout_ms = QUICK_TIMEOUT_MS,
                          .capture_tail = true,
                          .background_nice = 10,
                          .on_done = remove_done,
                          .ctx = op};
    char why[200];
    if (!job_start(al->base, &sp, why, sizeof why))
        agent_op_fail(op, YE_INTERNAL, "cannot run rm: %s", why);
}

/* ---- orphans ---- */

/* qemu-img processes (and image builders) a previous run of this agent
 * left working on this state directory's files: a yund killed in the middle
 * of a copy. They are ended before anything is rolled back. */
void agent_disk_end_orphans(struct agent_local *al)
{
    if (!al->cfg || !al->cfg->state_dir[0])
        return;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    int ended = 0;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1 || pid == getpid())
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        size_t len = 0;
        char *cl = read_file(path, 1 << 16, &len);
        if (!cl)
            continue;
        const char *prog = strrchr(cl, '/') ? strrchr(cl, '/') + 1 : cl;
        bool qimg = !strcmp(prog, "qemu-img");
        bool builder = !strcmp(prog, "bash") && len > strlen(cl) + 1 &&
                       strstr(cl + strlen(cl) + 1, "-image.sh");
        bool ours = false;
        for (size_t i = strlen(cl) + 1; (qimg || builder) && i < len; i += strlen(cl + i) + 1)
            if (path_beneath(al->cfg->state_dir, cl + i))
                ours = true;
        free(cl);
        if (!ours)
            continue;
        log_warn("agent: ending %s %ld left by an earlier yund",
                 qimg ? "qemu-img" : "image builder", pid);
        kill(-(pid_t)pid, SIGKILL);
        kill((pid_t)pid, SIGKILL);
        ended++;
    }
    closedir(d);
    (void)ended;
}

const struct agent_verb_def agent_disk_verbs[] = {
    {AV_DISK_CREATE, "disk.create", disk_create},
    {AV_DISK_COPY, "disk.copy", disk_copy},
    {AV_DISK_REBASE, "disk.rebase", disk_rebase},
    {AV_DISK_RESIZE, "disk.resize", disk_resize},
    {AV_DISK_INFO, "disk.info", disk_info},
    {AV_DISK_CHECK, "disk.check", disk_check},
    {AV_DISK_REMOVE, "disk.remove", disk_remove},
    {AV_IMAGE_BUILD, "image.build", image_build},
    {AV_DISK_INSPECT, "disk.inspect", disk_inspect_verb},
    {AV_IMAGE_REMOVE, "image.remove", image_remove},
};
const size_t agent_disk_verbs_count = sizeof agent_disk_verbs / sizeof agent_disk_verbs[0];
