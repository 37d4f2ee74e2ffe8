/*
 * qmp.c - QMP client: blocking one-shot commands and a libevent event watcher.
 * Every reply from QEMU is parsed and checked for shape before it is used.
 */
#include "compute/qmp.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define QMP_LINE_MAX (1 << 20)

/* QEMU writes UINT64_MAX for a figure it does not have (guest-stats before
 * the guest reported one), which jansson refuses as too big: the line would
 * be lost and its command never answered. That literal reads as -1 here; a
 * line without it parses untouched. */
static json_t *qmp_loads(const char *line)
{
    static const char big[] = "18446744073709551615";
    json_t *j = json_loads(line, 0, NULL);
    if (j || !strstr(line, big))
        return j;
    char *copy = strdup(line);
    if (!copy)
        return NULL;
    for (char *p = copy; (p = strstr(p, big));) {
        memcpy(p, "-1", 2);
        memset(p + 2, ' ', sizeof big - 3);
        p += sizeof big - 1;
    }
    j = json_loads(copy, 0, NULL);
    free(copy);
    return j;
}

int qmp_parse_reply(const char *line, json_t **ret, char *err, size_t errlen)
{
    json_t *j = qmp_loads(line);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return 1;
    }
    json_t *r = json_object_get(j, "return");
    if (r) {
        if (ret)
            *ret = json_incref(r);
        json_decref(j);
        return 0;
    }
    json_t *e = json_object_get(j, "error");
    if (e && json_is_object(e)) {
        const char *cls = json_string_value(json_object_get(e, "class"));
        const char *desc = json_string_value(json_object_get(e, "desc"));
        snprintf(err, errlen, "%s: %s", cls ? cls : "GenericError",
                 desc ? desc : "(no description)");
        json_decref(j);
        return -1;
    }
    json_decref(j);
    return 1;
}

int qmp_unix_connect(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

char *liner_next(struct liner *l, char *err, size_t errlen)
{
    for (;;) {
        char *nl = l->len ? memchr(l->buf, '\n', l->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - l->buf);
            char *line = malloc(n + 1);
            if (!line)
                return NULL;
            memcpy(line, l->buf, n);
            line[n] = 0;
            memmove(l->buf, nl + 1, l->len - n - 1);
            l->len -= n + 1;
            return line;
        }
        if (l->len >= QMP_LINE_MAX) {
            snprintf(err, errlen, "QMP line longer than %d bytes", QMP_LINE_MAX);
            return NULL;
        }
        if (l->cap - l->len < 4096) {
            size_t nc = l->cap ? l->cap * 2 : 8192;
            char *nb = realloc(l->buf, nc);
            if (!nb)
                return NULL;
            l->buf = nb;
            l->cap = nc;
        }
        int64_t left = l->deadline - monotonic_ms();
        if (left <= 0) {
            snprintf(err, errlen, "QMP timed out");
            return NULL;
        }
        struct pollfd pf = {l->fd, POLLIN, 0};
        int pr = poll(&pf, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            snprintf(err, errlen, "QMP timed out");
            return NULL;
        }
        ssize_t n = read(l->fd, l->buf + l->len, l->cap - l->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "QMP connection closed");
            return NULL;
        }
        l->len += (size_t)n;
    }
}

char *qmp_message(const char *command, json_t *args, long long id)
{
    json_t *msg = json_pack("{s:s}", "execute", command);
    if (args)
        json_object_set(msg, "arguments", args);
    if (id >= 0)
        json_object_set_new(msg, "id", json_integer((json_int_t)id));
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    char *line = NULL;
    if (text && asprintf(&line, "%s\n", text) < 0)
        line = NULL;
    free(text);
    return line;
}

/* Sends text's first byte with pass_fd as SCM_RIGHTS ancillary data (QEMU
 * takes a passed fd from the message carrying the command that uses it);
 * 0 when that byte went, -1 otherwise. */
static int send_first_byte_fd(int sock, const char *text, int pass_fd, int flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {.iov_base = (void *)text, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    ssize_t n;
    while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags)) < 0 && errno == EINTR)
        ;
    return n == 1 ? 0 : -1;
}

/* Writes a whole command line, the first byte carrying pass_fd (>= 0) as
 * SCM_RIGHTS ancillary data: QEMU takes a passed fd from the message that
 * carries the command using it (add-fd, getfd). */
static int send_with_fd(int sock, const char *text, size_t len, int pass_fd)
{
    if (pass_fd < 0)
        return send_all(sock, text, len);
    if (send_first_byte_fd(sock, text, pass_fd, 0) < 0)
        return -1;
    return send_all(sock, text + 1, len - 1);
}

/* Sends one command and waits for its reply, skipping interleaved events. */
static int exchange(struct liner *l, const char *command, json_t *args, int pass_fd, json_t **ret,
                    char *err, size_t errlen)
{
    char *text = qmp_message(command, args, -1);
    if (!text)
        return -1;
    int rc = send_with_fd(l->fd, text, strlen(text), pass_fd);
    free(text);
    if (rc < 0) {
        snprintf(err, errlen, "QMP write: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        char *line = liner_next(l, err, errlen);
        if (!line)
            return -1;
        int pr = qmp_parse_reply(line, ret, err, errlen);
        free(line);
        if (pr <= 0)
            return pr;
    }
}

int qmp_command(const char *sock_path, const char *command, json_t *args, json_t **ret,
                int timeout_ms, char *err, size_t errlen)
{
    return qmp_command_fd(sock_path, command, args, -1, ret, timeout_ms, err, errlen);
}

int qmp_command_fd(const char *sock_path, const char *command, json_t *args, int pass_fd,
                   json_t **ret, int timeout_ms, char *err, size_t errlen)
{
    if (ret)
        *ret = NULL;
    int fd = qmp_unix_connect(sock_path, err, errlen);
    if (fd < 0)
        return -1;
    struct liner l = {.fd = fd, .deadline = monotonic_ms() + timeout_ms};
    int rc = -1;
    char *greet = liner_next(&l, err, errlen);
    if (greet) {
        json_t *g = json_loads(greet, 0, NULL);
        int ok = g && json_is_object(json_object_get(g, "QMP"));
        json_decref(g);
        free(greet);
        if (!ok)
            snprintf(err, errlen, "QMP greeting malformed");
        else if (exchange(&l, "qmp_capabilities", NULL, -1, NULL, err, errlen) == 0)
            rc = exchange(&l, command, args, pass_fd, ret, err, errlen);
    }
    free(l.buf);
    close(fd);
    return rc;
}

int qmp_query_status(const char *sock_path, char *status, size_t len, char *err, size_t errlen)
{
    json_t *r = NULL;
    if (qmp_command(sock_path, "query-status", NULL, &r, 5000, err, errlen) < 0)
        return -1;
    const char *s = json_string_value(json_object_get(r, "status"));
    if (!s) {
        snprintf(err, errlen, "query-status reply has no status");
        json_decref(r);
        return -1;
    }
    snprintf(status, len, "%s", s);
    json_decref(r);
    return 0;
}

/* ---- event watcher ---- */

#define QMP_PENDING_MAX 16

struct qmp_pending {
    long long id;
    qmp_reply_cb cb;
    void *ctx;
};

struct qmp_watch {
    struct bufferevent *bev;
    qmp_event_cb on_ev;
    qmp_eof_cb on_eof;
    void *ctx;
    int negotiated;
    struct evbuffer *early; /* commands queued before the greeting came */
    long long next_id;
    struct qmp_pending pending[QMP_PENDING_MAX];
    int npending;
};

static void dispatch_reply(struct qmp_watch *w, json_t *j)
{
    json_t *idj = json_object_get(j, "id");
    if (!json_is_integer(idj))
        return; /* qmp_capabilities' reply, or one we did not ask for */
    long long id = json_integer_value(idj);
    for (int i = 0; i < w->npending; i++) {
        if (w->pending[i].id != id)
            continue;
        struct qmp_pending p = w->pending[i];
        w->pending[i] = w->pending[--w->npending];
        char err[256] = "";
        json_t *ret = json_object_get(j, "return");
        if (!ret) {
            json_t *e = json_object_get(j, "error");
            const char *desc = json_string_value(json_object_get(e, "desc"));
            snprintf(err, sizeof(err), "%s", desc ? desc : "malformed QMP reply");
        }
        p.cb(p.ctx, ret, ret ? NULL : err);
        return;
    }
}

int qmp_watch_command(struct qmp_watch *w, const char *command, json_t *args, qmp_reply_cb cb,
                      void *ctx)
{
    if (!w || w->npending == QMP_PENDING_MAX)
        return -1;
    long long id = ++w->next_id;
    char *text = qmp_message(command, args, id);
    if (!text)
        return -1;
    /* Before negotiation QEMU would refuse it: it goes out right after
     * qmp_capabilities (the query-chardev sent as a watch is opened). */
    if (w->negotiated)
        bufferevent_write(w->bev, text, strlen(text));
    else
        evbuffer_add(w->early, text, strlen(text));
    free(text);
    w->pending[w->npending++] = (struct qmp_pending){id, cb, ctx};
    return 0;
}

/* The command goes out with the fd on its first byte, as send_with_fd()
 * does on a blocking socket: whatever the bufferevent still holds is
 * written first (QMP takes a passed fd from the message carrying it), and
 * the rest of the line is queued behind that byte. A socket too full to
 * take it now refuses the command (-1): QMP messages are small and the
 * monitor reads them at once, so this is an error, not a wait. */
int qmp_watch_command_fd(struct qmp_watch *w, const char *command, json_t *args, int pass_fd,
                         qmp_reply_cb cb, void *ctx)
{
    if (pass_fd < 0)
        return qmp_watch_command(w, command, args, cb, ctx);
    if (!w || !w->negotiated || w->npending == QMP_PENDING_MAX)
        return -1;
    int sock = bufferevent_getfd(w->bev);
    struct evbuffer *out = bufferevent_get_output(w->bev);
    while (sock >= 0 && evbuffer_get_length(out) > 0)
        if (evbuffer_write(out, sock) <= 0)
            break;
    if (sock < 0 || evbuffer_get_length(out) > 0)
        return -1;
    long long id = ++w->next_id;
    char *text = qmp_message(command, args, id);
    if (!text)
        return -1;
    if (send_first_byte_fd(sock, text, pass_fd, MSG_DONTWAIT) < 0) {
        free(text);
        return -1;
    }
    bufferevent_write(w->bev, text + 1, strlen(text) - 1);
    free(text);
    w->pending[w->npending++] = (struct qmp_pending){id, cb, ctx};
    return 0;
}

int qmp_watch_room(const struct qmp_watch *w)
{
    return w ? QMP_PENDING_MAX - w->npending : 0;
}

void qmp_watch_forget(struct qmp_watch *w, void *ctx)
{
    if (!w)
        return;
    for (int i = 0; i < w->npending;)
        if (w->pending[i].ctx == ctx)
            w->pending[i] = w->pending[--w->npending];
        else
            i++;
}

static void watch_read(struct bufferevent *bev, void *arg)
{
    struct qmp_watch *w = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t n;
    while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF))) {
        json_t *j = qmp_loads(line);
        free(line);
        if (!j)
            continue;
        if (!w->negotiated && json_object_get(j, "QMP")) {
            bufferevent_write(bev, "{\"execute\":\"qmp_capabilities\"}\n", 31);
            bufferevent_write_buffer(bev, w->early);
            w->negotiated = 1;
        } else if (json_object_get(j, "return") || json_object_get(j, "error")) {
            dispatch_reply(w, j);
        } else {
            const char *ev = json_string_value(json_object_get(j, "event"));
            if (ev && w->on_ev)
                w->on_ev(w->ctx, ev, json_object_get(j, "data"));
        }
        json_decref(j);
    }
    if (evbuffer_get_length(in) > QMP_LINE_MAX)
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void watch_event(struct bufferevent *bev, short what, void *arg)
{
    struct qmp_watch *w = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        qmp_eof_cb cb = w->on_eof;
        void *ctx = w->ctx;
        /* The callback usually closes the watch; call it last. */
        bufferevent_disable(bev, EV_READ | EV_WRITE);
        if (cb)
            cb(ctx);
    }
}

struct qmp_watch *qmp_watch_open(struct event_base *base, const char *sock_path, qmp_event_cb on_ev,
                                 qmp_eof_cb on_eof, void *ctx, char *err, size_t errlen)
{
    int fd = qmp_unix_connect(sock_path, err, errlen);
    if (fd < 0)
        return NULL;
    evutil_make_socket_nonblocking(fd);
    struct qmp_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        close(fd);
        return NULL;
    }
    w->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    w->early = evbuffer_new();
    if (!w->bev || !w->early) {
        if (w->bev)
            bufferevent_free(w->bev);
        else
            close(fd);
        if (w->early)
            evbuffer_free(w->early);
        free(w);
        snprintf(err, errlen, "bufferevent_socket_new failed");
        return NULL;
    }
    w->on_ev = on_ev;
    w->on_eof = on_eof;
    w->ctx = ctx;
    bufferevent_setcb(w->bev, watch_read, NULL, watch_event, w);
    bufferevent_enable(w->bev, EV_READ);
    return w;
}

void qmp_watch_close(struct qmp_watch *w)
{
    if (!w)
        return;
    bufferevent_free(w->bev);
    evbuffer_free(w->early);
    free(w);
}

bool qmp_name_ok(const char *n, size_t maxlen)
{
    size_t len = n ? strlen(n) : 0;
    if (len < 1 || len > maxlen)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(n[i] >= 'a' && n[i] <= 'z') && !(n[i] >= 'A' && n[i] <= 'Z') &&
            !(n[i] >= '0' && n[i] <= '9') && n[i] != '-' && n[i] != '_')
            return false;
    return true;
}
