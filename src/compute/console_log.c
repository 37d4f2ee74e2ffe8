/*
 * console_log.c - the cap on a VM's console.log (see console_log.h) and
 * reading it by stable offsets.
 *
 * The cut must not lose what QEMU appends meanwhile. QEMU's descriptor is
 * O_APPEND, so each of its writes goes to the end of the file as it is at
 * that moment. fallocate(FALLOC_FL_COLLAPSE_RANGE) removes the head in place
 * under the inode lock: a write lands either before (and moves down with the
 * rest) or after (at the new end), and nothing is lost. File systems without
 * it (tmpfs, older ones) get copy-tail-and-truncate, which can lose the few
 * bytes QEMU appends between the last size check and the truncate.
 *
 * The cost is bounded by the cap, not by the file: at most max/2 bytes are
 * copied to console.log.1 (and, without COLLAPSE_RANGE, max/2 moved), so a
 * file that grew to gigabytes while yund was down is cut just as cheaply.
 */
#include "compute/console_log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *what, const char *path)
{
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
    return -1;
}

static uint64_t read_base(const char *path)
{
    char p[PATH_MAX];
    if (snprintf_checked(p, sizeof(p), "%s" CONSOLE_LOG_BASE, path) < 0)
        return 0;
    char *s = read_file(p, 64, NULL);
    uint64_t v = 0;
    if (s) {
        s[strcspn(s, "\n")] = 0;
        if (parse_u64(s, 0, UINT64_MAX >> 2, &v) < 0)
            v = 0;
        free(s);
    }
    return v;
}

/* A new file at path (never through whatever is there: the VM directory may
 * be writable by the VM's unprivileged QEMU), filled by fill(), then renamed
 * over dst. No fsync: losing these to a power cut costs a little history. */
static int replace_file(const char *dst, int (*fill)(int fd, void *arg), void *arg)
{
    char tmp[PATH_MAX];
    if (snprintf_checked(tmp, sizeof(tmp), "%s.tmp", dst) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    int rc = fill(fd, arg);
    int keep = errno;
    if (close(fd) < 0 && rc == 0) {
        rc = -1;
        keep = errno;
    }
    if (rc < 0) {
        unlink(tmp);
        errno = keep;
        return -1;
    }
    if (rename(tmp, dst) < 0) {
        keep = errno;
        unlink(tmp);
        errno = keep;
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

struct range {
    int src;
    uint64_t from, len;
};

static int fill_range(int fd, void *arg)
{
    struct range *r = arg;
    char buf[65536];
    uint64_t pos = r->from, left = r->len;
    while (left) {
        ssize_t n = pread(r->src, buf, left < sizeof(buf) ? left : sizeof(buf), (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -1 : 0; /* shorter than expected: keep what there is */
        if (write_all(fd, buf, (size_t)n) < 0)
            return -1;
        pos += (uint64_t)n;
        left -= (uint64_t)n;
    }
    return 0;
}

static int fill_number(int fd, void *arg)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "%" PRIu64 "\n", *(uint64_t *)arg);
    return write_all(fd, s, (size_t)n);
}

/* Without COLLAPSE_RANGE: moves [cut, EOF) to the front and truncates.
 * QEMU appends past whatever we have read, so the copy runs to the end as
 * it is just before the truncate; what QEMU writes between that last look
 * and ftruncate (microseconds) is lost. Source and destination never
 * overlap wrongly: reading stays `cut` bytes ahead of writing. */
static int cut_by_copy(int fd, uint64_t cut)
{
    char buf[65536];
    uint64_t rd = cut, wr = 0;
    for (int round = 0; round < 8; round++) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -1;
        uint64_t size = (uint64_t)st.st_size;
        if (rd >= size)
            break;
        while (rd < size) {
            ssize_t n =
                pread(fd, buf, size - rd < sizeof(buf) ? size - rd : sizeof(buf), (off_t)rd);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return -1;
            for (ssize_t done = 0; done < n;) {
                ssize_t w = pwrite(fd, buf + done, (size_t)(n - done), (off_t)(wr + done));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0)
                    return -1;
                done += w;
            }
            rd += (uint64_t)n;
            wr += (uint64_t)n;
        }
    }
    return ftruncate(fd, (off_t)wr);
}

int console_log_cap(const char *path, uint64_t max, char *err, size_t errlen)
{
    struct stat st;
    /* The common case, every pass for every VM: a stat and nothing else. */
    if (!max)
        return 0;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : fail(err, errlen, "cannot stat", path);
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size <= max)
        return 0;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : fail(err, errlen, "cannot open", path);
    if (fstat(fd, &st) < 0) {
        close(fd);
        return fail(err, errlen, "cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return fail(err, errlen, "not a regular file:", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size <= max) {
        close(fd);
        return 0;
    }
    uint64_t keep = max / 2;
    uint64_t blk = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
    /* COLLAPSE_RANGE takes whole file-system blocks. */
    uint64_t cut = (size - keep) / blk * blk;
    if (!cut)
        cut = size - keep;

    char old[PATH_MAX], basep[PATH_MAX];
    if (snprintf_checked(old, sizeof(old), "%s" CONSOLE_LOG_OLD, path) < 0 ||
        snprintf_checked(basep, sizeof(basep), "%s" CONSOLE_LOG_BASE, path) < 0) {
        close(fd);
        errno = ENAMETOOLONG;
        return fail(err, errlen, "cannot cut", path);
    }
    /* Order: .1 first, then the cut, then the base. A crash in between
     * leaves the offsets of a follower a little off, never a byte of the
     * kept tail lost. */
    uint64_t save = cut < keep ? cut : keep;
    struct range r = {.src = fd, .from = cut - save, .len = save};
    if (replace_file(old, fill_range, &r) < 0) {
        close(fd);
        return fail(err, errlen, "cannot write", old);
    }
    if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)cut) < 0) {
        if ((errno != EOPNOTSUPP && errno != EINVAL) || cut_by_copy(fd, cut) < 0) {
            close(fd);
            return fail(err, errlen, "cannot cut", path);
        }
    }
    close(fd);
    uint64_t base = read_base(path) + cut;
    if (replace_file(basep, fill_number, &base) < 0)
        return fail(err, errlen, "cannot write", basep);
    return 1;
}

static int read_range(int fd, uint64_t pos, uint64_t want, struct console_chunk *out)
{
    if (!want)
        return 0;
    out->data = malloc(want);
    if (!out->data)
        return -1;
    while (out->len < want) {
        ssize_t n = pread(fd, out->data + out->len, want - out->len, (off_t)(pos + out->len));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    return 0;
}

int console_log_read(const char *path, uint64_t offset, uint64_t limit, struct console_chunk *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t base = read_base(path), size = 0, old_size = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), ofd = -1;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        size = (uint64_t)st.st_size;
    char old[PATH_MAX];
    if (snprintf_checked(old, sizeof(old), "%s" CONSOLE_LOG_OLD, path) >= 0 && base > 0)
        ofd = open(old, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (ofd >= 0 && fstat(ofd, &st) == 0 && S_ISREG(st.st_mode))
        old_size = (uint64_t)st.st_size < base ? (uint64_t)st.st_size : base;
    out->start = base - old_size;
    out->end = base + size;
    if (offset < out->start)
        offset = out->start;
    if (offset > out->end)
        offset = out->end;
    int rc;
    if (offset < base) /* in the part cut off last time; the next read goes on at base */
        rc = read_range(ofd, offset - out->start, base - offset < limit ? base - offset : limit,
                        out);
    else
        rc = read_range(fd, offset - base, out->end - offset < limit ? out->end - offset : limit,
                        out);
    int keep = errno;
    if (fd >= 0)
        close(fd);
    if (ofd >= 0)
        close(ofd);
    if (rc < 0) {
        free(out->data);
        out->data = NULL;
        out->len = 0;
        errno = keep;
        return -1;
    }
    if (!out->len) {
        free(out->data);
        out->data = NULL;
    }
    out->offset = offset;
    out->next = offset + out->len;
    return 0;
}
