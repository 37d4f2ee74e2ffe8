/*
 * fuzz_qga.c - what a guest agent sends back (compute/qga.c): the
 * asynchronous client's line handling (0xFF sync markers, stale replies,
 * the sync id, replies and errors, EOF) and base64_decode of guest-exec
 * output. The harness plays the agent on a Unix socket: it reads the
 * client's guest-sync-delimited, replaces every "@ID@" in the bytes with
 * its id (so inputs can answer it), sends them and closes. Two exchanges
 * are queued (one answered, one QGA_NO_REPLY); both must end.
 */
#include "fuzz.h"

#include "compute/qga.h"
#include "lib/base64.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct event_base *base;
static int lfd = -1;
static char sock_path[108];

struct agent {
    const uint8_t *data;
    size_t size;
    int fd;        /* the first connection; later ones are closed at once */
    bool sent;     /* the reply bytes are out */
    char got[512]; /* the client's first line */
    size_t ngot;
    struct event *ev;
    int finished; /* exchanges ended */
};

static void on_done(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct agent *a = ctx;
    FUZZ_ASSERT(err);
    FUZZ_ASSERT(st == QGA_OK || !ret);
    if (st != QGA_OK && st != QGA_CANCELLED)
        FUZZ_ASSERT(err[0]);
    char *s = ret ? json_dumps(ret, JSON_ENCODE_ANY) : NULL;
    free(s);
    a->finished++;
}

/* The bytes with "@ID@" replaced by id. */
static char *substitute(const uint8_t *data, size_t size, const char *id, size_t *len)
{
    size_t idl = strlen(id);
    char *out = malloc(size * (idl > 4 ? idl : 4) / 4 + idl + 1), *o = out;
    FUZZ_ASSERT(out);
    for (size_t i = 0; i < size;) {
        if (i + 4 <= size && !memcmp(data + i, "@ID@", 4)) {
            memcpy(o, id, idl);
            o += idl;
            i += 4;
        } else {
            *o++ = (char)data[i++];
        }
    }
    *len = (size_t)(o - out);
    return out;
}

static void on_agent(evutil_socket_t fd, short what, void *arg)
{
    struct agent *a = arg;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN)
            return;
        event_del(a->ev);
        return;
    }
    if (a->sent)
        return;
    size_t take =
        (size_t)n < sizeof(a->got) - 1 - a->ngot ? (size_t)n : sizeof(a->got) - 1 - a->ngot;
    memcpy(a->got + a->ngot, buf, take);
    a->ngot += take;
    a->got[a->ngot] = 0;
    if (!memchr(a->got, '\n', a->ngot) && a->ngot < sizeof(a->got) - 1)
        return;
    const char *p = strstr(a->got, "\"id\":");
    char id[32] = "0";
    if (p)
        snprintf(id, sizeof(id), "%lld", strtoll(p + 5, NULL, 10));
    size_t len;
    char *reply = substitute(a->data, a->size, id, &len);
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    (void)fuzz_write_all(fd, reply, len); /* EPIPE: the client already hung up */
    fcntl(fd, F_SETFL, flags);
    free(reply);
    shutdown(fd, SHUT_WR);
    a->sent = true;
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct agent *a = arg;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    if (a->fd >= 0) {
        close(c); /* the agent went away: a reconnect finds nobody home */
        return;
    }
    a->fd = c;
    int big = 1 << 20;
    setsockopt(c, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    a->ev = event_new(base, c, EV_READ | EV_PERSIST, on_agent, a);
    event_add(a->ev, NULL);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as yund does */
    base = event_base_new();
    char dir[] = "/tmp/yun-fuzz-qga-XXXXXX";
    FUZZ_ASSERT(base && mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/qga.sock", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    FUZZ_ASSERT(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                listen(lfd, 8) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        setup();
    char *text = fuzz_cstr(data, size);
    size_t n;
    unsigned char *raw = base64_decode(text, &n);
    FUZZ_ASSERT(raw && n <= size);
    free(raw);
    free(text);

    struct agent a = {.data = data, .size = size, .fd = -1};
    struct event *lev = event_new(base, lfd, EV_READ | EV_PERSIST, on_accept, &a);
    event_add(lev, NULL);
    struct qga_client *c = qga_client_new(base, sock_path);
    FUZZ_ASSERT(c);
    FUZZ_ASSERT(qga_call(c, "guest-info", NULL, 0, 4000, on_done, &a) == 0);
    FUZZ_ASSERT(qga_call(c, "guest-shutdown", NULL, QGA_NO_REPLY, 4000, on_done, &a) == 0);
    /* both end by themselves: answered, refused, or failed at EOF (the
     * 4 s deadline is past libFuzzer's -timeout, so waiting is a hang) */
    while (a.finished < 2)
        event_base_loop(base, EVLOOP_ONCE);
    qga_client_free(c);
    event_free(lev);
    if (a.ev)
        event_free(a.ev);
    if (a.fd >= 0)
        close(a.fd);
    /* connections the client made after the agent's end were closed */
    int stray;
    while ((stray = accept(lfd, NULL, NULL)) >= 0)
        close(stray);
    return 0;
}
