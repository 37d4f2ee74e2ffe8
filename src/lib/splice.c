/*
 * splice.c - two bufferevents joined both ways with bounded buffers (see
 * splice.h): the read callbacks move bytes across and pause a side whose
 * peer's output is full; the write callbacks (low watermark) resume it;
 * the first end or error drains what is left and frees both.
 */
#include "lib/splice.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>

#define FLUSH_TIMEOUT_S 5

struct splice {
    struct bufferevent *side[2];
    size_t limit;
    bool closing;
    void (*done)(void *arg);
    void *arg;
};

static int side_of(struct splice *s, struct bufferevent *bev)
{
    return s->side[0] == bev ? 0 : 1;
}

static void splice_free(struct splice *s)
{
    for (int i = 0; i < 2; i++) {
        /* A bufferevent pair's partner hears of the end only so (for a
         * socket this does nothing: the close is the end). */
        bufferevent_flush(s->side[i], EV_WRITE, BEV_FINISHED);
        bufferevent_free(s->side[i]);
    }
    if (s->done)
        s->done(s->arg);
    free(s);
}

static void move(struct splice *s, int from)
{
    struct bufferevent *src = s->side[from], *dst = s->side[!from];
    struct evbuffer *out = bufferevent_get_output(dst);
    struct evbuffer *in = bufferevent_get_input(src);
    size_t have = evbuffer_get_length(out);
    if (have < s->limit) {
        size_t n = evbuffer_get_length(in);
        if (n > s->limit - have)
            n = s->limit - have;
        evbuffer_remove_buffer(in, out, n);
    }
    if (evbuffer_get_length(out) >= s->limit)
        bufferevent_disable(src, EV_READ); /* dst's write callback resumes it */
}

/* Both written out (or the time is up): the end. */
static bool flushed(struct splice *s)
{
    return evbuffer_get_length(bufferevent_get_output(s->side[0])) == 0 &&
           evbuffer_get_length(bufferevent_get_output(s->side[1])) == 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct splice *s = arg;
    if (!s->closing)
        move(s, side_of(s, bev));
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct splice *s = arg;
    if (s->closing) {
        if (flushed(s))
            splice_free(s);
        return;
    }
    /* bev's output went below half the limit: its peer may read again. */
    int peer = !side_of(s, bev);
    move(s, peer);
    if (evbuffer_get_length(bufferevent_get_output(bev)) < s->limit)
        bufferevent_enable(s->side[peer], EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct splice *s = arg;
    int me = side_of(s, bev);
    if (s->closing || (what & BEV_EVENT_ERROR) || (what & BEV_EVENT_TIMEOUT)) {
        splice_free(s);
        return;
    }
    /* EOF: what bev sent is moved across (no limit now), then both close
     * once the output is out. */
    s->closing = true;
    evbuffer_add_buffer(bufferevent_get_output(s->side[!me]), bufferevent_get_input(bev));
    struct timeval tv = {FLUSH_TIMEOUT_S, 0};
    for (int i = 0; i < 2; i++) {
        bufferevent_disable(s->side[i], EV_READ);
        bufferevent_setwatermark(s->side[i], EV_WRITE, 0, 0);
        bufferevent_set_timeouts(s->side[i], NULL, &tv);
    }
    if (flushed(s))
        splice_free(s);
}

void splice_end(struct splice *s)
{
    splice_free(s);
}

struct splice *bev_splice(struct bufferevent *a, struct bufferevent *b, size_t limit,
                          void (*done)(void *arg), void *arg)
{
    struct splice *s = calloc(1, sizeof *s);
    if (!s) {
        bufferevent_free(a);
        bufferevent_free(b);
        return NULL;
    }
    s->side[0] = a;
    s->side[1] = b;
    s->limit = limit ? limit : 1;
    s->done = done;
    s->arg = arg;
    for (int i = 0; i < 2; i++) {
        bufferevent_setcb(s->side[i], on_read, on_write, on_event, s);
        bufferevent_setwatermark(s->side[i], EV_WRITE, s->limit / 2, 0);
        bufferevent_setwatermark(s->side[i], EV_READ, 0, s->limit);
        bufferevent_set_timeouts(s->side[i], NULL, NULL);
        bufferevent_enable(s->side[i], EV_READ | EV_WRITE);
    }
    /* Bytes already read (after an upgrade's header) go across now. */
    move(s, 0);
    move(s, 1);
    return s;
}
