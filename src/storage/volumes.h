/*
 * volumes.h - the storage service: a directory pool ("default", under the
 * state directory) and the volumes in it - create, linked or full clone,
 * grow, compact (reclaim unused space), delete. Every operation writes its
 * intent to the store first and removes what it made if it fails.
 */
#ifndef YUN_VOLUMES_H
#define YUN_VOLUMES_H

#include <stdbool.h>
#include <stdint.h>

#include "compute/engine.h"

struct pool_info {
    char name[64];
    char path[512];
    uint64_t capacity;   /* bytes of the file system holding the pool */
    uint64_t available;  /* bytes free there */
    uint64_t allocation; /* bytes the pool's volumes occupy on disk */
    uint64_t virtual_total;
    int volumes;
};

int volumes_init(struct engine *e, char *err, size_t errlen);
/* 409 when linked clones are backed by v (it must not change or go),
 * saying the consequence; 0 when none are. */
int engine_volume_refuse_backing(struct engine *e, const struct volume_rec *v,
                                 const char *consequence, struct yerr *err);
/* A volume by name or id; 404 when there is none. */
int engine_volume_get(struct engine *e, const char *name, struct volume_rec *v, struct yerr *err);
int engine_pool_info(struct engine *e, struct pool_info *p);
int engine_volume_create(struct engine *e, const char *name, uint64_t size, const char *format,
                         struct volume_rec *out, struct yerr *err);
/* The linked clone (quick); a full one is a task (ctl/volumes.c). */
int engine_volume_clone(struct engine *e, const char *src, const char *dst, bool full,
                        struct volume_rec *out, struct yerr *err);
int engine_volume_resize(struct engine *e, const char *name, uint64_t size, struct volume_rec *out,
                         struct yerr *err);
/* A qcow2/raw file from the host becomes a volume (validated; a backing
 * file must be a volume of the pool). */
int engine_volume_import(struct engine *e, const char *name, const char *file, const char *format,
                         struct volume_rec *out, struct yerr *err);
int engine_volume_delete(struct engine *e, const char *name, struct yerr *err);
uint64_t volume_actual_size(const struct volume_rec *v);
/* Runs qemu-img with args (NULL-terminated, without argv[0]), blocking; on
 * failure err gets "qemu-img VERB failed: <its last line of stderr>". The
 * synchronous wrapper kept for the quick operations and for vm_create's
 * overlay, vm_snapshots and confine until they move to the qemu-img leaf. */
int engine_qemu_img(struct engine *e, char *const *args, int timeout_ms, char *err, size_t len);

#endif
