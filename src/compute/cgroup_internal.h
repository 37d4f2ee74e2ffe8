/*
 * cgroup_internal.h - helpers shared by cgroup.c and cgroup_detect.c.
 */
#ifndef YUN_CGROUP_INTERNAL_H
#define YUN_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

#endif
