/*
 * cgroup_internal.h - helpers shared by cgroup.c and cgroup_detect.c.
 */
#ifndef YUN_CGROUP_INTERNAL_H
#define YUN_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "compute/cgroup.h"

#define CG_PATH_MAX 512

void cg_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A small control file into buf, trailing whitespace removed: its length,
 * or -1 (errno set). */
ssize_t cg_read_file(const char *path, char *buf, size_t len);
/* out = a/b, or -1 with a reason when it does not fit. */
int cg_join(char *out, size_t outlen, const char *a, const char *b, char *err, size_t errlen);
/* Is word in a space-separated list such as "cpuset cpu io memory"? */
bool cg_has_word(const char *list, const char *word);

/* The pure halves of cg_detect_at (for tests and fuzzing): the v1
 * controller mounts of a mountinfo stream into *out (mode CG_NONE) and the
 * first cgroup2 mount point into unified ("" if none); then, the v2 tree
 * ruled out, the v1 layout from them: 0, or -1 (and *out cleared) if none. */
void cg_mountinfo_scan(FILE *f, struct cg_layout *out, char *unified, size_t unified_len);
int cg_layout_v1(struct cg_layout *out);

/* cgroup_mem.c: the memory policy's half of cg_limits_validate (pure), and
 * its files in a VM's group: v2 memory.max, memory.high, memory.swap.max;
 * v1 memory.limit_in_bytes, memory.memsw.limit_in_bytes,
 * memory.soft_limit_in_bytes, memory.swappiness (parent: the group above,
 * whose swappiness an unlocked VM inherits). */
int cg_memory_validate(const struct cg_limits *l, enum cg_swap_acct swap_acct, char *err,
                       size_t errlen);
int cg_v2_memory_setup(const char *dir, const struct cg_limits *l, char *err, size_t errlen);
int cg_v1_memory_setup(const char *parent, const char *dir, const struct cg_limits *l, char *err,
                       size_t errlen);
/* The value in dir/file (0), or -1 with a reason naming the file. */
int cg_write_in(const char *dir, const char *file, const char *val, char *err, size_t errlen);

#endif
