/*
 * images.h - the image build as a task (the builder runs on the agent),
 * and the image as the API shows it.
 */
#ifndef YUN_CTL_IMAGES_H
#define YUN_CTL_IMAGES_H

#include <jansson.h>

#include "lib/yerr.h"
#include "store/records.h"

struct engine;

/* 0 with *out when the image is there (built before), 1 with *task when a
 * build task runs (just begun, or the one already running), -1 on error. */
int ctl_image_build(struct engine *e, const char *kind, struct image_rec *out,
                    struct task_rec *task, struct yerr *err);
json_t *image_to_json(const struct image_rec *m);
/* Registers the image.build recover function. */
void ctl_images_init(struct engine *e);

#endif
