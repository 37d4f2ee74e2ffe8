/*
 * exchange.h - the only places where files cross into and out of yund:
 * imports read from `import_dirs`, exports write into `export_dirs`
 * (default for both: <state_dir>/exchange).
 *
 * A path given by a user must lie inside one of those directories by whole
 * components; it is then opened relative to that directory's descriptor
 * without leaving it (openat2 RESOLVE_BENEATH: no "..", no absolute or
 * /proc symlinks, no symlink that points outside). qemu-img gets the open
 * descriptor as /dev/fd/N, so nothing is looked up a second time.
 */
#ifndef YUN_EXCHANGE_H
#define YUN_EXCHANGE_H

#include "lib/config.h"
#include "lib/yerr.h"

struct exchange_file {
    int fd;          /* import: the file (read-only); export: the new .part file */
    int dirfd;       /* export: the directory holding it; -1 otherwise */
    char name[256];  /* export: the final name inside dirfd */
    char part[264];  /* export: name + ".part" */
    char fdpath[32]; /* "/dev/fd/N": what qemu-img is given */
    int committed;
};

/* Opens a file to import: 400 when the path is outside import_dirs, leads
 * out of them through a symlink, or is not a regular file. */
int exchange_open_import(const struct yun_config *c, const char *path, struct exchange_file *x,
                         struct yerr *err);
/* Creates path.part (O_EXCL, mode 0600) for an export: 400 when the path is
 * outside export_dirs or its directory leads out of them, 409 when path or
 * path.part exists. */
int exchange_create_export(const struct yun_config *c, const char *path, struct exchange_file *x,
                           struct yerr *err);
/* Renames the .part file to its final name, never over an existing file. */
int exchange_commit_export(struct exchange_file *x, struct yerr *err);
/* Closes the descriptors; an export not committed loses its .part file. */
void exchange_close(struct exchange_file *x);
/* Would an export to path be accepted? (exchange_create_export, then the
 * .part file it made is removed again.) */
int exchange_check_export(const struct yun_config *c, const char *path, struct yerr *err);
/* Removes path.part (what an interrupted export leaves); 0 when none is there. */
int exchange_remove_part(const struct yun_config *c, const char *path, struct yerr *err);
/* proc_run_ex pre_exec hook, arg pointing to an int descriptor (such as
 * &x->fd): lets the child inherit it, where yund holds it close-on-exec. */
int exchange_inherit_fd(void *fdp);

#endif
