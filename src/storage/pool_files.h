/*
 * pool_files.h - disk-file housekeeping of a directory pool, with no store
 * and no engine: the caller says which file names are known.
 */
#ifndef YUN_POOL_FILES_H
#define YUN_POOL_FILES_H

#include <stddef.h>

/* Called for each file removed (its name), for the event log. */
typedef void (*pool_orphan_fn)(void *ctx, const char *name);
/* Removes every regular file in dir whose name is not in known[0..n).
 * Returns how many were removed, or -1 when dir cannot be read. */
int pool_remove_orphans(const char *dir, const char *const *known, size_t n, pool_orphan_fn fn,
                        void *ctx);

#endif
