/*
 * qga.c - guest agent clients: the asynchronous one on the event loop (a
 * per-VM queue of exchanges over a bufferevent), and a blocking one (sync,
 * then one command, bounded by a timeout).
 */
#include "compute/qga.h"
#include "compute/qmp.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A reply line longer than this is refused: the guest is not trusted to
 * make yund buffer (and parse, on its loop) without bound. 4 MiB carries
 * about 3 MiB of guest-exec output. */
#define QGA_LINE_MAX (4 << 20)

/* ---- asynchronous client ---- */

struct qga_req {
    struct qga_req *next;
    char *text; /* the command line, newline included */
    int flags;
    int64_t deadline; /* monotonic ms */
    qga_cb cb;        /* NULL once cancelled while in flight */
    void *ctx;
};

enum qga_phase {
    PH_IDLE,  /* nothing in flight */
    PH_SYNC,  /* 0xFF + guest-sync-delimited sent, waiting for our id */
    PH_REPLY, /* the command sent, waiting for its reply */
    PH_FLUSH, /* a QGA_NO_REPLY command sent, waiting for it to be written */
};

struct qga_client {
    struct event_base *base;
    char path[108];
    struct bufferevent *bev; /* NULL while not connected */
    bool synced;             /* this connection passed guest-sync-delimited */
    enum qga_phase phase;
    long long sync_id;
    struct qga_req *head, *tail; /* head is in flight unless phase == PH_IDLE */
    int n;
    struct event *timer; /* the earliest deadline in the queue */
    struct event *kick;  /* starts the next exchange from the loop */
    int dispatching;     /* callbacks running right now */
    bool doomed;         /* freed during a callback: free the memory after it */
};

static void kick_soon(struct qga_client *c)
{
    struct timeval now = {0, 0};
    if (!c->doomed)
        evtimer_add(c->kick, &now);
}

static void disconnect(struct qga_client *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    c->synced = false;
    c->phase = PH_IDLE;
    evtimer_del(c->timer);
}

static void req_free(struct qga_req *r)
{
    free(r->text);
    free(r);
}

/* Takes the in-flight exchange off the queue and reports it. Returns false
 * when the client was freed by the callback (stop touching it). */
static bool finish(struct qga_client *c, enum qga_status st, json_t *ret, const char *err)
{
    struct qga_req *r = c->head;
    c->head = r->next;
    if (!c->head)
        c->tail = NULL;
    c->n--;
    c->phase = PH_IDLE;
    evtimer_del(c->timer);
    /* The stream is trusted only after the reply it expected; after a
     * failure or a command that answers nothing, the next exchange resyncs. */
    bool resync = st == QGA_FAILED || (r->flags & QGA_NO_REPLY);
    if (r->cb) {
        c->dispatching++;
        r->cb(r->ctx, st, ret, err ? err : "");
        c->dispatching--;
    }
    req_free(r);
    if (c->doomed) {
        if (!c->dispatching)
            free(c);
        return false;
    }
    if (resync)
        disconnect(c);
    if (!c->head)
        disconnect(c); /* idle: leave the socket to other clients */
    else
        kick_soon(c);
    return true;
}

static void send_command(struct qga_client *c)
{
    struct qga_req *r = c->head;
    bufferevent_write(c->bev, r->text, strlen(r->text));
    c->phase = (r->flags & QGA_NO_REPLY) ? PH_FLUSH : PH_REPLY;
}

/* A line from the agent; returns false when the client is gone. */
static bool on_line(struct qga_client *c, char *line, size_t n)
{
    /* guest-sync-delimited's 0xFF marker precedes its reply; whatever came
     * before the last marker on a line is stale. */
    char *p = line;
    for (size_t i = n; i > 0; i--)
        if ((unsigned char)line[i - 1] == 0xff) {
            p = line + i;
            break;
        }
    size_t len = n - (size_t)(p - line);
    json_t *j = json_loadb(p, len, 0, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return true; /* noise, or the tail of an earlier client's reply */
    }
    json_t *ret = json_object_get(j, "return");
    json_t *e = json_object_get(j, "error");
    bool alive = true;
    if (c->phase == PH_SYNC) {
        if (json_is_integer(ret) && json_integer_value(ret) == c->sync_id) {
            c->synced = true;
            send_command(c);
        }
    } else if (c->phase == PH_REPLY && ret) {
        alive = finish(c, QGA_OK, ret, NULL);
    } else if (c->phase == PH_REPLY && json_is_object(e)) {
        const char *cls = json_string_value(json_object_get(e, "class"));
        const char *desc = json_string_value(json_object_get(e, "desc"));
        char err[256];
        snprintf(err, sizeof(err), "%s: %s", cls ? cls : "GenericError",
                 desc ? desc : "(no description)");
        alive = finish(c, QGA_ERROR, NULL, err);
    }
    json_decref(j);
    return alive;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct qga_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t n;
    while (c->bev == bev && (line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF))) {
        bool alive = on_line(c, line, n);
        free(line);
        if (!alive)
            return;
    }
    if (c->bev == bev && evbuffer_get_length(in) > QGA_LINE_MAX) {
        if (c->phase != PH_IDLE && c->head)
            finish(c, QGA_FAILED, NULL, "the guest agent sent a line longer than 4 MiB");
        else
            disconnect(c);
    }
}

static void on_written(struct bufferevent *bev, void *arg)
{
    struct qga_client *c = arg;
    if (c->phase == PH_FLUSH)
        finish(c, QGA_OK, NULL, NULL);
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct qga_client *c = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (c->phase != PH_IDLE && c->head)
        finish(c, QGA_FAILED, NULL, "the guest agent connection closed");
    else
        disconnect(c);
}

/* The timer fires at the earliest deadline in the queue: the exchange in
 * flight, or one waiting behind it (a stop's guest-shutdown must not wait
 * out a facts refresh against a silent agent). */
static void arm_timer(struct qga_client *c)
{
    int64_t first = INT64_MAX;
    for (struct qga_req *r = c->head; r; r = r->next)
        if (r->deadline < first)
            first = r->deadline;
    if (first == INT64_MAX) {
        evtimer_del(c->timer);
        return;
    }
    int64_t left = first - monotonic_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {left / 1000, (left % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct qga_client *c = arg;
    int64_t now = monotonic_ms();
    /* first those still waiting behind the exchange in flight */
    for (;;) {
        struct qga_req *prev = c->head, *r = prev ? prev->next : NULL;
        while (r && r->deadline > now) {
            prev = r;
            r = r->next;
        }
        if (!r)
            break;
        prev->next = r->next;
        if (c->tail == r)
            c->tail = prev;
        c->n--;
        if (r->cb) {
            c->dispatching++;
            r->cb(r->ctx, QGA_FAILED, NULL,
                  "the guest agent did not answer in time (busy with an earlier exchange)");
            c->dispatching--;
        }
        req_free(r);
        if (c->doomed) {
            if (!c->dispatching)
                free(c);
            return;
        }
    }
    if (c->head && c->head->deadline <= now) {
        finish(c, QGA_FAILED, NULL,
               c->phase == PH_SYNC || c->phase == PH_IDLE
                   ? "the guest agent does not answer (is qemu-guest-agent running?)"
                   : "the guest agent did not answer in time");
        return;
    }
    arm_timer(c);
}

/* Non-blocking connect: on a unix socket it completes or fails at once
 * (EAGAIN when QEMU's listen backlog is full), so it never waits. */
static int open_socket(struct qga_client *c, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "cannot connect to the guest agent socket: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bufferevent_setcb(c->bev, on_read, on_written, on_bev_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return 0;
}

/* Starts the exchange at the head of the queue, if none is in flight. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct qga_client *c = arg;
    while (c->head && c->phase == PH_IDLE) {
        struct qga_req *r = c->head;
        int64_t left = r->deadline - monotonic_ms();
        char err[256];
        if (left <= 0) {
            if (!finish(c, QGA_FAILED, NULL, "the guest agent did not answer in time"))
                return;
            continue;
        }
        if (!c->bev && open_socket(c, err, sizeof(err)) < 0) {
            if (!finish(c, QGA_FAILED, NULL, err))
                return;
            continue;
        }
        arm_timer(c);
        if (c->synced) {
            send_command(c);
            return;
        }
        static long long seq;
        c->sync_id = ((now_ms() & 0xffffff) << 8 | (++seq & 0xff)) & 0x3fffffffLL;
        char *sync = NULL;
        if (asprintf(&sync,
                     "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%lld}}\n",
                     c->sync_id) < 0) {
            if (!finish(c, QGA_FAILED, NULL, "out of memory"))
                return;
            continue;
        }
        bufferevent_write(c->bev, sync, strlen(sync));
        free(sync);
        c->phase = PH_SYNC;
    }
}

struct qga_client *qga_client_new(struct event_base *base, const char *sock_path)
{
    struct qga_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    if (snprintf_checked(c->path, sizeof(c->path), "%s", sock_path) < 0) {
        free(c);
        return NULL;
    }
    c->timer = evtimer_new(base, on_timeout, c);
    c->kick = evtimer_new(base, on_kick, c);
    if (!c->timer || !c->kick) {
        if (c->timer)
            event_free(c->timer);
        if (c->kick)
            event_free(c->kick);
        free(c);
        return NULL;
    }
    return c;
}

void qga_client_free(struct qga_client *c)
{
    if (!c || c->doomed)
        return;
    c->doomed = true; /* from here on qga_call refuses, kick_soon does nothing */
    disconnect(c);
    while (c->head) {
        struct qga_req *r = c->head;
        c->head = r->next;
        c->n--;
        if (r->cb) {
            c->dispatching++;
            r->cb(r->ctx, QGA_CANCELLED, NULL, "the VM stopped or its guest agent went away");
            c->dispatching--;
        }
        req_free(r);
    }
    c->tail = NULL;
    event_free(c->timer);
    event_free(c->kick);
    if (!c->dispatching)
        free(c);
}

int qga_call(struct qga_client *c, const char *command, json_t *args, int flags, int timeout_ms,
             qga_cb cb, void *ctx)
{
    if (!c || c->doomed)
        return -1;
    struct qga_req *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->text = qmp_message(command, args, -1);
    if (!r->text) {
        free(r);
        return -1;
    }
    r->flags = flags;
    r->deadline = monotonic_ms() + timeout_ms;
    r->cb = cb;
    r->ctx = ctx;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->n++;
    if (c->phase == PH_IDLE)
        kick_soon(c);
    else
        arm_timer(c); /* its deadline may come before the one in flight */
    return 0;
}

void qga_cancel(struct qga_client *c, void *ctx)
{
    if (!c)
        return;
    struct qga_req **pp = &c->head, *prev = NULL;
    while (*pp) {
        struct qga_req *r = *pp;
        if (r->ctx != ctx) {
            prev = r;
            pp = &r->next;
            continue;
        }
        if (r == c->head && c->phase != PH_IDLE) {
            r->cb = NULL; /* already sent: let it finish unheard */
            prev = r;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (c->tail == r)
            c->tail = prev;
        c->n--;
        req_free(r);
    }
}

int qga_pending(const struct qga_client *c)
{
    return c ? c->n : 0;
}

/* ---- blocking client ---- */

static int send_cmd(int fd, const char *command, json_t *args, char *err, size_t errlen)
{
    char *text = qmp_message(command, args, -1);
    int rc = text && send_all(fd, text, strlen(text)) == 0 ? 0 : -1;
    free(text);
    if (rc < 0)
        snprintf(err, errlen, "guest agent write: %s", strerror(errno));
    return rc;
}

/* Reads lines until a reply (return or error) arrives. */
static int read_reply(struct liner *l, json_t **ret, char *err, size_t errlen)
{
    for (;;) {
        char *line = liner_next(l, err, errlen);
        if (!line)
            return -1;
        /* guest-sync-delimited's 0xff marker may precede the JSON */
        char *p = line;
        while (*p == '\xff')
            p++;
        int rc = qmp_parse_reply(p, ret, err, errlen);
        free(line);
        if (rc <= 0)
            return rc;
    }
}

int qga_command(const char *sock_path, const char *command, json_t *args, json_t **ret,
                int no_reply, int timeout_ms, char *err, size_t errlen)
{
    if (ret)
        *ret = NULL;
    int fd = qmp_unix_connect(sock_path, err, errlen);
    if (fd < 0)
        return -1;
    struct liner l = {.fd = fd, .deadline = monotonic_ms() + timeout_ms};
    int rc = -1;
    json_int_t id = (json_int_t)(now_ms() & 0x3fffffff) ^ (json_int_t)getpid();
    json_t *sync = json_pack("{s:I}", "id", id);
    json_t *sret = NULL;
    if (send_cmd(fd, "guest-sync-delimited", sync, err, errlen) == 0) {
        /* skip stale replies left by an earlier client until ours comes */
        while (read_reply(&l, &sret, err, errlen) == 0) {
            int ok = json_is_integer(sret) && json_integer_value(sret) == id;
            json_decref(sret);
            sret = NULL;
            if (ok) {
                rc = 0;
                break;
            }
        }
    }
    json_decref(sync);
    if (rc == 0) {
        rc = send_cmd(fd, command, args, err, errlen);
        if (rc == 0 && !no_reply)
            rc = read_reply(&l, ret, err, errlen);
    } else if (strstr(err, "timed out")) {
        snprintf(err, errlen, "the guest agent does not answer (is qemu-guest-agent running?)");
    }
    free(l.buf);
    close(fd);
    return rc;
}
