/*
 * image_check.h - pure checks of an image record (no store, no engine).
 */
#ifndef YUN_IMAGE_CHECK_H
#define YUN_IMAGE_CHECK_H

#include <stdint.h>

#include "lib/yerr.h"
#include "store/records.h"

/* 0 when memory_mb is at least what the image needs, else -1 with a 400.
 * (Also declared in compute/engine.h, where its callers find it.) */
int engine_image_memory_check(const struct image_rec *img, uint64_t memory_mb, struct yerr *err);

#endif
