/*
 * import_task.h - the wiring an import into the controller shares (a file
 * from an import directory becoming a volume, volumes_import.c, or an
 * image, images_import.c): the request checked, the file judged by the
 * agent (disk.inspect), then the kind's task and row, and the copy
 * (disk.copy of that same file) reporting progress into the task and
 * stopped by its cancel.
 */
#ifndef YUN_CTL_IMPORT_TASK_H
#define YUN_CTL_IMPORT_TASK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/yerr.h"
#include "store/records.h"

struct ctl;
struct ctl_import;

/* What disk.inspect found. */
struct ctl_import_info {
    const char *format, *backing, *identity;
    uint64_t size;
};

struct ctl_import_kind {
    const char *what; /* how a message names the file: "source", "file" */
    /* The file is judged: the kind's checks, its task (ctl_import_task)
     * and row, then ctl_import_copy. -1 with err when nothing runs (a task
     * begun is failed by begin itself). */
    int (*begin)(struct ctl_import *im, const struct ctl_import_info *info, struct task_rec *task,
                 struct yerr *err);
    /* The copy ended (aerr NULL: done): the kind settles its row and its
     * task; the import is freed after. */
    void (*copied)(struct ctl_import *im, const struct yerr *aerr);
};

typedef void (*ctl_import_fn)(void *ctx, const struct task_rec *task, const struct yerr *err);

/* The first member of each kind's own import state (calloc'd by the
 * kind: freed here). */
struct ctl_import {
    struct ctl *c;
    const struct ctl_import_kind *kind;
    char name[64], file[512], want[8];
    char task[37];
    uint64_t call;
    ctl_import_fn done;
    void *ctx;
};

/* Checks name, file and format, then asks the agent to judge the file;
 * done runs once, from the loop, with the task (running) or the error.
 * -1 with err (im freed, done never runs). */
int ctl_import_start(struct ctl_import *im, struct ctl *c, const struct ctl_import_kind *kind,
                     const char *name, const char *file, const char *format, ctl_import_fn done,
                     void *ctx, struct yerr *err);
/* The name checks alone (a kind refuses a taken name before the agent
 * is asked). */
int ctl_import_check(const struct ctl_import_kind *kind, const char *name, const char *file,
                     const char *format, struct yerr *err);
/* From begin: the task has begun (its id kept for progress and cancel). */
void ctl_import_task(struct ctl_import *im, const struct task_rec *task);
/* From begin: disk.copy with args (stolen), its progress into the task,
 * the task's cancel stopping it; copied runs when it ends. */
void ctl_import_copy(struct ctl_import *im, json_t *args);

/* From the kind, after begin, before the copy: the task fails with err
 * and the import is freed (copied never runs). */
void ctl_import_abort(struct ctl_import *im, const struct yerr *err);

#endif
