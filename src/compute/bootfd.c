/*
 * bootfd.c - one sealed memfd copy per image kernel and initrd, shared by
 * every confined start (see bootfd.h). A small table on yund's side: the
 * file's identity when copied and yund's own fd of the copy.
 */
#include "compute/bootfd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOTFD_MAX 16
#define SEALS      (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

struct bootfd {
    int fd; /* -1: a free slot */
    char path[PATH_MAX];
    struct stat st; /* of path, when the memfd was made */
};

static struct bootfd table[BOOTFD_MAX];
static bool table_ready;

static void table_init(void)
{
    if (table_ready)
        return;
    for (int i = 0; i < BOOTFD_MAX; i++)
        table[i].fd = -1;
    table_ready = true;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Filled by a child and sealed, with the whole file in it. */
static bool ready(const struct bootfd *b)
{
    struct stat m;
    return fcntl(b->fd, F_GET_SEALS) == SEALS && fstat(b->fd, &m) == 0 &&
           m.st_size == b->st.st_size;
}

static void drop(struct bootfd *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    b->path[0] = 0;
}

int bootfd_get(const char *path, bool *fill)
{
    table_init();
    *fill = false;
    struct stat st;
    if (strlen(path) >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (stat(path, &st) < 0)
        return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return -1;
    }
    struct bootfd *slot = NULL;
    for (int i = 0; i < BOOTFD_MAX; i++) {
        struct bootfd *b = &table[i];
        if (b->fd < 0) {
            if (!slot)
                slot = b;
            continue;
        }
        struct stat now;
        if (strcmp(b->path, path)) {
            /* another file's copy: kept while that file is unchanged */
            if (stat(b->path, &now) < 0 || !same_file(&now, &b->st)) {
                drop(b);
                if (!slot)
                    slot = b;
            }
            continue;
        }
        if (same_file(&st, &b->st) && ready(b))
            return fcntl(b->fd, F_DUPFD_CLOEXEC, 3);
        drop(b); /* changed, or its filling failed or is still running: a new one */
        if (!slot)
            slot = b;
    }
    if (!slot) {
        slot = &table[0]; /* full: the oldest slot goes (its starts keep their own fds) */
        drop(slot);
    }
    int m = memfd_create("yun-boot", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    if (m < 0)
        return -1;
    int mine = fcntl(m, F_DUPFD_CLOEXEC, 3);
    if (mine < 0) {
        close(m);
        return -1;
    }
    slot->fd = m;
    snprintf(slot->path, sizeof slot->path, "%s", path);
    slot->st = st;
    *fill = true;
    return mine;
}

int bootfd_fill(int fd, const char *path)
{
    int src = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (src < 0)
        return -1;
    if (fstat(src, &st) < 0) {
        close(src);
        return -1;
    }
    for (off_t off = 0; off < st.st_size;)
        if (sendfile(fd, src, &off, (size_t)(st.st_size - off)) <= 0) {
            int e = errno;
            close(src);
            errno = e ? e : EIO;
            return -1;
        }
    close(src);
    return fcntl(fd, F_ADD_SEALS, SEALS) < 0 ? -1 : 0;
}

void bootfd_drop_all(void)
{
    if (!table_ready)
        return;
    for (int i = 0; i < BOOTFD_MAX; i++)
        drop(&table[i]);
}
