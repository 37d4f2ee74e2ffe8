/*
 * bootfd.h - the sealed memfd copies of images' kernels and initrds that a
 * confined QEMU is handed (-kernel /proc/self/fd/N; see confine.h), one per
 * file and shared by every start of every VM using it.
 *
 * Copying a 14 MB kernel into a fresh memfd took 10-27 ms in the process
 * that becomes QEMU, before its exec: on every start's path. A sealed memfd
 * (no write, grow, shrink, or new seals) cannot change under anyone, so
 * one copy serves all: the start that finds none ready gets an empty memfd
 * that its child fills and seals before QEMU runs (bootfd_fill), and the
 * next starts find it sealed and whole. A file changed on disk (device,
 * inode, size or mtime) or gone drops its copy.
 */
#ifndef YUN_BOOTFD_H
#define YUN_BOOTFD_H

#include <stdbool.h>

/* An fd of the copy of path (a dup: the caller closes it, after the spawn's
 * fork). *fill is false when the copy is ready, true when the fd is a new
 * empty memfd for the child to fill. -1 (errno set) when path cannot be
 * read or no memfd can be made. */
int bootfd_get(const char *path, bool *fill);

/* In the child, still root (async-signal-safe calls only): copies path into
 * the memfd fd and seals it. 0, or -1 with errno. */
int bootfd_fill(int fd, const char *path);

/* Closes every copy (tests; yund's exit). */
void bootfd_drop_all(void);

#endif
