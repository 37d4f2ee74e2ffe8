/*
 * images_fetch.h - images on hosts without the cluster's library: which
 * hosts share it, an image's paths on a host, the image.fetch task that
 * copies an image to a host that lacks it (images_fetch.c).
 */
#ifndef YUN_CTL_IMAGES_FETCH_H
#define YUN_CTL_IMAGES_FETCH_H

#include <stdbool.h>

#include "lib/yerr.h"
#include "store/records.h"

struct ctl;

/* host_id's images_dir is the controller's: it reads the library itself
 * (shared storage, or the all-in-one's own host). Unknown hosts: true. */
bool ctl_host_shares_library(struct ctl *c, const char *host_id);
/* img's file paths as host_id sees them (under its own images_dir). */
void ctl_image_on_host(struct ctl *c, const char *host_id, struct image_rec *img);
/* file is one of img's files (its disk, kernel or initrd by base name):
 * true with its path in the library. */
bool ctl_image_serves(const struct image_rec *img, const char *file, char path[512]);
/* 0: host_id has img now (it shares the library, or holds a verified
 * copy). 1: the task image.fetch runs (or was running: one for every
 * caller); done runs once, from the loop (err NULL: the host has it).
 * -1 with err: done never runs. */
typedef void (*ctl_image_ready_fn)(void *ctx, const struct yerr *err);
int ctl_image_ensure(struct ctl *c, const char *host_id, const struct image_rec *img,
                     ctl_image_ready_fn done, void *ctx, struct yerr *err);
/* No done runs for ctx again. */
void ctl_image_fetch_forget(struct ctl *c, void *ctx);
/* A fetch of the image (its id) runs to some host. */
bool ctl_image_fetching(struct ctl *c, const char *image_id);
/* After the image's row went: each host's copy removed (image.remove on
 * the host, not waited for) and forgotten. */
void ctl_image_remove_copies(struct ctl *c, const struct image_rec *img);
void ctl_image_fetches_shutdown(struct ctl *c);
/* Registers image.fetch's recovery (an interrupted fetch ends failed). */
void ctl_images_fetch_init(struct ctl *c);

#endif
