/*
 * images_import.c - the image library's reads, delete, and import as the
 * task "image.import".
 *
 * An import: the agent judges the file first (disk.inspect; a bad file or
 * one with a backing file is a 400 and nothing begins); then task_begin
 * (holds the name, as a build does), the image directory made, disk.copy
 * of that same file (its identity) into DIR/images/NAME/disk.qcow2 (a
 * standalone qcow2: every cluster is read back), the row, the task
 * succeeded. Fault points:
 *   image_import.after_begin  task running, no directory yet -> recover: directory removed
 *   image_import.after_copy   disk complete, no row          -> recover: directory removed
 *   image_import.after_row    row written, task running      -> recover: task succeeded
 */
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/import_task.h"
#include "ctl/images.h"
#include "ctl/images_fetch.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mop {
    struct ctl_import im; /* first: import_task.c frees it */
    struct image_rec m;
    char format[8], identity[128]; /* disk.inspect's, for the copy */
};

/* What a task on the image name holds (an import; a build holds its own). */
static void import_object(const char *name, char *id, size_t len)
{
    snprintf(id, len, "image:%s", name);
}

/* 409 naming the task when an import or a build of that name runs (both
 * write DIR/images/NAME). */
static int refuse_busy(struct ctl *c, const char *name, struct yerr *err)
{
    char obj[80], build[80];
    struct task_rec busy;
    import_object(name, obj, sizeof obj);
    snprintf(build, sizeof build, "image-build:%s", name);
    if (task_busy(c->tasks, obj, &busy) || task_busy(c->tasks, build, &busy))
        return task_conflict(err, &busy);
    return 0;
}

void ctl_image_dir(struct ctl *c, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", c->cfg->images_dir, name);
}

void ctl_image_remove_dir(struct ctl *c, const char *name)
{
    char dir[512];
    ctl_image_dir(c, name, dir, sizeof dir);
    ctl_disk_call(c, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", dir), NULL, NULL, NULL);
}

/* A build or import failed: its directory goes (agent image.remove: off the
 * loop), then the event and the task's failure. Until the agent answers the
 * task stays running, so a yund killed meanwhile recovers it (its recover
 * function removes the directory). */
struct rollback {
    struct ctl *c;
    char name[64], action[16], task[37];
    struct yerr err;
};

static void rolled_back(void *ctx, json_t *result, const struct yerr *rerr)
{
    struct rollback *r = ctx;
    (void)result;
    if (rerr)
        log_warn("image %s: %s", r->name, rerr->message);
    ctl_event(r->c, "image", r->name, r->action, "error", "%s", r->err.message);
    task_fail(r->c->tasks, r->task, &r->err);
    free(r);
}

void ctl_image_rollback(struct ctl *c, const char *name, const char *action, const char *task,
                        const struct yerr *err)
{
    struct rollback *r = calloc(1, sizeof *r);
    char dir[512];
    ctl_image_dir(c, name, dir, sizeof dir);
    if (r) {
        r->c = c;
        snprintf(r->name, sizeof r->name, "%s", name);
        snprintf(r->action, sizeof r->action, "%s", action);
        snprintf(r->task, sizeof r->task, "%s", task);
        r->err = *err;
    }
    if (!r ||
        !ctl_disk_call(c, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", dir), rolled_back, NULL, r)) {
        free(r);
        log_err("image %s: cannot ask for %s to be removed", name, dir);
        ctl_event(c, "image", name, action, "error", "%s", err->message);
        task_fail(c->tasks, task, err);
    }
}

int ctl_image_list(struct ctl *c, struct image_rec **out, size_t *n, struct yerr *err)
{
    if (store_image_list(c->store, out, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_image_get(struct ctl *c, const char *name, struct image_rec *out, struct yerr *err)
{
    int rc = store_image_get(c->store, name, out);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "image '%s' does not exist", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

struct image_del {
    struct ctl *c;
    char name[64];
    ctl_image_done_fn done;
    void *ctx;
};

static void image_removed(void *ctx, json_t *result, const struct yerr *err)
{
    struct image_del *d = ctx;
    if (err)
        log_warn("image %s: %s", d->name, err->message);
    ctl_event(d->c, "image", d->name, "delete", "ok", "%s", "");
    d->done(d->ctx, NULL);
    free(d);
}

int ctl_image_delete(struct ctl *c, const char *name, ctl_image_done_fn done, void *ctx,
                     struct yerr *err)
{
    struct image_rec m;
    if (ctl_image_get(c, name, &m, err) < 0)
        return -1;
    int users = 0;
    if (store_vm_count_using_image(c->store, m.name, &users) != 0)
        return yerr_db(err, store_errmsg(c->store));
    if (users > 0)
        return yerr_set(err, YE_CONFLICT, "image '%s' is used by %d vm%s", m.name, users,
                        users == 1 ? "" : "s");
    if (ctl_image_fetching(c, m.id))
        return yerr_set(err, YE_CONFLICT, "image '%s' is being copied to a host (image.fetch)",
                        m.name);
    struct image_del *d = calloc(1, sizeof *d);
    if (!d)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    if (store_image_delete(c->store, m.name) != 0) {
        free(d);
        return yerr_db(err, store_errmsg(c->store));
    }
    ctl_image_remove_copies(c, &m); /* hosts with a library of their own */
    d->c = c;
    snprintf(d->name, sizeof d->name, "%s", m.name);
    d->done = done;
    d->ctx = ctx;
    char dir[512];
    ctl_image_dir(c, m.name, dir, sizeof dir);
    /* The row is gone: the directory goes off the loop (agent image.remove);
     * a failure there is logged, as the delete itself is done. */
    if (!ctl_disk_call(c, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", dir), image_removed, NULL,
                       d)) {
        free(d);
        return yerr_set(err, YE_INTERNAL, "out of memory: image '%s' deleted, %s left", name, dir);
    }
    return 0;
}

static void copied(struct ctl_import *im, const struct yerr *aerr)
{
    struct mop *op = (struct mop *)im;
    struct ctl *c = im->c;
    struct yerr err = {0};
    if (aerr && (aerr->code == YE_NO_SPACE || aerr->code == YE_CANCELLED))
        err = *aerr;
    else if (aerr)
        yerr_set(&err, YE_INVALID_IMAGE, "cannot convert %s: %s", im->file, aerr->message);
    if (!err.code) {
        FAILPOINT("image_import.after_copy");
        ctl_image_register(c, &op->m, &err);
    }
    if (err.code) {
        ctl_image_rollback(c, im->name, "import", im->task, &err);
    } else {
        FAILPOINT("image_import.after_row");
        ctl_event(c, "image", im->name, "import", "ok", "from %s", im->file);
        task_succeed(c->tasks, im->task, image_to_json(&op->m));
    }
}

/* The directory is there, empty: the copy runs. */
static void start_copy(struct mop *op)
{
    struct ctl_import *im = &op->im;
    char dir[512];
    ctl_image_dir(im->c, im->name, dir, sizeof dir);
    if (mkdir_p(dir, 0755) < 0) {
        struct yerr err;
        yerr_set(&err, YE_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
        return ctl_import_abort(im, &err);
    }
    ctl_import_copy(im,
                    json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:I}", "src", im->file, "src_format",
                              op->format, "import", 1, "identity", op->identity, "dst", op->m.path,
                              "dst_format", "qcow2", "total", (json_int_t)op->m.virtual_size));
}

/* What an import that crashed left is gone (agent image.remove). */
static void leftover_removed(void *ctx, json_t *result, const struct yerr *err)
{
    struct mop *op = ctx;
    (void)result;
    if (err)
        log_warn("image %s: %s", op->im.name, err->message);
    start_copy(op);
}

static int begin_copy(struct ctl_import *im, const struct ctl_import_info *info,
                      struct task_rec *task, struct yerr *err)
{
    struct mop *op = (struct mop *)im;
    struct ctl *c = im->c;
    if (info->backing && info->backing[0])
        return yerr_set(err, YE_INVALID_IMAGE,
                        "image has a backing file (%s): import a standalone image "
                        "(qemu-img convert flattens it)",
                        info->backing);
    struct image_rec x;
    if (store_image_get(c->store, im->name, &x) == 0)
        return yerr_set(err, YE_CONFLICT, "image '%s' already exists", im->name);
    char obj[80], dir[512];
    if (refuse_busy(c, im->name, err) < 0)
        return -1;
    import_object(im->name, obj, sizeof obj);
    if (task_begin(c->tasks, "image.import", "image", obj, im->name, task, err) < 0)
        return -1;
    ctl_import_task(im, task);
    ctl_image_dir(c, im->name, dir, sizeof dir);
    json_t *p = json_pack("{s:s,s:s}", "file", im->file, "dir", dir);
    task_set_params(c->tasks, task->id, p);
    json_decref(p);
    FAILPOINT("image_import.after_begin");
    struct image_rec *m = &op->m;
    snprintf(m->name, sizeof m->name, "%s", im->name);
    snprintf(m->path, sizeof m->path, "%s/disk.qcow2", dir);
    snprintf(m->os, sizeof m->os, "unknown");
    snprintf(m->format, sizeof m->format, "qcow2");
    m->virtual_size = info->size;
    snprintf(op->format, sizeof op->format, "%s", info->format);
    snprintf(op->identity, sizeof op->identity, "%s", info->identity);
    if (!path_exists(dir))
        start_copy(op);
    else if (!ctl_disk_call(c, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", dir), leftover_removed,
                            NULL, op))
        start_copy(op); /* mkdir or the copy then fails on what is there */
    return 0;
}

static const struct ctl_import_kind image_import = {
    .what = "file", .begin = begin_copy, .copied = copied};

int ctl_image_import(struct ctl *c, const char *name, const char *file, const char *format,
                     ctl_image_task_fn done, void *ctx, struct yerr *err)
{
    if (ctl_import_check(&image_import, name, file, format, err) < 0)
        return -1;
    struct image_rec m;
    if (store_image_get(c->store, name, &m) == 0)
        return yerr_set(err, YE_CONFLICT, "image '%s' already exists", name);
    if (refuse_busy(c, name, err) < 0)
        return -1;
    struct mop *op = calloc(1, sizeof *op);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    return ctl_import_start(&op->im, c, &image_import, name, file, format, done, ctx, err);
}

/* yund stopped mid-import: the row decides (written last). */
static int recover_import(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    struct image_rec m;
    int rc = store_image_get(c->store, k->object_name, &m);
    if (rc == 0) {
        k->state = TASK_SUCCEEDED;
        json_t *j = image_to_json(&m);
        k->result = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return 0;
    }
    if (rc != STORE_NOTFOUND)
        return yerr_db(err, store_errmsg(c->store));
    char why[256];
    if (name_valid(k->object_name, why, sizeof why))
        ctl_image_remove_dir(c, k->object_name);
    ctl_event(c, "image", k->object_name, "import", "error",
              "rolled back: yund stopped before it finished");
    return 0;
}

void ctl_images_import_init(struct ctl *c)
{
    tasks_register_kind(c->tasks, "image.import", recover_import, c);
}
