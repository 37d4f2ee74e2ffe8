/*
 * volumes.h - the storage side of the volume pool: where the directory pool
 * ("default", under the state directory) lives and what its volumes
 * occupy. No store, no engine, no events: the volume rows and the
 * state-of-record operations
 * (create, clone, resize, delete, import) are the controller's
 * (ctl/volumes_quick.c, ctl/volumes_import.c), their qemu-img work the
 * agent's disk verbs.
 */
#ifndef YUN_VOLUMES_H
#define YUN_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/yerr.h"
#include "store/records.h"

#define VOLUME_POOL "default"
#define VOLUME_MAX  (16ULL << 40)

struct pool_info {
    char name[64];
    char path[512];
    uint64_t capacity;   /* bytes of the file system holding the pool */
    uint64_t available;  /* bytes free there */
    uint64_t allocation; /* bytes the pool's volumes occupy on disk */
    uint64_t virtual_total;
    int volumes;
};

/* Makes the pool directory and the default exchange directory. */
int volumes_init(const struct yun_config *cfg, char *err, size_t errlen);
/* DIR/pools/default */
void volume_pool_dir(const struct yun_config *cfg, char *buf, size_t len);
/* The pool's file system and what the volumes vs (the controller's rows)
 * occupy in it. */
void volume_pool_info(const struct yun_config *cfg, const struct volume_rec *vs, size_t n,
                      struct pool_info *p);
uint64_t volume_actual_size(const struct volume_rec *v);
/* Is `path` (resolved) a file inside the pool directory? Fills real. */
bool volume_inside_pool(const struct yun_config *cfg, const char *path, char *real, size_t len);

#endif
