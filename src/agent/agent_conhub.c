/*
 * agent_conhub.c - this host's live serial consoles: the in-process agent's
 * console_open. QEMU's console chardev (a Unix socket, VMDIR_CONSOLE in the
 * VM's directory) takes one client, so each VM with someone attached has
 * one hub: one connection to QEMU, fanned out to every stream opened on
 * the VM (a bufferevent pair each; the caller holds the other end).
 *
 * What QEMU prints goes to every stream; what any stream sends goes to
 * QEMU. Buffers are bounded: QEMU is not read while a stream's output is
 * above HUB_LIMIT (the slowest reader sets the pace, as on a serial line),
 * and no stream is read while QEMU's input is above it. The last stream
 * gone, the hub closes its QEMU connection; QEMU gone (the VM stopped),
 * every stream ends.
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "lib/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HUB_LIMIT       (256u * 1024)
#define HUB_MAX_STREAMS 16 /* per VM */

struct hub_stream {
    struct hub_stream *next;
    struct conhub *hub;
    struct bufferevent *end; /* the hub's end of the pair */
};

struct conhub {
    struct conhub *next;
    struct agent_local *al;
    char vm[37];
    struct bufferevent *qemu;
    struct hub_stream *streams;
    int nstreams;
};

/* An open answered later, from the loop. */
struct conopen {
    struct conopen *next;
    struct agent_local *al;
    struct event *ev;
    agent_console_fn done;
    void *ctx;
    struct bufferevent *bev; /* NULL: err */
    struct yerr err;
};

static void hub_free(struct conhub *h)
{
    struct conhub **pp = &h->al->conhubs;
    while (*pp && *pp != h)
        pp = &(*pp)->next;
    if (*pp)
        *pp = h->next;
    while (h->streams) {
        struct hub_stream *s = h->streams;
        h->streams = s->next;
        /* the caller's end sees EOF */
        bufferevent_flush(s->end, EV_WRITE, BEV_FINISHED);
        bufferevent_free(s->end);
        free(s);
    }
    if (h->qemu)
        bufferevent_free(h->qemu);
    free(h);
}

static void stream_drop(struct hub_stream *s)
{
    struct conhub *h = s->hub;
    struct hub_stream **pp = &h->streams;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    h->nstreams--;
    bufferevent_flush(s->end, EV_WRITE, BEV_FINISHED);
    bufferevent_free(s->end);
    free(s);
    if (!h->streams)
        hub_free(h); /* nobody attached: QEMU's socket is free again */
}

static bool streams_full(struct conhub *h)
{
    for (struct hub_stream *s = h->streams; s; s = s->next)
        if (evbuffer_get_length(bufferevent_get_output(s->end)) >= HUB_LIMIT)
            return true;
    return false;
}

/* QEMU's output to every stream, while none is full. */
static void fan_out(struct conhub *h)
{
    struct evbuffer *in = bufferevent_get_input(h->qemu);
    size_t n = evbuffer_get_length(in);
    if (n && !streams_full(h)) {
        unsigned char *p = evbuffer_pullup(in, (ssize_t)n);
        for (struct hub_stream *s = h->streams; s; s = s->next)
            bufferevent_write(s->end, p, n);
        evbuffer_drain(in, n);
    }
    if (streams_full(h))
        bufferevent_disable(h->qemu, EV_READ);
    else
        bufferevent_enable(h->qemu, EV_READ);
}

/* The streams' input to QEMU, while its output has room. */
static void fan_in(struct conhub *h)
{
    struct evbuffer *out = bufferevent_get_output(h->qemu);
    for (struct hub_stream *s = h->streams; s; s = s->next) {
        struct evbuffer *in = bufferevent_get_input(s->end);
        if (evbuffer_get_length(out) < HUB_LIMIT)
            evbuffer_add_buffer(out, in);
    }
    bool full = evbuffer_get_length(out) >= HUB_LIMIT;
    for (struct hub_stream *s = h->streams; s; s = s->next) {
        if (full)
            bufferevent_disable(s->end, EV_READ);
        else
            bufferevent_enable(s->end, EV_READ);
    }
}

static void on_qemu_read(struct bufferevent *bev, void *arg)
{
    fan_out(arg);
}

static void on_qemu_write(struct bufferevent *bev, void *arg)
{
    fan_in(arg);
}

static void on_qemu_event(struct bufferevent *bev, short what, void *arg)
{
    struct conhub *h = arg;
    fan_out(h); /* what it printed last */
    hub_free(h);
}

static void on_stream_read(struct bufferevent *bev, void *arg)
{
    fan_in(((struct hub_stream *)arg)->hub);
}

static void on_stream_write(struct bufferevent *bev, void *arg)
{
    fan_out(((struct hub_stream *)arg)->hub);
}

static void on_stream_event(struct bufferevent *bev, short what, void *arg)
{
    struct hub_stream *s = arg;
    fan_in(s->hub);
    stream_drop(s);
}

static struct conhub *hub_get(struct agent_local *al, const char *vm, struct yerr *err)
{
    for (struct conhub *h = al->conhubs; h; h = h->next)
        if (!strcmp(h->vm, vm))
            return h;
    struct engine *e = al->host;
    if (!e) {
        yerr_set(err, YE_UNAVAILABLE, "agent: no compute engine on this host");
        return NULL;
    }
    struct vm_rec rec = {0};
    snprintf(rec.id, sizeof rec.id, "%s", vm);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (engine_vm_path(e, &rec, VMDIR_CONSOLE, sa.sun_path, sizeof sa.sun_path) < 0) {
        yerr_set(err, YE_INTERNAL, "agent: console socket path too long");
        return NULL;
    }
    /* A Unix socket's connect does not wait: it is there (QEMU listening)
     * or it is not. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e2 = errno;
        if (fd >= 0)
            close(fd);
        yerr_set(err, YE_CONFLICT, "VM %s has no running console on this host (%s)", vm,
                 strerror(e2));
        return NULL;
    }
    struct conhub *h = calloc(1, sizeof *h);
    struct bufferevent *q = h ? bufferevent_socket_new(al->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!q) {
        free(h);
        close(fd);
        yerr_set(err, YE_INTERNAL, "out of memory");
        return NULL;
    }
    h->al = al;
    h->qemu = q;
    snprintf(h->vm, sizeof h->vm, "%s", vm);
    bufferevent_setwatermark(q, EV_READ, 0, HUB_LIMIT);
    bufferevent_setwatermark(q, EV_WRITE, HUB_LIMIT / 2, 0);
    bufferevent_setcb(q, on_qemu_read, on_qemu_write, on_qemu_event, h);
    bufferevent_enable(q, EV_READ | EV_WRITE);
    h->next = al->conhubs;
    al->conhubs = h;
    return h;
}

/* A new stream on the hub: the caller's end, or NULL with err. */
static struct bufferevent *hub_attach(struct conhub *h, struct yerr *err)
{
    if (h->nstreams >= HUB_MAX_STREAMS) {
        yerr_set(err, YE_CONFLICT, "VM %s has %d console clients already", h->vm, h->nstreams);
        return NULL;
    }
    struct bufferevent *pair[2];
    struct hub_stream *s = calloc(1, sizeof *s);
    if (!s || bufferevent_pair_new(h->al->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS,
                                   pair) < 0) {
        free(s);
        yerr_set(err, YE_INTERNAL, "out of memory");
        return NULL;
    }
    s->hub = h;
    s->end = pair[0];
    s->next = h->streams;
    h->streams = s;
    h->nstreams++;
    bufferevent_setwatermark(s->end, EV_WRITE, HUB_LIMIT / 2, 0);
    bufferevent_setcb(s->end, on_stream_read, on_stream_write, on_stream_event, s);
    bufferevent_enable(s->end, EV_READ | EV_WRITE);
    return pair[1];
}

static void open_unlink(struct conopen *o)
{
    struct conopen **pp = &o->al->conopens;
    while (*pp && *pp != o)
        pp = &(*pp)->next;
    if (*pp)
        *pp = o->next;
    event_free(o->ev);
}

static void on_open_due(evutil_socket_t fd, short what, void *arg)
{
    struct conopen *o = arg;
    open_unlink(o);
    o->done(o->ctx, o->bev, o->bev ? NULL : &o->err);
    free(o);
}

int agent_conhub_open(struct agent *a, const char *vm_id, agent_console_fn done, void *ctx)
{
    struct agent_local *al = agent_local_of(a);
    struct conopen *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    o->ev = event_new(al->base, -1, 0, on_open_due, o);
    if (!o->ev) {
        free(o);
        return -1;
    }
    o->al = al;
    o->done = done;
    o->ctx = ctx;
    if (!vm_id || !vm_id[0] || strlen(vm_id) > 36 ||
        strspn(vm_id, "0123456789abcdef-") != strlen(vm_id)) {
        yerr_set(&o->err, YE_INVALID_ARGUMENT, "agent: not a VM id");
    } else {
        struct conhub *h = hub_get(al, vm_id, &o->err);
        if (h) {
            o->bev = hub_attach(h, &o->err);
            if (!h->streams)
                hub_free(h);
        }
    }
    o->next = al->conopens;
    al->conopens = o;
    event_active(o->ev, EV_TIMEOUT, 0);
    return 0;
}

void agent_conhub_forget(struct agent *a, void *ctx)
{
    struct agent_local *al = agent_local_of(a);
    struct conopen *o = al->conopens, *next;
    for (; o; o = next) {
        next = o->next;
        if (o->ctx != ctx)
            continue;
        open_unlink(o);
        if (o->bev)
            bufferevent_free(o->bev);
        free(o);
    }
}

void agent_conhub_free(struct agent_local *al)
{
    while (al->conopens) {
        struct conopen *o = al->conopens;
        open_unlink(o);
        if (o->bev)
            bufferevent_free(o->bev);
        free(o);
    }
    while (al->conhubs)
        hub_free(al->conhubs);
}
