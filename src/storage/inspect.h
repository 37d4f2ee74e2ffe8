/*
 * inspect.h - what a disk file from outside really is, before yun trusts
 * it: qemu-img info (format, size, backing file, the corrupt flag) and, for
 * qcow2, qemu-img check (metadata consistency).
 */
#ifndef YUN_INSPECT_H
#define YUN_INSPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lib/yerr.h"

struct disk_info {
    char format[8]; /* qcow2 or raw */
    uint64_t virtual_size;
    char backing[512];      /* the backing file, resolved to a full path ("" = none) */
    char backing_format[8]; /* "" when the header does not say */
};

/* Refuses (400 invalid_image) formats other than qcow2/raw, a format other
 * than want_format (when given), a corrupt qcow2 (flagged, or failing
 * check), a missing size, and raw files that are not whole sectors. */
int disk_inspect(const char *qemu_img, const char *file, const char *want_format,
                 struct disk_info *out, struct yerr *err);
/* The same for a file yund holds open (an import): qemu-img reads it as
 * /dev/fd/N, so the file checked is the file yund opened; name is what
 * messages call it. */
int disk_inspect_fd(const char *qemu_img, int fd, const char *name, const char *want_format,
                    struct disk_info *out, struct yerr *err);

/* The rules above, pure: judges qemu-img info's JSON of a file with stat
 * st (messages call it file). *need_check: a qcow2, whose `qemu-img check`
 * result (its JSON) disk_check_judge then judges. */
int disk_info_judge(json_t *info, const struct stat *st, const char *file, const char *want_format,
                    struct disk_info *out, bool *need_check, struct yerr *err);
int disk_check_judge(json_t *check, struct yerr *err);

#endif
