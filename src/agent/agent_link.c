/*
 * agent_link.c - the link between two hosts measured before a live
 * migration uses it (docs/cluster.md, "Migration": the prediction's
 * bandwidth). The controller asks the target for a sink, then the source to
 * send into it; both ends' blocking socket work runs on a thread of its own,
 * the loop only takes its end through a pipe.
 *
 *   link.sink {} -> {"address", "port", "token"}
 *              a TCP socket listening on the agent's address (port 0: the
 *              kernel picks, so several yunds on one machine never collide)
 *              for one sender within LINK_ACCEPT_MS. A sender must first
 *              send the 32 characters of token (random, per sink): anything
 *              else is dropped and the sink waits on. It reads to EOF (at most
 *              LINK_MAX_BYTES, for at most LINK_IO_MS), answers with the
 *              8-byte big-endian count it read and closes. The reply is sent
 *              when the socket listens, before anyone connects.
 *   link.probe {"address", "port", "token", "ms": 50..2000 (250)}
 *              -> {"bytes", "sent", "us", "bps"}
 *              connects (LINK_CONNECT_MS), sends the token then zeros for ms
 *              (or LINK_MAX_BYTES), shuts its side, waits for the sink's
 *              count: bps = bytes * 1e6 / us, us from the connect to the
 *              count's arrival, so what the kernel buffered is in it.
 *              Cancellable. A sink that answers a count above what was sent
 *              is refused (a message from another host is checked).
 */
#include "agent/agent_local.h"
#include "lib/log.h"
#include "lib/sha256.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINK_ACCEPT_MS  5000         /* a sink waits this long for its sender */
#define LINK_CONNECT_MS 3000         /* a probe's connect */
#define LINK_IO_MS      5000         /* a sink reads, a probe waits for the count */
#define LINK_MAX_BYTES  (1ull << 30) /* one probe's bytes at most */
#define LINK_CHUNK      (256 * 1024)
#define LINK_SLICE_MS   100 /* a thread looks at cancel this often */
#define TOKEN_LEN       32

enum link_kind { LINK_SINK, LINK_PROBE };

struct link_job {
    struct link_job *next;
    struct agent_local *al;
    struct agent_op *op; /* a probe's (a sink has replied already) */
    enum link_kind kind;
    int fd; /* the sink's listening socket; the probe's own */
    pthread_t thread;
    bool started;
    int pipe[2];
    struct event *ev_end;
    atomic_bool cancel;
    char token[TOKEN_LEN + 1];
    struct sockaddr_in to; /* a probe's sink */
    int ms;
    /* the thread's result, read after the pipe says it ended */
    enum yerr_code code;
    char msg[200];
    uint64_t bytes, sent;
    int64_t us;
};

static struct link_job *jobs;

static void job_free(struct link_job *j)
{
    for (struct link_job **p = &jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    if (j->op)
        agent_op_on_cancel(j->op, NULL, NULL);
    if (j->ev_end)
        event_free(j->ev_end);
    if (j->fd >= 0)
        close(j->fd);
    if (j->pipe[0] >= 0)
        close(j->pipe[0]);
    if (j->pipe[1] >= 0)
        close(j->pipe[1]);
    free(j);
}

/* The thread's failure; en: the errno that tells why (0: none). */
static int fail(struct link_job *j, enum yerr_code code, const char *what, int en)
{
    j->code = code;
    snprintf(j->msg, sizeof j->msg, "agent: link.%s: %s%s%s",
             j->kind == LINK_SINK ? "sink" : "probe", what, en ? ": " : "", en ? strerror(en) : "");
    return -1;
}

static int wait_fd(struct link_job *j, int fd, short ev, int64_t deadline)
{
    return netio_wait(&j->cancel, fd, ev, deadline);
}

static int read_full(struct link_job *j, int fd, void *buf, size_t n, int64_t deadline)
{
    return netio_read_full(&j->cancel, fd, buf, n, deadline);
}

static int write_full(struct link_job *j, int fd, const void *buf, size_t n, int64_t deadline)
{
    return netio_write_full(&j->cancel, fd, buf, n, deadline);
}

/* One sender served: token, bytes to EOF, the count back. 1 served, 0 a
 * stranger dropped (wait on), -1 failed. */
static int sink_serve(struct link_job *j, int cfd, char *buf, int64_t accept_deadline)
{
    char tok[TOKEN_LEN];
    int64_t io_deadline = monotonic_us() + (int64_t)LINK_IO_MS * 1000;
    if (read_full(j, cfd, tok, TOKEN_LEN,
                  io_deadline < accept_deadline ? io_deadline : accept_deadline) < 0 ||
        memcmp(tok, j->token, TOKEN_LEN))
        return 0;
    uint64_t n = 0;
    for (;;) {
        if (wait_fd(j, cfd, POLLIN, io_deadline) <= 0)
            return fail(j, YE_UNAVAILABLE, "the sender stopped before its end", 0);
        ssize_t r = read(cfd, buf, LINK_CHUNK);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return fail(j, YE_UNAVAILABLE, "read", errno);
        }
        n += (uint64_t)r;
        if (n > LINK_MAX_BYTES) {
            return fail(j, YE_INVALID_ARGUMENT, "the sender sent more than it may", 0);
        }
    }
    unsigned char be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)(n >> (56 - 8 * i));
    if (write_full(j, cfd, be, sizeof be, io_deadline) < 0)
        return fail(j, YE_UNAVAILABLE, "the count could not be sent", 0);
    j->bytes = n;
    return 1;
}

static void sink_run(struct link_job *j, char *buf)
{
    int64_t deadline = monotonic_us() + (int64_t)LINK_ACCEPT_MS * 1000;
    for (;;) {
        int w = wait_fd(j, j->fd, POLLIN, deadline);
        if (w <= 0) {
            fail(j, YE_TIMEOUT, w == 0 ? "no sender came" : "cancelled", 0);
            return;
        }
        int cfd = accept4(j->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
            continue;
        int r = sink_serve(j, cfd, buf, deadline);
        close(cfd);
        if (r != 0)
            return;
    }
}

static void probe_run(struct link_job *j, char *buf)
{
    int fd = j->fd;
    int64_t t0 = monotonic_us();
    int r = connect(fd, (struct sockaddr *)&j->to, sizeof j->to);
    if (r < 0 && errno != EINPROGRESS) {
        fail(j, YE_UNAVAILABLE, "connect", errno);
        return;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (r < 0 && (wait_fd(j, fd, POLLOUT, t0 + (int64_t)LINK_CONNECT_MS * 1000) <= 0 ||
                  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr)) {
        fail(j, YE_UNAVAILABLE, "connect", soerr ? soerr : ETIMEDOUT);
        return;
    }
    t0 = monotonic_us();
    int64_t end = t0 + (int64_t)j->ms * 1000;
    int64_t deadline = end + (int64_t)LINK_IO_MS * 1000;
    if (write_full(j, fd, j->token, TOKEN_LEN, deadline) < 0) {
        fail(j, YE_UNAVAILABLE, "send", 0);
        return;
    }
    memset(buf, 0, LINK_CHUNK);
    while (monotonic_us() < end && j->sent + LINK_CHUNK <= LINK_MAX_BYTES) {
        if (atomic_load(&j->cancel)) {
            fail(j, YE_CANCELLED, "cancelled", 0);
            return;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, LINK_SLICE_MS) <= 0)
            continue;
        ssize_t n = send(fd, buf, LINK_CHUNK, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            fail(j, YE_UNAVAILABLE, "send", errno);
            return;
        }
        if (n > 0)
            j->sent += (uint64_t)n;
    }
    shutdown(fd, SHUT_WR);
    unsigned char be[8];
    if (read_full(j, fd, be, sizeof be, deadline) < 0) {
        fail(j, atomic_load(&j->cancel) ? YE_CANCELLED : YE_UNAVAILABLE,
             "the sink did not answer with its count", 0);
        return;
    }
    j->us = monotonic_us() - t0;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n = n << 8 | be[i];
    if (n == 0 || n > j->sent) {
        fail(j, YE_INVALID_ARGUMENT, "the sink's count does not match what was sent", 0);
        return;
    }
    j->bytes = n;
}

static void *link_main(void *arg)
{
    struct link_job *j = arg;
    char *buf = malloc(LINK_CHUNK);
    if (!buf) {
        fail(j, YE_INTERNAL, "buffer", ENOMEM);
    } else if (j->kind == LINK_SINK) {
        sink_run(j, buf);
    } else {
        probe_run(j, buf);
    }
    free(buf);
    char b = 1;
    if (write(j->pipe[1], &b, 1) < 0)
        log_warn("link: cannot wake the loop: %s", strerror(errno));
    return NULL;
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct link_job *j = arg;
    pthread_join(j->thread, NULL);
    j->started = false;
    if (j->kind == LINK_SINK) {
        if (j->code)
            log_info("%s", j->msg);
    } else if (j->code) {
        struct yerr e = {.code = j->code};
        snprintf(e.message, sizeof e.message, "%s", j->msg);
        agent_op_reply(j->op, NULL, &e);
    } else {
        double bps = (double)j->bytes * 1e6 / (double)(j->us > 0 ? j->us : 1);
        agent_op_reply(j->op,
                       json_pack("{s:I,s:I,s:I,s:I}", "bytes", (json_int_t)j->bytes, "sent",
                                 (json_int_t)j->sent, "us", (json_int_t)j->us, "bps",
                                 (json_int_t)bps),
                       NULL);
    }
    j->op = NULL;
    job_free(j);
}

static void probe_cancel(struct agent_op *op, void *arg)
{
    (void)op;
    struct link_job *j = arg;
    atomic_store(&j->cancel, true);
}

/* A job with its pipe and end event, on the list; NULL with op failed. */
static struct link_job *job_new(struct agent_local *al, struct agent_op *op, enum link_kind kind)
{
    struct link_job *j = calloc(1, sizeof *j);
    if (!j) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return NULL;
    }
    j->fd = j->pipe[0] = j->pipe[1] = -1;
    j->al = al;
    j->kind = kind;
    if (pipe2(j->pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(j->ev_end = event_new(al->base, j->pipe[0], EV_READ, on_end, j))) {
        agent_op_fail(op, YE_INTERNAL, "agent: link: %s", strerror(errno));
        job_free(j);
        return NULL;
    }
    j->next = jobs;
    jobs = j;
    return j;
}

static int job_start(struct link_job *j)
{
    event_add(j->ev_end, NULL);
    if (pthread_create(&j->thread, NULL, link_main, j) != 0)
        return -1;
    j->started = true;
    return 0;
}

static void link_sink(struct agent_local *al, struct agent_op *op, json_t *args)
{
    (void)args;
    if (!al->cfg)
        return agent_op_fail(op, YE_INTERNAL, "agent: link.sink needs the settings");
    unsigned char raw[TOKEN_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return agent_op_fail(op, YE_INTERNAL, "agent: link.sink: no random bytes");
    struct link_job *j = job_new(al, op, LINK_SINK);
    if (!j)
        return;
    hex_encode(raw, sizeof raw, j->token);
    char addr[64], why[256];
    int port = 0;
    agent_own_address(al->cfg, addr, sizeof addr);
    if ((j->fd = agent_bind_any(addr, &port, why, sizeof why)) < 0) {
        job_free(j);
        return agent_op_fail(op, YE_UNAVAILABLE, "%s", why);
    }
    if (listen(j->fd, 4) < 0 || fcntl(j->fd, F_SETFL, O_NONBLOCK) < 0 || job_start(j) < 0) {
        job_free(j);
        return agent_op_fail(op, YE_INTERNAL, "agent: link.sink: %s", strerror(errno));
    }
    agent_op_reply(op, json_pack("{s:s,s:i,s:s}", "address", addr, "port", port, "token", j->token),
                   NULL);
}

static void link_probe(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *addr = json_string_value(json_object_get(args, "address"));
    const char *token = json_string_value(json_object_get(args, "token"));
    json_t *pj = json_object_get(args, "port"), *mj = json_object_get(args, "ms");
    json_int_t port = json_integer_value(pj), ms = mj ? json_integer_value(mj) : 250;
    struct sockaddr_in to = {.sin_family = AF_INET};
    if (!addr || inet_pton(AF_INET, addr, &to.sin_addr) != 1 || !json_is_integer(pj) || port < 1 ||
        port > 65535 || !token || strlen(token) != TOKEN_LEN || (mj && !json_is_integer(mj)) ||
        ms < 50 || ms > 2000)
        return agent_op_fail(op, YE_INVALID_ARGUMENT,
                             "agent: link.probe takes an address (A.B.C.D), a port (1..65535), "
                             "the sink's token (%d characters) and ms (50..2000)",
                             TOKEN_LEN);
    struct link_job *j = job_new(al, op, LINK_PROBE);
    if (!j)
        return;
    to.sin_port = htons((uint16_t)port);
    j->to = to;
    j->ms = (int)ms;
    j->op = op;
    snprintf(j->token, sizeof j->token, "%s", token);
    j->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (j->fd < 0 || job_start(j) < 0) {
        j->op = NULL;
        job_free(j);
        return agent_op_fail(op, YE_INTERNAL, "agent: link.probe: %s", strerror(errno));
    }
    agent_op_on_cancel(op, probe_cancel, j);
}

void agent_link_free(struct agent_local *al)
{
    for (struct link_job *j = jobs, *next; j; j = next) {
        next = j->next;
        if (j->al != al)
            continue;
        if (j->started) {
            atomic_store(&j->cancel, true);
            pthread_join(j->thread, NULL);
        }
        if (j->op) {
            agent_op_on_cancel(j->op, NULL, NULL);
            j->op = NULL; /* the agent's own free answers its ops */
        }
        job_free(j);
    }
}

const struct agent_verb_def agent_link_verbs[] = {
    {AV_LINK_SINK, "link.sink", link_sink},
    {AV_LINK_PROBE, "link.probe", link_probe},
};
const size_t agent_link_verbs_count = sizeof agent_link_verbs / sizeof agent_link_verbs[0];
