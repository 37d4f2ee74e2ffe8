/*
 * exchange.c - confining imports to import_dirs and exports to export_dirs:
 * component-wise path checks, openat2 beneath the directory, descriptors
 * handed to qemu-img as /dev/fd/N.
 */
#include "storage/exchange.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Never out of the directory: no "..", no absolute symlink, no symlink
 * whose target lies outside, no /proc magic link. */
static int open_beneath(int dirfd, const char *rel, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)flags,
        .mode = 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

/* Which configured directory holds path, by whole components. Fills dir and
 * *rest (the path relative to it, never empty). */
static bool find_dir(const char *list, const char *path, char *dir, size_t dirlen,
                     const char **rest)
{
    const char *cur = list;
    while (config_dirs_next(&cur, dir, dirlen)) {
        const char *r = path_beneath(dir, path);
        if (r && *r) {
            *rest = r;
            return true;
        }
    }
    return false;
}

/* The directory's real location must not be inside the state directory,
 * except for the exchange directory: a configured directory may be a
 * symlink, so this is judged on what the descriptor really is. */
static int check_not_state(const struct yun_config *c, int rootfd, const char *dir,
                           const char *what, struct yerr *err)
{
    char link[64], real[PATH_MAX], state[PATH_MAX], exch[PATH_MAX + 16];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", rootfd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n < 0 || !realpath(c->state_dir, state))
        return yerr_set(err, YE_INTERNAL, "cannot resolve %s: %s", dir, strerror(errno));
    real[n] = 0;
    snprintf(exch, sizeof(exch), "%s/exchange", state);
    if (path_beneath(state, real) && !path_beneath(exch, real))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "%s directory %s is inside yund's state directory (%s)", what, dir, real);
    return 0;
}

/* Common checks; opens the configured directory that holds path. */
static int open_root(const struct yun_config *c, const char *path, bool import, char *dir,
                     size_t dirlen, const char **rest, struct yerr *err)
{
    const char *what = import ? "import" : "export";
    const char *list = import ? c->import_dirs : c->export_dirs;
    const char *key = import ? "import_dirs" : "export_dirs";
    if (!path || path[0] != '/')
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s path must be an absolute path", what);
    if (strlen(path) >= PATH_MAX)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s path is too long", what);
    if (path_has_dot_component(path))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "%s path %s has a . or .. component: give it plainly", what, path);
    if (!find_dir(list, path, dir, dirlen, rest))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s path %s is outside %s (%s)", what, path, key,
                        list);
    int rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s directory %s (from %s): %s", what, dir, key,
                        strerror(errno));
    if (check_not_state(c, rootfd, dir, what, err) < 0) {
        close(rootfd);
        return -1;
    }
    return rootfd;
}

static int beneath_error(struct yerr *err, int e, const char *what, const char *path,
                         const char *key, const char *list)
{
    if (e == EXDEV || e == ELOOP)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "%s path %s leads outside %s (%s) through a symlink: symlinks are "
                        "followed only within those directories",
                        what, path, key, list);
    if (e == ENOSYS)
        return yerr_set(err, YE_INTERNAL, "this kernel has no openat2 (Linux 5.6 or later)");
    return yerr_set(err, YE_INVALID_ARGUMENT, "cannot read %s: %s", path, strerror(e));
}

static void init(struct exchange_file *x)
{
    memset(x, 0, sizeof(*x));
    x->fd = x->dirfd = -1;
}

int exchange_open_import(const struct yun_config *c, const char *path, struct exchange_file *x,
                         struct yerr *err)
{
    init(x);
    char dir[PATH_MAX];
    const char *rest;
    int rootfd = open_root(c, path, true, dir, sizeof(dir), &rest, err);
    if (rootfd < 0)
        return -1;
    /* O_NONBLOCK: a FIFO planted in the directory must not stall the loop;
     * it is refused just below as not a regular file */
    int fd = open_beneath(rootfd, rest, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    int e = errno;
    close(rootfd);
    if (fd < 0)
        return beneath_error(err, e, "import", path, "import_dirs", c->import_dirs);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s is not a regular file", path);
    }
    x->fd = fd;
    snprintf(x->fdpath, sizeof(x->fdpath), "/dev/fd/%d", fd);
    return 0;
}

int exchange_create_export(const struct yun_config *c, const char *path, struct exchange_file *x,
                           struct yerr *err)
{
    init(x);
    char dir[PATH_MAX], parent[PATH_MAX];
    const char *rest;
    int rootfd = open_root(c, path, false, dir, sizeof(dir), &rest, err);
    if (rootfd < 0)
        return -1;
    snprintf(parent, sizeof(parent), "%s", rest);
    char *slash = strrchr(parent, '/');
    const char *base = slash ? slash + 1 : parent;
    if (!*base || strlen(base) >= sizeof(x->name)) {
        close(rootfd);
        return yerr_set(err, YE_INVALID_ARGUMENT, "export path %s does not name a file", path);
    }
    snprintf(x->name, sizeof(x->name), "%s", base);
    snprintf(x->part, sizeof(x->part), "%s.part", base);
    if (slash) {
        *slash = 0;
        x->dirfd = open_beneath(rootfd, parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int e = errno;
        close(rootfd);
        if (x->dirfd < 0) {
            x->part[0] = 0; /* nothing of ours to remove */
            return beneath_error(err, e, "export", path, "export_dirs", c->export_dirs);
        }
    } else {
        x->dirfd = rootfd;
    }
    struct stat st;
    int there = fstatat(x->dirfd, x->name, &st, AT_SYMLINK_NOFOLLOW), e = errno;
    if (there == 0 || e != ENOENT) {
        x->part[0] = 0;
        exchange_close(x);
        if (there == 0)
            return yerr_set(err, YE_CONFLICT, "%s exists: yun does not overwrite files", path);
        return yerr_set(err, YE_INVALID_ARGUMENT, "cannot check %s: %s", path, strerror(e));
    }
    /* ours alone: never a file that was there, nor a symlink planted in
     * its place */
    x->fd = openat(x->dirfd, x->part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (x->fd < 0) {
        e = errno;
        x->part[0] = 0;
        exchange_close(x);
        return yerr_set(err, YE_CONFLICT, "cannot create %s.part: %s", path, strerror(e));
    }
    snprintf(x->fdpath, sizeof(x->fdpath), "/dev/fd/%d", x->fd);
    return 0;
}

int exchange_commit_export(struct exchange_file *x, struct yerr *err)
{
    if (renameat2(x->dirfd, x->part, x->dirfd, x->name, RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST)
            return yerr_set(err, YE_CONFLICT,
                            "%s appeared during the export: yun does not overwrite files", x->name);
        return yerr_disk(err, "rename %s: %s", x->part, strerror(errno));
    }
    x->committed = 1;
    return 0;
}

void exchange_close(struct exchange_file *x)
{
    if (x->fd >= 0)
        close(x->fd);
    if (x->dirfd >= 0) {
        if (!x->committed && x->part[0])
            unlinkat(x->dirfd, x->part, 0);
        close(x->dirfd);
    }
    x->fd = x->dirfd = -1;
}

int exchange_inherit_fd(void *fdp)
{
    int fd = *(const int *)fdp;
    int fl = fcntl(fd, F_GETFD);
    return fl < 0 || fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0 ? -1 : 0;
}
