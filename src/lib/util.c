/*
 * util.c - helpers with no knowledge of VMs: parsing, time, files, ids, pids.
 */
#include "lib/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    uint64_t mult = 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mult = 1ULL << 10;
            break;
        case 'M':
            mult = 1ULL << 20;
            break;
        case 'G':
            mult = 1ULL << 30;
            break;
        case 'T':
            mult = 1ULL << 40;
            break;
        default:
            return -1;
        }
        end++;
        /* accept "512M", "512MB", "512MiB" */
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -1;
    }
    if (v > UINT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

void format_size(uint64_t b, char *buf, size_t len)
{
    static const char units[] = "BKMGTP";
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%lluB", (unsigned long long)b);
    else if (v == (double)(uint64_t)v)
        snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
    else
        snprintf(buf, len, "%.1f%c", v, units[u]);
}

bool name_valid(const char *s, char *why, size_t whylen)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0) {
        snprintf(why, whylen, "name is empty");
        return false;
    }
    if (n > YUN_NAME_MAX) {
        snprintf(why, whylen, "name is %zu characters long, at most %d allowed", n, YUN_NAME_MAX);
        return false;
    }
    if (!isalnum((unsigned char)s[0])) {
        snprintf(why, whylen, "name '%.63s' must start with a letter or digit", s);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.')) {
            snprintf(why, whylen, "name '%.63s' has a character outside [A-Za-z0-9_.-]", s);
            return false;
        }
    }
    return true;
}

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int mkdir_p(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf_checked(tmp, sizeof(tmp), "%s", path) < 0)
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

int remove_tree(const char *path)
{
    if (strlen(path) < 8) {
        errno = EINVAL;
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char child[PATH_MAX];
        if (snprintf_checked(child, sizeof(child), "%s/%s", path, de->d_name) < 0) {
            rc = -1;
            continue;
        }
        if (remove_tree(child) < 0)
            rc = -1;
    }
    closedir(d);
    if (rmdir(path) < 0)
        rc = -1;
    return rc;
}

char *read_file(const char *path, size_t max, size_t *len_out)
{
    /* Only regular files: a FIFO planted where a small file is expected (a
     * guest's QEMU owns its VM directory) must not block yund's loop. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct stat fst;
    int bad = fstat(fd, &fst) < 0 ? errno : !S_ISREG(fst.st_mode) ? EINVAL : 0;
    if (bad) {
        close(fd);
        errno = bad;
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max)
                break;
            cap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                close(fd);
                return NULL;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;
            free(buf);
            close(fd);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    if (len_out)
        *len_out = len;
    return buf;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf_checked(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) < 0)
        return -1;
    /* made afresh: a link planted under the temporary name (in a directory
     * a confined QEMU owns) is removed, never written through */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

bool path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

uint64_t file_size_on_disk(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    return (uint64_t)st.st_blocks * 512;
}

void uuid_generate_str(char out[37])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, b, sizeof(b)) : -1;
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof(b)) {
        /* /dev/urandom is always there on Linux; this only keeps ids unique. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        for (int i = 0; i < 16; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            b[i] = (unsigned char)(x >> 56);
        }
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* A read of /proc that failed for want of descriptors, memory or permission
 * says nothing about the process; only ENOENT/ESRCH mean it is gone. */
static enum pid_state proc_read_failed(int err)
{
    return (err == ENOENT || err == ESRCH) ? PID_GONE : PID_UNKNOWN;
}

enum pid_state pid_state(pid_t pid)
{
    if (pid <= 0)
        return PID_GONE;
    if (kill(pid, 0) < 0 && errno != EPERM)
        return errno == ESRCH ? PID_GONE : PID_UNKNOWN;
    /* kill(0) also answers for a zombie: look at its state. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char *st = read_file(path, 4096, NULL);
    if (!st)
        return proc_read_failed(errno);
    bool zombie = proc_stat_zombie(st);
    free(st);
    return zombie ? PID_GONE : PID_LIVE;
}

bool proc_stat_zombie(const char *stat)
{
    const char *rp = strrchr(stat, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

enum pid_state pid_state_of(pid_t pid, const char *needle)
{
    enum pid_state ps = pid_state(pid);
    if (ps != PID_LIVE)
        return ps;
    char path[64];
    size_t len;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    char *buf = read_file(path, 1 << 20, &len);
    if (!buf)
        return proc_read_failed(errno);
    for (size_t i = 0; i < len; i++)
        if (buf[i] == 0)
            buf[i] = ' ';
    bool found = strstr(buf, needle) != NULL;
    free(buf);
    /* Another program holding a recycled pid is, for us, the process gone. */
    return found ? PID_LIVE : PID_GONE;
}

int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int snprintf_checked(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    const char *d = s && (*s == '-' || *s == '+') ? s + 1 : s;
    if (!d || !isdigit((unsigned char)*d))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    /* ERANGE: strtoll saturated, the text is outside int64 altogether */
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Skips the slashes before the next component. */
static const char *skip_slashes(const char *p)
{
    while (*p == '/')
        p++;
    return p;
}

const char *path_beneath(const char *dir, const char *path)
{
    if (!dir || !path || dir[0] != '/' || path[0] != '/')
        return NULL;
    const char *d = skip_slashes(dir), *p = skip_slashes(path);
    while (*d) {
        size_t dl = strcspn(d, "/"), pl = strcspn(p, "/");
        /* whole components only: /var/lib/yun-backups is not in /var/lib/yun */
        if (dl != pl || memcmp(d, p, dl))
            return NULL;
        d = skip_slashes(d + dl);
        p = skip_slashes(p + pl);
    }
    return p;
}

bool path_has_dot_component(const char *path)
{
    for (const char *p = skip_slashes(path); *p; p = skip_slashes(p + strcspn(p, "/"))) {
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return true;
    }
    return false;
}

/* What a lead byte promises: the character's length and the range of its
 * second byte (that range rules out overlong forms, surrogates and values
 * past U+10FFFF). false when b cannot start a multi-byte character. */
static bool utf8_lead(unsigned char b, size_t *len, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        *len = 2;
    else if (b >= 0xE0 && b <= 0xEF)
        *len = 3;
    else if (b >= 0xF0 && b <= 0xF4)
        *len = 4;
    else
        return false;
    if (b == 0xE0)
        *lo = 0xA0;
    else if (b == 0xED)
        *hi = 0x9F;
    else if (b == 0xF0)
        *lo = 0x90;
    else if (b == 0xF4)
        *hi = 0x8F;
    return true;
}

/* How many bytes of s[0..n) are a correct start of a multi-byte character
 * (at most its length); 0 when s[0] is no lead byte. */
static size_t utf8_good_prefix(const unsigned char *p, size_t n, size_t *len)
{
    unsigned char lo, hi;
    if (n == 0 || !utf8_lead(p[0], len, &lo, &hi))
        return 0;
    size_t i = 1;
    if (i < n && i < *len && p[1] >= lo && p[1] <= hi)
        i++;
    else
        return i;
    while (i < n && i < *len && (p[i] & 0xC0) == 0x80)
        i++;
    return i;
}

size_t utf8_char_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    size_t len = 0;
    return utf8_good_prefix(p, n, &len) == len && len ? len : 0;
}

size_t utf8_sanitize(char *dst, size_t cap, const char *src, size_t n, bool drop_cut_tail)
{
    size_t out = 0, i = 0;
    while (i < n) {
        size_t len = utf8_char_len(src + i, n - i);
        size_t want = 0;
        /* a character cut short by the end of the buffer */
        if (len == 0 && drop_cut_tail &&
            utf8_good_prefix((const unsigned char *)src + i, n - i, &want) == n - i)
            break;
        char esc[5];
        const char *piece = src + i;
        size_t plen = len;
        if (len == 0 || src[i] == 0) {
            snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)src[i]);
            piece = esc;
            plen = 4;
            len = 1;
        }
        if (out + plen + 1 > cap)
            break;
        memcpy(dst + out, piece, plen);
        out += plen;
        i += len;
    }
    dst[out] = 0;
    return out;
}
