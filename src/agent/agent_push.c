/*
 * agent_push.c - the agent's event pusher (see agent_push.h): the numbered
 * queue (a ring that grows up to its bound), batching, acks, backoff and
 * the choice of controller URL.
 */
#include "agent/agent_push.h"
#include "agent/agent_remote.h"
#include "lib/hclient.h"
#include "lib/log.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URLS_MAX       16
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define SEND_TIMEOUT   10000

struct pev {
    uint64_t seq;
    char *type;
    json_t *data;
};

struct agent_push {
    struct event_base *base;
    struct agent *local;
    char host_id[64];
    char credential[256];
    char hostfmt[96];                 /* "X-Yun-Host: ID" */
    struct hclient *hc[URLS_MAX + 1]; /* the list, then a leader named by a reply */
    size_t n;                         /* in the list */
    size_t cur;                       /* index into hc (n = the named leader) */
    struct pev *ring;
    size_t cap, head, count;
    uint64_t next_seq, acked, dropped, reconcile_seq;
    struct hclient_req *inflight;
    struct event *timer;
    int backoff_ms;
};

static struct pev *at(struct agent_push *p, size_t i)
{
    return &p->ring[(p->head + i) % p->cap];
}

static void pop(struct agent_push *p)
{
    struct pev *e = at(p, 0);
    if (e->seq == p->reconcile_seq)
        p->reconcile_seq = 0;
    free(e->type);
    json_decref(e->data);
    memset(e, 0, sizeof *e);
    p->head = (p->head + 1) % p->cap;
    p->count--;
}

static int grow(struct agent_push *p)
{
    size_t ncap = p->cap ? p->cap * 2 : 64;
    if (ncap > AGENT_PUSH_QUEUE_MAX)
        ncap = AGENT_PUSH_QUEUE_MAX;
    if (ncap <= p->cap)
        return -1;
    struct pev *r = calloc(ncap, sizeof *r);
    if (!r)
        return -1;
    for (size_t i = 0; i < p->count; i++)
        r[i] = *at(p, i);
    free(p->ring);
    p->ring = r;
    p->cap = ncap;
    p->head = 0;
    return 0;
}

static void push_one(struct agent_push *p, const char *type, json_t *data)
{
    if (p->count == p->cap && grow(p) < 0) {
        pop(p);
        if (p->dropped++ % 10000 == 0)
            log_warn("events: the queue to the controller is full (%d): the oldest are dropped "
                     "(%llu so far); the controller will reconcile",
                     AGENT_PUSH_QUEUE_MAX, (unsigned long long)p->dropped);
        if (!p->reconcile_seq) {
            pop(p);
            struct pev *r = at(p, p->count++);
            r->seq = p->reconcile_seq = ++p->next_seq;
            r->type = strdup("host.reconcile");
            r->data = json_object();
        }
    }
    struct pev *e = at(p, p->count++);
    e->seq = ++p->next_seq;
    e->type = strdup(type);
    e->data = json_incref(data);
    if (!e->type || !e->data) {
        free(e->type);
        json_decref(e->data);
        e->type = strdup("host.reconcile");
        e->data = json_object();
    }
}

static void arm(struct agent_push *p, int ms)
{
    if (p->inflight || evtimer_pending(p->timer, NULL))
        return;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

static void on_event(void *ctx, const char *type, json_t *ev)
{
    struct agent_push *p = ctx;
    push_one(p, type, ev);
    if (!p->backoff_ms)
        arm(p, 0);
}

static void failed(struct agent_push *p, const char *why)
{
    log_warn("events: %s; %zu events wait", why, p->count);
    if (p->cur == p->n) { /* a named leader that failed: back to the list */
        hclient_free(p->hc[p->n]);
        p->hc[p->n] = NULL;
        p->cur = 0;
    } else {
        p->cur = (p->cur + 1) % p->n;
    }
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (p->backoff_ms > BACKOFF_MAX_MS)
        p->backoff_ms = BACKOFF_MAX_MS;
    arm(p, p->backoff_ms);
}

/* A not_leader reply naming the leader: send there next. */
static bool follow_leader(struct agent_push *p, json_t *reply)
{
    const char *url = json_string_value(json_object_get(json_object_get(reply, "error"), "leader"));
    if (!url)
        return false;
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(hclient_url(p->hc[i]), url)) {
            p->cur = i;
            return true;
        }
    if (p->hc[p->n] && !strcmp(hclient_url(p->hc[p->n]), url)) {
        p->cur = p->n;
        return true;
    }
    struct hclient *h = hclient_new(p->base, url);
    if (!h) {
        log_warn("events: a leader URL that is not usable: %.200s", url);
        return false;
    }
    hclient_free(p->hc[p->n]);
    p->hc[p->n] = h;
    p->cur = p->n;
    return true;
}

static void on_reply(void *ctx, int status, json_t *reply, const struct yerr *err)
{
    struct agent_push *p = ctx;
    p->inflight = NULL;
    if (err) {
        failed(p, err->message);
        return;
    }
    json_t *ack = json_object_get(reply, "ack");
    if (status == 200 && json_is_integer(ack) && json_integer_value(ack) >= 0) {
        uint64_t a = (uint64_t)json_integer_value(ack);
        while (p->count && at(p, 0)->seq <= a)
            pop(p);
        if (a > p->acked)
            p->acked = a;
        p->backoff_ms = 0;
        if (p->count)
            arm(p, 0);
        return;
    }
    if (status == 503 && follow_leader(p, reply)) {
        log_info("events: sending to the leader %s", hclient_url(p->hc[p->cur]));
        arm(p, 0);
        return;
    }
    struct yerr e = {0};
    if (hclient_reply_error(status, reply, &e) == 0)
        yerr_set(&e, YE_BAD_GATEWAY, "HTTP %d without an ack", status);
    yerr_wrap(&e, "%s: ", hclient_url(p->hc[p->cur]));
    failed(p, e.message);
}

static void send_batch(evutil_socket_t fd, short what, void *arg)
{
    struct agent_push *p = arg;
    if (p->inflight || !p->count || !p->credential[0])
        return;
    json_t *evs = json_array();
    size_t n = p->count < AGENT_PUSH_BATCH_MAX ? p->count : AGENT_PUSH_BATCH_MAX;
    for (size_t i = 0; evs && i < n; i++) {
        struct pev *e = at(p, i);
        json_array_append_new(evs, json_pack("{s:I,s:s,s:O}", "seq", (json_int_t)e->seq, "type",
                                             e->type, "data", e->data));
    }
    json_t *body = json_pack("{s:s,s:o}", "run", agent_run_id(), "events", evs);
    if (!body) {
        failed(p, "out of memory");
        return;
    }
    p->inflight = hclient_request(p->hc[p->cur], "POST", "/v1/cluster/events", body, p->credential,
                                  p->hostfmt, SEND_TIMEOUT, on_reply, p);
}

struct agent_push *agent_push_new(struct event_base *base, struct agent *local, const char *host_id,
                                  const char *credential, const char *const urls[], size_t n)
{
    struct agent_push *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base;
    p->local = local;
    for (size_t i = 0; i < n && p->n < URLS_MAX; i++) {
        struct hclient *h = hclient_new(base, urls[i]);
        if (h)
            p->hc[p->n++] = h;
        else
            log_warn("events: controller URL %.200s is not usable (http://ADDR:PORT)", urls[i]);
    }
    p->timer = evtimer_new(base, send_batch, p);
    if (!p->n || !p->timer || agent_subscribe(local, on_event, p) < 0) {
        if (p->timer)
            event_free(p->timer);
        for (size_t i = 0; i < p->n; i++)
            hclient_free(p->hc[i]);
        free(p);
        return NULL;
    }
    agent_push_set_credential(p, host_id, credential);
    return p;
}

void agent_push_set_credential(struct agent_push *p, const char *host_id, const char *credential)
{
    snprintf(p->host_id, sizeof p->host_id, "%s", host_id ? host_id : "");
    snprintf(p->credential, sizeof p->credential, "%s", credential ? credential : "");
    snprintf(p->hostfmt, sizeof p->hostfmt, "X-Yun-Host: %s", p->host_id);
    if (p->count)
        arm(p, 0);
}

void agent_push_free(struct agent_push *p)
{
    if (!p)
        return;
    struct agent *a = p->local;
    for (int i = 0; i < a->nsubs; i++)
        if (a->subs[i].fn == on_event && a->subs[i].ctx == p) {
            memmove(&a->subs[i], &a->subs[i + 1], (size_t)(a->nsubs - i - 1) * sizeof a->subs[0]);
            a->nsubs--;
            break;
        }
    for (size_t i = 0; i <= p->n; i++)
        hclient_free(p->hc[i]); /* the batch in flight goes with its client */
    while (p->count)
        pop(p);
    free(p->ring);
    event_free(p->timer);
    free(p);
}

size_t agent_push_queued(const struct agent_push *p)
{
    return p->count;
}

uint64_t agent_push_acked(const struct agent_push *p)
{
    return p->acked;
}

uint64_t agent_push_dropped(const struct agent_push *p)
{
    return p->dropped;
}

const char *agent_push_url(const struct agent_push *p)
{
    return p->hc[p->cur] ? hclient_url(p->hc[p->cur]) : "";
}
