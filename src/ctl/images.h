/*
 * images.h - the image library, controller side: the image build and the
 * import as tasks (the builder and the copy run on the agent), reads,
 * delete, and the image as the API shows it.
 */
#ifndef YUN_CTL_IMAGES_H
#define YUN_CTL_IMAGES_H

#include <jansson.h>
#include <stddef.h>

#include "lib/yerr.h"
#include "store/records.h"

struct ctl;

/* 0 with *out when the image is there (built before), 1 with *task when a
 * build task runs (just begun, or the one already running), -1 on error. */
int ctl_image_build(struct ctl *c, const char *kind, struct image_rec *out, struct task_rec *task,
                    struct yerr *err);
json_t *image_to_json(const struct image_rec *m);

/* ---- images_import.c ---- */
int ctl_image_list(struct ctl *c, struct image_rec **out, size_t *n, struct yerr *err);
int ctl_image_get(struct ctl *c, const char *name, struct image_rec *out, struct yerr *err);
/* Refused (409) while a VM uses it: -1 with err, done never runs. Else the
 * row goes and done runs once, from the loop, when the agent has removed the
 * image's directory (a removal failure is only logged: err is NULL). */
typedef void (*ctl_image_done_fn)(void *ctx, const struct yerr *err);
int ctl_image_delete(struct ctl *c, const char *name, ctl_image_done_fn done, void *ctx,
                     struct yerr *err);
/* The file is judged first (agent disk.inspect: 400 when it is no usable
 * standalone disk image); then the task "image.import" copies it in. done
 * runs once, from the loop, with the task (running) or the error (nothing
 * begun). -1 with err: done never runs. */
typedef void (*ctl_image_task_fn)(void *ctx, const struct task_rec *task, const struct yerr *err);
int ctl_image_import(struct ctl *c, const char *name, const char *file, const char *format,
                     ctl_image_task_fn done, void *ctx, struct yerr *err);
/* Between the image files: the row of an image whose files are in place
 * (id, time and size on disk filled in); registers import's recovery. */
/* DIR/images/NAME: where an image's files are. */
void ctl_image_dir(struct ctl *c, const char *name, char *buf, size_t len);
/* Removes DIR/images/NAME through the agent (image.remove), not waited for. */
void ctl_image_remove_dir(struct ctl *c, const char *name);
/* A build or import (action) of image name failed with err: its directory
 * goes (agent image.remove), then the event and task's failure. */
void ctl_image_rollback(struct ctl *c, const char *name, const char *action, const char *task,
                        const struct yerr *err);
int ctl_image_register(struct ctl *c, struct image_rec *m, struct yerr *err);
void ctl_images_import_init(struct ctl *c);
/* Registers the image.build recover function. */
void ctl_images_init(struct ctl *c);

#endif
