/*
 * import_task.c - the wiring volume and image imports share (see
 * import_task.h): checks, disk.inspect, the kind's begin, disk.copy with
 * progress and cancel, the kind's end.
 */
#include "ctl/import_task.h"
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/tasks.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ctl_import_check(const struct ctl_import_kind *kind, const char *name, const char *file,
                     const char *format, struct yerr *err)
{
    char why[256];
    if (!name_valid(name, why, sizeof(why)))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (!file || strlen(file) >= 512)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a path", kind->what);
    if (format && format[0] && strcmp(format, "qcow2") && strcmp(format, "raw"))
        return yerr_set(err, YE_INVALID_ARGUMENT, "format must be qcow2 or raw, not '%s'", format);
    return 0;
}

static void import_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct ctl_import *im = ctx;
    task_progress(im->c->tasks, im->task, done, total);
}

static void import_cancel(void *ctx)
{
    struct ctl_import *im = ctx;
    ctl_disk_cancel(im->c, im->call);
}

static void copied(void *ctx, json_t *result, const struct yerr *aerr)
{
    struct ctl_import *im = ctx;
    (void)result;
    im->kind->copied(im, aerr);
    free(im);
}

void ctl_import_task(struct ctl_import *im, const struct task_rec *task)
{
    snprintf(im->task, sizeof im->task, "%s", task->id);
}

void ctl_import_copy(struct ctl_import *im, json_t *args)
{
    im->call = ctl_disk_call(im->c, AV_DISK_COPY, args, copied, import_progress, im);
    task_on_cancel(im->c->tasks, im->task, import_cancel, im);
}

void ctl_import_abort(struct ctl_import *im, const struct yerr *err)
{
    task_fail(im->c->tasks, im->task, err);
    free(im);
}

static void inspected(void *ctx, json_t *res, const struct yerr *aerr)
{
    struct ctl_import *im = ctx;
    struct yerr err = {0};
    struct task_rec task = {0};
    ctl_import_fn done = im->done;
    void *dctx = im->ctx;
    if (aerr) {
        free(im);
        done(dctx, NULL, aerr);
        return;
    }
    struct ctl_import_info info = {
        .format = json_string_value(json_object_get(res, "format")),
        .backing = json_string_value(json_object_get(res, "backing")),
        .identity = json_string_value(json_object_get(res, "identity")),
    };
    json_int_t size = json_integer_value(json_object_get(res, "virtual_size"));
    if (!info.format || !info.identity || size <= 0)
        yerr_set(&err, YE_INTERNAL, "agent: disk.inspect without format, size or identity");
    info.size = size > 0 ? (uint64_t)size : 0;
    if (err.code || im->kind->begin(im, &info, &task, &err) < 0) {
        free(im);
        done(dctx, NULL, &err);
        return;
    }
    done(dctx, &task, NULL); /* im is the copy's now */
}

int ctl_import_start(struct ctl_import *im, struct ctl *c, const struct ctl_import_kind *kind,
                     const char *name, const char *file, const char *format, ctl_import_fn done,
                     void *ctx, struct yerr *err)
{
    if (ctl_import_check(kind, name, file, format, err) < 0) {
        free(im);
        return -1;
    }
    im->c = c;
    im->kind = kind;
    im->done = done;
    im->ctx = ctx;
    snprintf(im->name, sizeof im->name, "%s", name);
    snprintf(im->file, sizeof im->file, "%s", file);
    snprintf(im->want, sizeof im->want, "%s", format ? format : "");
    json_t *args = json_pack("{s:s,s:b}", "path", file, "import", 1);
    if (im->want[0])
        json_object_set_new(args, "format", json_string(im->want));
    if (!ctl_disk_call(c, AV_DISK_INSPECT, args, inspected, NULL, im)) {
        free(im);
        return yerr_set(err, YE_INTERNAL, "agent: cannot ask to inspect %s", file);
    }
    return 0;
}
