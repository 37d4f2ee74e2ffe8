/*
 * agent_xfer.c - a file copied from this host's agent to another's, byte
 * for byte, for a cold move of a stopped VM (ctl/migrate_cold.c): its disk
 * overlay and its volumes. The controller asks the target for a receiver,
 * then the source to send into it; the blocking socket and file work runs
 * on a thread per copy, the loop takes its end through a pipe.
 *
 *   file.recv {"path", "exclusive"?: bool}
 *              -> {"address", "port", "token"}
 *              path: under this host's state directory's pools/ or vms/,
 *              without "." or ".."; exclusive: a path that exists is 409.
 *              A TCP socket on the agent's address (a port the kernel picks)
 *              waits XFER_ACCEPT_MS for one sender, which must send the
 *              32-character token (anything else is dropped and it waits
 *              on), then the size (8 bytes, big-endian, at most XFER_MAX),
 *              then the bytes. They go to PATH.part (a stale one from a
 *              killed agent removed first) with their SHA-256 computed on the
 *              way; at the size, fsync, rename onto PATH (exclusive: never
 *              over a file that appeared meanwhile), fsync of the directory,
 *              and the 32-byte digest goes back. No byte for XFER_IDLE_MS, a
 *              short stream or a cancel leaves no PATH and no PATH.part. The
 *              reply is sent once it listens.
 *   file.send {"path", "address", "port", "token"}
 *              -> {"bytes", "sha256", "us"}; progress (bytes)
 *              path as above, a regular file; sends token, size and bytes,
 *              computes their SHA-256 and waits for the receiver's: a
 *              different one (or none) fails the copy (a message from
 *              another host is checked). Cancellable.
 */
#include "agent/agent_local.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/sha256.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define XFER_ACCEPT_MS  10000 /* a receiver waits this long for its sender */
#define XFER_CONNECT_MS 3000
#define XFER_IDLE_MS    30000         /* no byte for this long: the copy fails */
#define XFER_MAX        (16ULL << 40) /* VOLUME_MAX */
#define XFER_CHUNK      (256 * 1024)
#define XFER_TICK_MS    500 /* a send's progress */
#define TOKEN_LEN       32

enum xfer_kind { XFER_RECV, XFER_SEND };

struct xfer {
    struct xfer *next;
    struct agent_local *al;
    struct agent_op *op; /* a send's (a receiver has replied already) */
    enum xfer_kind kind;
    int fd; /* the receiver's listening socket; the sender's own */
    pthread_t thread;
    bool started, exclusive;
    int pipe[2];
    struct event *ev_end, *ev_tick;
    atomic_bool cancel;
    atomic_uint_fast64_t done;
    uint64_t total;
    char token[TOKEN_LEN + 1];
    char path[512];
    struct sockaddr_in to;
    /* the thread's result, read after the pipe says it ended */
    enum yerr_code code;
    char msg[300];
    char sha[SHA256_HEX];
    int64_t us;
};

static struct xfer *xfers;

static void xfer_free(struct xfer *x)
{
    for (struct xfer **p = &xfers; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            break;
        }
    if (x->op)
        agent_op_on_cancel(x->op, NULL, NULL);
    if (x->ev_end)
        event_free(x->ev_end);
    if (x->ev_tick)
        event_free(x->ev_tick);
    if (x->fd >= 0)
        close(x->fd);
    if (x->pipe[0] >= 0)
        close(x->pipe[0]);
    if (x->pipe[1] >= 0)
        close(x->pipe[1]);
    free(x);
}

static int fail(struct xfer *x, enum yerr_code code, const char *what, int en)
{
    x->code = code;
    snprintf(x->msg, sizeof x->msg, "agent: file.%s %s: %s%s%s",
             x->kind == XFER_RECV ? "recv" : "send", x->path, what, en ? ": " : "",
             en ? strerror(en) : "");
    return -1;
}

static void fsync_dir_of(const char *path)
{
    char d[512];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (!slash)
        return;
    *slash = 0;
    int fd = open(d[0] ? d : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* ---- the receiver's thread ---- */

/* One sender: 1 served (or failed: x->code), 0 a stranger dropped. */
static int recv_serve(struct xfer *x, int cfd, char *buf, int64_t accept_deadline)
{
    char tok[TOKEN_LEN];
    unsigned char be[8];
    int64_t idle = monotonic_us() + (int64_t)XFER_IDLE_MS * 1000;
    if (netio_read_full(&x->cancel, cfd, tok, TOKEN_LEN,
                        idle < accept_deadline ? idle : accept_deadline) < 0 ||
        memcmp(tok, x->token, TOKEN_LEN))
        return 0;
    if (netio_read_full(&x->cancel, cfd, be, sizeof be, idle) < 0)
        return fail(x, YE_UNAVAILABLE, "the sender sent no size", 0), 1;
    uint64_t size = 0;
    for (int i = 0; i < 8; i++)
        size = size << 8 | be[i];
    if (size > XFER_MAX)
        return fail(x, YE_INVALID_ARGUMENT, "the sender's size is too large", 0), 1;
    char part[600];
    snprintf(part, sizeof part, "%s.part", x->path);
    unlink(part); /* a killed agent's */
    int fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(x, YE_DISK_ERROR, "cannot create its .part", errno), 1;
    struct sha256 h;
    sha256_init(&h);
    uint64_t got = 0;
    int rc = 0;
    while (got < size && rc == 0) {
        idle = monotonic_us() + (int64_t)XFER_IDLE_MS * 1000;
        if (netio_wait(&x->cancel, cfd, POLLIN, idle) <= 0) {
            rc = fail(x, atomic_load(&x->cancel) ? YE_CANCELLED : YE_TIMEOUT,
                      "the sender stopped before the end", 0);
            break;
        }
        size_t want = size - got < XFER_CHUNK ? (size_t)(size - got) : XFER_CHUNK;
        ssize_t r = read(cfd, buf, want);
        if (r == 0) {
            rc = fail(x, YE_UNAVAILABLE, "the stream ended short", 0);
        } else if (r < 0) {
            if (errno != EINTR && errno != EAGAIN)
                rc = fail(x, YE_UNAVAILABLE, "read", errno);
        } else {
            sha256_update(&h, buf, (size_t)r);
            for (ssize_t off = 0; off < r && rc == 0;) {
                ssize_t w = write(fd, buf + off, (size_t)(r - off));
                if (w < 0 && errno != EINTR)
                    rc = fail(x, YE_DISK_ERROR, "write", errno);
                else if (w > 0)
                    off += w;
            }
            got += (uint64_t)r;
        }
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = fail(x, YE_DISK_ERROR, "fsync", errno);
    close(fd);
    if (rc == 0) {
        /* exclusive: link() never replaces a file that appeared meanwhile */
        int m = x->exclusive ? link(part, x->path) : rename(part, x->path);
        if (m < 0)
            rc = fail(x, errno == EEXIST ? YE_CONFLICT : YE_DISK_ERROR, "cannot put it in place",
                      errno);
        else if (x->exclusive)
            unlink(part);
    }
    if (rc < 0) {
        unlink(part);
        return 1;
    }
    fsync_dir_of(x->path);
    uint8_t d[SHA256_LEN];
    sha256_final(&h, d);
    hex_encode(d, sizeof d, x->sha);
    if (netio_write_full(&x->cancel, cfd, d, sizeof d,
                         monotonic_us() + (int64_t)XFER_IDLE_MS * 1000) < 0)
        log_warn("file.recv %s: the digest could not be sent back", x->path);
    x->total = size;
    return 1;
}

static void recv_run(struct xfer *x, char *buf)
{
    int64_t deadline = monotonic_us() + (int64_t)XFER_ACCEPT_MS * 1000;
    for (;;) {
        int w = netio_wait(&x->cancel, x->fd, POLLIN, deadline);
        if (w <= 0) {
            fail(x, YE_TIMEOUT, w == 0 ? "no sender came" : "cancelled", 0);
            return;
        }
        int cfd = accept4(x->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
            continue;
        int r = recv_serve(x, cfd, buf, deadline);
        close(cfd);
        if (r != 0)
            return;
    }
}

/* ---- the sender's thread ---- */

static void send_run(struct xfer *x, char *buf)
{
    int ffd = open(x->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (ffd < 0 || fstat(ffd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail(x, YE_NOT_FOUND, "not a regular file here", ffd < 0 ? errno : 0);
        if (ffd >= 0)
            close(ffd);
        return;
    }
    x->total = (uint64_t)st.st_size;
    int64_t t0 = monotonic_us();
    int fd = x->fd;
    int r = connect(fd, (struct sockaddr *)&x->to, sizeof x->to);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if ((r < 0 && errno != EINPROGRESS) ||
        (r < 0 && (netio_wait(&x->cancel, fd, POLLOUT, t0 + (int64_t)XFER_CONNECT_MS * 1000) <= 0 ||
                   getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr))) {
        fail(x, YE_UNAVAILABLE, "connect", soerr ? soerr : r < 0 ? ETIMEDOUT : 0);
        close(ffd);
        return;
    }
    unsigned char be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(x->total >> (56 - 8 * i));
    int64_t idle = monotonic_us() + (int64_t)XFER_IDLE_MS * 1000;
    if (netio_write_full(&x->cancel, fd, x->token, TOKEN_LEN, idle) < 0 ||
        netio_write_full(&x->cancel, fd, be, sizeof be, idle) < 0) {
        fail(x, YE_UNAVAILABLE, "send", 0);
        close(ffd);
        return;
    }
    struct sha256 h;
    sha256_init(&h);
    uint64_t sent = 0;
    while (sent < x->total) {
        ssize_t n = pread(ffd, buf, XFER_CHUNK, (off_t)sent);
        if (n <= 0) {
            fail(x, YE_DISK_ERROR, n == 0 ? "the file shrank" : "read", n == 0 ? 0 : errno);
            close(ffd);
            return;
        }
        sha256_update(&h, buf, (size_t)n);
        if (netio_write_full(&x->cancel, fd, buf, (size_t)n,
                             monotonic_us() + (int64_t)XFER_IDLE_MS * 1000) < 0) {
            fail(x, atomic_load(&x->cancel) ? YE_CANCELLED : YE_UNAVAILABLE,
                 "the receiver stopped taking bytes", 0);
            close(ffd);
            return;
        }
        sent += (uint64_t)n;
        atomic_store(&x->done, sent);
    }
    close(ffd);
    uint8_t mine[SHA256_LEN], theirs[SHA256_LEN];
    sha256_final(&h, mine);
    /* the receiver fsyncs before it answers: no idle limit tighter than it */
    if (netio_read_full(&x->cancel, fd, theirs, sizeof theirs,
                        monotonic_us() + (int64_t)XFER_IDLE_MS * 4000) < 0) {
        fail(x, atomic_load(&x->cancel) ? YE_CANCELLED : YE_UNAVAILABLE,
             "the receiver did not confirm the copy", 0);
        return;
    }
    if (memcmp(mine, theirs, sizeof mine)) {
        fail(x, YE_BAD_GATEWAY, "the receiver's SHA-256 differs from the file's", 0);
        return;
    }
    hex_encode(mine, sizeof mine, x->sha);
    x->us = monotonic_us() - t0;
}

static void *xfer_main(void *arg)
{
    struct xfer *x = arg;
    char *buf = malloc(XFER_CHUNK);
    if (!buf)
        fail(x, YE_INTERNAL, "buffer", ENOMEM);
    else if (x->kind == XFER_RECV)
        recv_run(x, buf);
    else
        send_run(x, buf);
    free(buf);
    char b = 1;
    if (write(x->pipe[1], &b, 1) < 0)
        log_warn("file copy: cannot wake the loop: %s", strerror(errno));
    return NULL;
}

/* ---- the loop's side ---- */

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct xfer *x = arg;
    pthread_join(x->thread, NULL);
    x->started = false;
    if (x->kind == XFER_RECV) {
        if (x->code)
            log_info("%s", x->msg);
        else
            log_info("file.recv %s: %llu bytes, sha256 %s", x->path, (unsigned long long)x->total,
                     x->sha);
    } else if (x->code) {
        struct yerr e = {.code = x->code};
        snprintf(e.message, sizeof e.message, "%s", x->msg);
        agent_op_reply(x->op, NULL, &e);
    } else {
        agent_op_progress(x->op, x->total, x->total);
        agent_op_reply(x->op,
                       json_pack("{s:I,s:s,s:I}", "bytes", (json_int_t)x->total, "sha256", x->sha,
                                 "us", (json_int_t)x->us),
                       NULL);
    }
    x->op = NULL;
    xfer_free(x);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct xfer *x = arg;
    if (x->op && x->total)
        agent_op_progress(x->op, atomic_load(&x->done), x->total);
}

static void send_cancel(struct agent_op *op, void *arg)
{
    (void)op;
    struct xfer *x = arg;
    atomic_store(&x->cancel, true);
}

static struct xfer *xfer_new(struct agent_local *al, struct agent_op *op, enum xfer_kind kind,
                             const char *path)
{
    struct xfer *x = calloc(1, sizeof *x);
    if (!x) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return NULL;
    }
    x->fd = x->pipe[0] = x->pipe[1] = -1;
    x->al = al;
    x->kind = kind;
    snprintf(x->path, sizeof x->path, "%s", path);
    if (pipe2(x->pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(x->ev_end = event_new(al->base, x->pipe[0], EV_READ, on_end, x)) ||
        !(x->ev_tick = event_new(al->base, -1, EV_PERSIST, on_tick, x))) {
        agent_op_fail(op, YE_INTERNAL, "agent: file copy: %s", strerror(errno));
        xfer_free(x);
        return NULL;
    }
    x->next = xfers;
    xfers = x;
    return x;
}

static int xfer_start(struct xfer *x)
{
    event_add(x->ev_end, NULL);
    if (pthread_create(&x->thread, NULL, xfer_main, x) != 0)
        return -1;
    x->started = true;
    if (x->kind == XFER_SEND) {
        struct timeval tv = {0, XFER_TICK_MS * 1000};
        event_add(x->ev_tick, &tv);
    }
    return 0;
}

static void file_recv(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = json_string_value(json_object_get(args, "path"));
    json_t *ex = json_object_get(args, "exclusive");
    if (!al->cfg || !agent_state_path_ok(al, path) || (ex && !json_is_boolean(ex)))
        return agent_op_fail(op, YE_INVALID_ARGUMENT,
                             "agent: file.recv takes a path under the state directory's pools/ "
                             "or vms/ and exclusive (a boolean)");
    struct stat st;
    if (json_is_true(ex) && lstat(path, &st) == 0)
        return agent_op_fail(op, YE_CONFLICT, "%s exists already on this host", path);
    unsigned char raw[TOKEN_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return agent_op_fail(op, YE_INTERNAL, "agent: file.recv: no random bytes");
    struct xfer *x = xfer_new(al, op, XFER_RECV, path);
    if (!x)
        return;
    x->exclusive = json_is_true(ex);
    hex_encode(raw, sizeof raw, x->token);
    char addr[64], why[256];
    int port = 0;
    agent_own_address(al->cfg, addr, sizeof addr);
    if ((x->fd = agent_bind_any(addr, &port, why, sizeof why)) < 0) {
        xfer_free(x);
        return agent_op_fail(op, YE_UNAVAILABLE, "%s", why);
    }
    if (listen(x->fd, 4) < 0 || fcntl(x->fd, F_SETFL, O_NONBLOCK) < 0 || xfer_start(x) < 0) {
        xfer_free(x);
        return agent_op_fail(op, YE_INTERNAL, "agent: file.recv: %s", strerror(errno));
    }
    agent_op_reply(op, json_pack("{s:s,s:i,s:s}", "address", addr, "port", port, "token", x->token),
                   NULL);
}

static void file_send(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *path = json_string_value(json_object_get(args, "path"));
    const char *addr = json_string_value(json_object_get(args, "address"));
    const char *token = json_string_value(json_object_get(args, "token"));
    json_t *pj = json_object_get(args, "port");
    json_int_t port = json_integer_value(pj);
    struct sockaddr_in to = {.sin_family = AF_INET};
    if (!al->cfg || !agent_state_path_ok(al, path) || !addr ||
        inet_pton(AF_INET, addr, &to.sin_addr) != 1 || !json_is_integer(pj) || port < 1 ||
        port > 65535 || !token || strlen(token) != TOKEN_LEN)
        return agent_op_fail(op, YE_INVALID_ARGUMENT,
                             "agent: file.send takes a path under the state directory's pools/ or "
                             "vms/, an address (A.B.C.D), a port (1..65535) and the receiver's "
                             "token (%d characters)",
                             TOKEN_LEN);
    struct xfer *x = xfer_new(al, op, XFER_SEND, path);
    if (!x)
        return;
    to.sin_port = htons((uint16_t)port);
    x->to = to;
    x->op = op;
    snprintf(x->token, sizeof x->token, "%s", token);
    x->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (x->fd < 0 || xfer_start(x) < 0) {
        x->op = NULL;
        xfer_free(x);
        return agent_op_fail(op, YE_INTERNAL, "agent: file.send: %s", strerror(errno));
    }
    agent_op_on_cancel(op, send_cancel, x);
}

void agent_xfer_free(struct agent_local *al)
{
    for (struct xfer *x = xfers, *next; x; x = next) {
        next = x->next;
        if (x->al != al)
            continue;
        if (x->started) {
            atomic_store(&x->cancel, true);
            pthread_join(x->thread, NULL);
        }
        if (x->op) {
            agent_op_on_cancel(x->op, NULL, NULL);
            x->op = NULL; /* the agent's own free answers its ops */
        }
        xfer_free(x);
    }
}

const struct agent_verb_def agent_xfer_verbs[] = {
    {AV_FILE_RECV, "file.recv", file_recv},
    {AV_FILE_SEND, "file.send", file_send},
};
const size_t agent_xfer_verbs_count = sizeof agent_xfer_verbs / sizeof agent_xfer_verbs[0];
