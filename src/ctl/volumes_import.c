/*
 * volumes_import.c - a file from an import directory becomes a volume: the
 * controller's task "volume.import".
 *
 * First the agent judges the file (disk.inspect: qemu-img info and check of
 * the file it holds open; a bad file is a 400 and nothing begins). A linked
 * clone may come in only on a ready volume of the pool. Then, in order:
 * task_begin (holds the new volume's id), the row "creating" owned by the
 * task, disk.copy of that same file (its identity) into the pool with
 * progress and cancel, the row ready, the task succeeded. Fault points:
 *   volume_import.after_row    row "creating", no file yet  -> recover: row removed
 *   volume_import.after_copy   file complete, row creating  -> recover: file and row removed
 *   volume_import.after_ready  row ready, task running      -> recover: task succeeded
 * (recovery is the full clone's: ctl/volumes.c recover_clone).
 */
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/import_task.h"
#include "ctl/tasks.h"
#include "ctl/volumes.h"
#include "lib/failpoint.h"
#include "lib/util.h"
#include "storage/volstate.h"
#include "storage/volumes.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct iop {
    struct ctl_import im; /* first: import_task.c frees it */
    struct volume_rec v;
};

static void copied(struct ctl_import *im, const struct yerr *aerr)
{
    struct iop *op = (struct iop *)im;
    struct ctl *c = im->c;
    struct volume_rec *v = &op->v;
    struct yerr err = {0};
    if (aerr)
        err = *aerr;
    if (!err.code) {
        FAILPOINT("volume_import.after_copy");
        v->state = VOL_READY;
        v->task[0] = 0;
        if (store_volume_update(c->store, v) != 0)
            yerr_db(&err, store_errmsg(c->store));
    }
    if (err.code) {
        ctl_host_call(c, v->host, AV_DISK_REMOVE, json_pack("{s:s}", "path", v->path), NULL, NULL,
                      NULL);
        store_volume_delete(c->store, v->id);
        ctl_event(c, "volume", v->name, "import", "error", "%s", err.message);
        task_fail(c->tasks, im->task, &err);
    } else {
        FAILPOINT("volume_import.after_ready");
        ctl_event(c, "volume", v->name, "import", "ok", "%s, %llu bytes", v->format,
                  (unsigned long long)v->virtual_size);
        task_succeed(c->tasks, im->task, ctl_volume_to_json(c, v));
    }
}

/* The ready volume of the pool the file is a linked clone of (b), or a
 * 400 saying why it may not come in. */
static int backing_volume(struct ctl *c, const char *backing, struct volume_rec *b,
                          struct yerr *err)
{
    /* anything outside the pool could be any file on the host, read
     * through the guest */
    char real[PATH_MAX] = "";
    if (!volume_inside_pool(c->cfg, backing, real, sizeof(real)))
        return yerr_set(err, YE_INVALID_IMAGE,
                        "backing file %s is outside pool '" VOLUME_POOL
                        "': import a standalone image (qemu-img convert flattens it)",
                        backing);
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(c->store, &vs, &n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < n && !b->name[0]; i++) {
        char r[PATH_MAX];
        if (realpath(vs[i].path, r) && !strcmp(r, real) && vs[i].state == VOL_READY)
            *b = vs[i];
    }
    free(vs);
    if (!b->name[0])
        return yerr_set(err, YE_INVALID_IMAGE,
                        "backing file %s is not a ready volume of pool '" VOLUME_POOL "'", backing);
    return 0;
}

/* The row and the task, then the copy; -1 with err when nothing runs. */
static int begin_copy(struct ctl_import *im, const struct ctl_import_info *info,
                      struct task_rec *task, struct yerr *err)
{
    struct iop *op = (struct iop *)im;
    struct ctl *c = im->c;
    const char *fmt = info->format;
    uint64_t size = info->size;
    if (size < (1 << 20) || size > VOLUME_MAX || size % 512)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "size must be 1M..16T and a whole number of 512-byte sectors");
    struct volume_rec b = {0};
    if (info->backing && info->backing[0] && backing_volume(c, info->backing, &b, err) < 0)
        return -1;
    struct volume_rec x;
    if (store_volume_get(c->store, im->name, &x) == 0)
        return yerr_set(err, YE_CONFLICT, "volume '%s' already exists", im->name);
    if (b.name[0] && ctl_volume_idle(c, b.name, err) < 0)
        return -1;
    char id[37];
    uuid_generate_str(id);
    if (task_begin(c->tasks, "volume.import", "volume", id, im->name, task, err) < 0)
        return -1;
    ctl_import_task(im, task);
    struct volume_row_spec r = {.id = id,
                                .name = im->name,
                                .format = fmt,
                                .size = size,
                                .task = task->id,
                                .backing = b.name[0] ? b.name : NULL};
    if (ctl_volume_begin_row(c, &r, &op->v, err) < 0) {
        task_fail(c->tasks, task->id, err);
        return -1;
    }
    struct volume_rec *v = &op->v;
    json_t *p = json_pack("{s:s,s:s}", "file", im->file, "path", v->path);
    task_set_params(c->tasks, task->id, p);
    json_decref(p);
    FAILPOINT("volume_import.after_row");
    /* convert, not copy: every cluster is read back (a truncated file fails
     * here) and holes stay holes */
    json_t *args = json_pack("{s:s,s:s,s:b,s:s,s:s,s:s,s:I}", "src", im->file, "src_format", fmt,
                             "import", 1, "identity", info->identity, "dst", v->path, "dst_format",
                             fmt, "total", (json_int_t)size);
    if (b.name[0]) {
        json_object_set_new(args, "dst_format", json_string("qcow2"));
        json_object_set_new(args, "backing", json_string(b.path));
        json_object_set_new(args, "backing_format", json_string(b.format));
    }
    ctl_import_copy(im, args);
    return 0;
}

static const struct ctl_import_kind volume_import = {
    .what = "source", .begin = begin_copy, .copied = copied};

int ctl_volume_import(struct ctl *c, const char *name, const char *file, const char *format,
                      ctl_task_fn done, void *ctx, struct yerr *err)
{
    struct iop *op = calloc(1, sizeof *op);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    return ctl_import_start(&op->im, c, &volume_import, name, file, format, done, ctx, err);
}
