/*
 * agent_fetch.c - the agent's image.fetch: an image's files copied from the
 * controller's library into this host's own images_dir (docs/cluster.md,
 * "Images"), for hosts that do not mount the cluster's library.
 *
 * {"image", "url", "host_id", "credential", "files": [{"file", "size",
 *  "sha256"}]} -> {"dir", "bytes", "fetched", "ms"}; progress (bytes);
 * cancellable. fetched: the bytes copied (0 when every file was there);
 * ms: the thread's time (copy and verification).
 *
 * A thread per fetch does the blocking work (connect to the numeric
 * controller URL, GET /v1/cluster/images/NAME/FILE with the host's
 * credential, the body streamed into FILE.part with its SHA-256 computed on
 * the way, size and checksum verified, fsync, rename into place, fsync of
 * the directory); the loop only polls its progress and takes its end
 * through a pipe. A file already in place with the expected size and
 * checksum is kept (a repeated fetch is idempotent). A second fetch of the
 * same image waits for the first, then finds the files there. What a killed
 * agent left (FILE.part) is removed by the next fetch of that image; a part
 * file is never renamed before it is verified, so no half image is used.
 */
#include "agent/agent_local.h"
#include "lib/config.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/sha256.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FETCH_FILES   3
#define FETCH_IDLE_MS 30000 /* no byte for this long: the fetch fails */
#define FETCH_CHUNK   (256 * 1024)

struct fetch_file {
    char name[64];
    uint64_t size;
    char sha[SHA256_HEX];
};

struct fetch {
    struct fetch *next;
    struct agent_local *al;
    struct agent_op *op;
    char image[64];
    char dir[PATH_MAX];
    struct sockaddr_in addr;
    char hostport[64];
    char host_id[37];
    char cred[65];
    struct fetch_file files[FETCH_FILES];
    int nfiles;
    uint64_t total;
    _Atomic uint64_t done;
    atomic_bool cancel;
    bool started, waiting;
    pthread_t thread;
    int pipe[2];
    struct event *ev_end, *tick;
    /* the thread's result, read after the pipe says it ended */
    enum yerr_code code;
    char msg[400];
    uint64_t fetched;
    int64_t ms;
};

static struct fetch *fetches;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool plain_name(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (!n || n >= max || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
            return false;
    return true;
}

/* "http://A.B.C.D:PORT" (or localhost): nothing is resolved. */
static int parse_url(const char *url, struct fetch *f)
{
    if (!url || strncmp(url, "http://", 7))
        return -1;
    char host[64];
    const char *p = url + 7, *colon = strchr(p, ':');
    if (!colon || (size_t)(colon - p) >= sizeof host)
        return -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - p), p);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (port < 1 || port > 65535 || (*end && strcmp(end, "/")))
        return -1;
    memset(&f->addr, 0, sizeof f->addr);
    f->addr.sin_family = AF_INET;
    f->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, !strcmp(host, "localhost") ? "127.0.0.1" : host, &f->addr.sin_addr) != 1)
        return -1;
    snprintf(f->hostport, sizeof f->hostport, "%s:%ld", host, port);
    return 0;
}

static int fail(struct fetch *f, enum yerr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct fetch *f, enum yerr_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    f->code = code;
    return -1;
}

/* The SHA-256 of a file in place (hex), or -1. */
static int hash_file(struct fetch *f, const char *path, char out[SHA256_HEX])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    static _Thread_local unsigned char buf[FETCH_CHUNK];
    struct sha256 s;
    sha256_init(&s);
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 && !atomic_load(&f->cancel))
        sha256_update(&s, buf, (size_t)n);
    close(fd);
    if (n != 0)
        return -1;
    uint8_t d[SHA256_LEN];
    sha256_final(&s, d);
    hex_encode(d, SHA256_LEN, out);
    return 0;
}

static int sock_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* recv with the cancel flag and the idle limit seen every 250 ms. */
static ssize_t recv_some(struct fetch *f, int fd, void *buf, size_t len)
{
    int idle = 0;
    for (;;) {
        if (atomic_load(&f->cancel))
            return fail(f, YE_CANCELLED, "image.fetch cancelled");
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return fail(f, YE_UNAVAILABLE, "reading from the controller: %s", strerror(errno));
        if ((idle += 250) >= FETCH_IDLE_MS)
            return fail(f, YE_TIMEOUT, "the controller sent nothing for %d s",
                        FETCH_IDLE_MS / 1000);
    }
}

static enum yerr_code status_code(int st)
{
    return st == 401 || st == 403 ? YE_UNAUTHORIZED
           : st == 404            ? YE_NOT_FOUND
           : st == 409            ? YE_CONFLICT
                                  : YE_UNAVAILABLE;
}

/* GET the file into fd, hashing it; 0 with the digest, or -1 (f->msg). */
static int http_get(struct fetch *f, const struct fetch_file *ff, int out, char hex[SHA256_HEX])
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return fail(f, YE_INTERNAL, "socket: %s", strerror(errno));
    struct timeval cto = {.tv_sec = 10}, rto = {.tv_usec = 250000};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &cto, sizeof cto);
    if (connect(s, (struct sockaddr *)&f->addr, sizeof f->addr) < 0) {
        close(s);
        return fail(f, YE_UNAVAILABLE, "cannot reach the controller %s: %s", f->hostport,
                    strerror(errno));
    }
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
    char req[1024];
    int rl = snprintf(req, sizeof req,
                      "GET /v1/cluster/images/%s/%s HTTP/1.1\r\nHost: %s\r\nX-Yun-Host: %s\r\n"
                      "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
                      f->image, ff->name, f->hostport, f->host_id, f->cred);
    int rc = -1;
    unsigned char *buf = malloc(FETCH_CHUNK);
    if (!buf || rl < 0 || (size_t)rl >= sizeof req || sock_send_all(s, req, (size_t)rl) < 0) {
        fail(f, YE_UNAVAILABLE, "cannot send the request to %s", f->hostport);
        goto out;
    }
    /* the head: status line and headers, at most 16 KiB */
    size_t have = 0;
    char *eoh = NULL;
    while (!eoh) {
        if (have >= 16384) {
            fail(f, YE_BAD_GATEWAY, "the controller's reply head is too long");
            goto out;
        }
        ssize_t n = recv_some(f, s, buf + have, 16384 - have);
        if (n < 0)
            goto out;
        if (n == 0) {
            fail(f, YE_BAD_GATEWAY, "the controller closed the connection");
            goto out;
        }
        have += (size_t)n;
        buf[have] = 0;
        eoh = strstr((char *)buf, "\r\n\r\n");
    }
    int st = 0;
    if (sscanf((char *)buf, "HTTP/1.%*d %d", &st) != 1) {
        fail(f, YE_BAD_GATEWAY, "the controller's reply is not HTTP");
        goto out;
    }
    long long clen = -1;
    for (char *l = strstr((char *)buf, "\r\n"); l && l < eoh; l = strstr(l + 2, "\r\n"))
        if (!strncasecmp(l + 2, "Content-Length:", 15))
            clen = strtoll(l + 17, NULL, 10);
    size_t body_off = (size_t)(eoh + 4 - (char *)buf);
    if (st != 200) {
        char *msg = strstr(eoh + 4, "\"message\"");
        fail(f, status_code(st), "the controller answered %d to the fetch of %s/%s%s%.200s", st,
             f->image, ff->name, msg ? ": " : "", msg ? msg : "");
        goto out;
    }
    if (clen < 0 || (uint64_t)clen != ff->size) {
        fail(f, YE_CONFLICT, "%s/%s: the controller sends %lld bytes, the image record says %llu",
             f->image, ff->name, clen, (unsigned long long)ff->size);
        goto out;
    }
    struct sha256 h;
    sha256_init(&h);
    uint64_t got = 0;
    size_t n = have - body_off;
    memmove(buf, buf + body_off, n);
    for (;;) {
        if (got + n > ff->size) {
            fail(f, YE_BAD_GATEWAY, "the controller sent more than %llu bytes",
                 (unsigned long long)ff->size);
            goto out;
        }
        for (size_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, n - w);
            if (k < 0) {
                fail(f, errno == ENOSPC ? YE_NO_SPACE : YE_DISK_ERROR, "writing %s/%s.part: %s",
                     f->dir, ff->name, strerror(errno));
                goto out;
            }
            w += (size_t)k;
        }
        sha256_update(&h, buf, n);
        if (n)
            FAILPOINT("image_fetch.after_part"); /* a .part written, not whole */
        got += n;
        f->fetched += n;
        atomic_fetch_add(&f->done, n);
        if (got == ff->size)
            break;
        ssize_t r = recv_some(f, s, buf, FETCH_CHUNK);
        if (r < 0)
            goto out;
        if (r == 0) {
            fail(f, YE_BAD_GATEWAY, "the controller closed after %llu of %llu bytes",
                 (unsigned long long)got, (unsigned long long)ff->size);
            goto out;
        }
        n = (size_t)r;
    }
    uint8_t d[SHA256_LEN];
    sha256_final(&h, d);
    hex_encode(d, SHA256_LEN, hex);
    rc = 0;
out:
    free(buf);
    close(s);
    return rc;
}

static int fetch_one(struct fetch *f, const struct fetch_file *ff)
{
    char path[PATH_MAX + 80], part[PATH_MAX + 90], hex[SHA256_HEX];
    snprintf(path, sizeof path, "%s/%s", f->dir, ff->name);
    snprintf(part, sizeof part, "%s.part", path);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == ff->size &&
        hash_file(f, path, hex) == 0 && !strcmp(hex, ff->sha)) {
        atomic_fetch_add(&f->done, ff->size); /* there already: kept */
        return 0;
    }
    int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return fail(f, YE_DISK_ERROR, "cannot create %s: %s", part, strerror(errno));
    int rc = http_get(f, ff, fd, hex);
    if (rc == 0 && strcmp(hex, ff->sha))
        rc = fail(f, YE_CONFLICT, "%s: its SHA-256 %s is not the image record's %s", part, hex,
                  ff->sha);
    if (rc == 0 && fsync(fd) < 0)
        rc = fail(f, YE_DISK_ERROR, "fsync %s: %s", part, strerror(errno));
    close(fd);
    if (rc == 0 && rename(part, path) < 0)
        rc = fail(f, YE_DISK_ERROR, "rename %s: %s", part, strerror(errno));
    if (rc < 0)
        unlink(part);
    return rc;
}

static void *fetch_main(void *arg)
{
    struct fetch *f = arg;
    int rc = 0;
    int64_t t0 = mono_ms();
    if (mkdir_p(f->dir, 0755) < 0)
        rc = fail(f, YE_DISK_ERROR, "cannot make %s: %s", f->dir, strerror(errno));
    for (int i = 0; rc == 0 && i < f->nfiles; i++) {
        char part[PATH_MAX + 90];
        snprintf(part, sizeof part, "%s/%s.part", f->dir, f->files[i].name);
        unlink(part); /* a killed agent's */
    }
    for (int i = 0; rc == 0 && i < f->nfiles; i++)
        rc = fetch_one(f, &f->files[i]);
    if (rc == 0) {
        int d = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) {
            fsync(d);
            close(d);
        }
    }
    f->ms = mono_ms() - t0;
    char b = 1;
    if (write(f->pipe[1], &b, 1) < 0)
        log_warn("image.fetch: cannot wake the loop: %s", strerror(errno));
    return NULL;
}

static void fetch_free(struct fetch *f)
{
    for (struct fetch **p = &fetches; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            break;
        }
    if (f->op)
        agent_op_on_cancel(f->op, NULL,
                           NULL); /* the op may outlive f (its reply is delivered later) */
    if (f->ev_end)
        event_free(f->ev_end);
    if (f->tick)
        event_free(f->tick);
    if (f->pipe[0] >= 0)
        close(f->pipe[0]);
    if (f->pipe[1] >= 0)
        close(f->pipe[1]);
    memset(f->cred, 0, sizeof f->cred);
    free(f);
}

static void fetch_start(struct fetch *f);

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch *f = arg;
    pthread_join(f->thread, NULL);
    f->started = false;
    agent_op_progress(f->op, atomic_load(&f->done), f->total);
    if (f->code) {
        struct yerr e = {.code = f->code};
        snprintf(e.message, sizeof e.message, "%s", f->msg);
        agent_op_reply(f->op, NULL, &e);
    } else {
        agent_op_reply(f->op,
                       json_pack("{s:s,s:I,s:I,s:I}", "dir", f->dir, "bytes", (json_int_t)f->total,
                                 "fetched", (json_int_t)f->fetched, "ms", (json_int_t)f->ms),
                       NULL);
    }
    char image[64];
    snprintf(image, sizeof image, "%s", f->image);
    struct agent_local *al = f->al;
    fetch_free(f);
    for (struct fetch *w = fetches; w; w = w->next)
        if (w->al == al && w->waiting && !strcmp(w->image, image)) {
            fetch_start(w);
            break;
        }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fetch *f = arg;
    agent_op_progress(f->op, atomic_load(&f->done), f->total);
}

static void fetch_cancel(struct agent_op *op, void *arg)
{
    (void)op;
    struct fetch *f = arg;
    atomic_store(&f->cancel, true);
    if (f->waiting) {
        agent_op_fail(f->op, YE_CANCELLED, "image.fetch cancelled");
        fetch_free(f);
    }
}

static void fetch_start(struct fetch *f)
{
    f->waiting = false;
    struct timeval tv = {.tv_usec = 250000};
    event_add(f->tick, &tv);
    event_add(f->ev_end, NULL);
    if (pthread_create(&f->thread, NULL, fetch_main, f) != 0) {
        agent_op_fail(f->op, YE_INTERNAL, "image.fetch: cannot start a thread");
        fetch_free(f);
        return;
    }
    f->started = true;
}

static int parse_files(struct fetch *f, json_t *files)
{
    size_t n = json_array_size(files);
    if (!json_is_array(files) || n < 1 || n > FETCH_FILES)
        return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(files, i), *sz = json_object_get(o, "size");
        const char *name = json_string_value(json_object_get(o, "file"));
        const char *sha = json_string_value(json_object_get(o, "sha256"));
        uint8_t raw[SHA256_LEN];
        if (!plain_name(name, sizeof f->files[i].name) || !sha ||
            hex_decode(sha, raw, SHA256_LEN) < 0 || !json_is_integer(sz) ||
            json_integer_value(sz) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(f->files[k].name, name))
                return -1;
        snprintf(f->files[i].name, sizeof f->files[i].name, "%s", name);
        hex_encode(raw, SHA256_LEN, f->files[i].sha); /* lowercase */
        f->files[i].size = (uint64_t)json_integer_value(sz);
        f->total += f->files[i].size;
    }
    f->nfiles = (int)n;
    return 0;
}

static void image_fetch(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *image = json_string_value(json_object_get(args, "image"));
    const char *hid = json_string_value(json_object_get(args, "host_id"));
    const char *cred = json_string_value(json_object_get(args, "credential"));
    struct fetch *f = calloc(1, sizeof *f);
    if (!f)
        return agent_op_fail(op, YE_INTERNAL, "out of memory");
    f->pipe[0] = f->pipe[1] = -1;
    f->al = al;
    f->op = op;
    if (!al->cfg || !plain_name(image, sizeof f->image) || !hid ||
        strlen(hid) >= sizeof f->host_id || !plain_name(hid, sizeof f->host_id) || !cred ||
        strlen(cred) != 64 || parse_url(json_string_value(json_object_get(args, "url")), f) < 0 ||
        parse_files(f, json_object_get(args, "files")) < 0) {
        fetch_free(f);
        return agent_op_fail(op, YE_INVALID_ARGUMENT,
                             "agent: image.fetch: image, url (http://ADDR:PORT), host_id, "
                             "credential and files [{file, size, sha256}] (1..3)");
    }
    snprintf(f->image, sizeof f->image, "%s", image);
    snprintf(f->host_id, sizeof f->host_id, "%s", hid);
    snprintf(f->cred, sizeof f->cred, "%s", cred);
    if (snprintf_checked(f->dir, sizeof f->dir, "%s/%s", al->cfg->images_dir, image) < 0) {
        fetch_free(f);
        return agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: image.fetch: path too long");
    }
    if (pipe2(f->pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(f->ev_end = event_new(al->base, f->pipe[0], EV_READ, on_end, f)) ||
        !(f->tick = event_new(al->base, -1, EV_PERSIST, on_tick, f))) {
        fetch_free(f);
        return agent_op_fail(op, YE_INTERNAL, "image.fetch: %s", strerror(errno));
    }
    bool busy = false;
    for (struct fetch *o = fetches; o; o = o->next)
        busy |= o->al == al && !strcmp(o->image, image);
    f->next = fetches;
    fetches = f;
    agent_op_on_cancel(op, fetch_cancel, f);
    if (busy)
        f->waiting = true; /* after the one running: it finds the files there */
    else
        fetch_start(f);
}

void agent_fetch_free(struct agent_local *al)
{
    for (struct fetch *f = fetches, *next; f; f = next) {
        next = f->next;
        if (f->al != al)
            continue;
        if (f->started) {
            atomic_store(&f->cancel, true);
            pthread_join(f->thread, NULL);
        }
        fetch_free(f);
    }
}

const struct agent_verb_def agent_fetch_verbs[] = {
    {AV_IMAGE_FETCH, "image.fetch", image_fetch},
};
const size_t agent_fetch_verbs_count = sizeof agent_fetch_verbs / sizeof agent_fetch_verbs[0];
