/*
 * hclient.c - the asynchronous HTTP/1.1 JSON client (see hclient.h): the
 * connection pool, one request's life (sent, answered or failed, timed out,
 * cancelled) and its delivery.
 *
 * evhttp calls our callbacks from deep inside its connection code, and
 * sometimes synchronously (a cancel resets the connection and fails the
 * request in place). So nothing user-visible runs there: the evhttp
 * callbacks only record the outcome and make the request's own event
 * active; that event delivers from a clean stack. The same event is the
 * deadline timer.
 */
#include "lib/hclient.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVHTTP_IDLE_TIMEOUT_S (24 * 3600) /* our deadlines are the timers */

struct hconn {
    struct evhttp_connection *ev;
    int inflight;
};

struct hclient {
    struct event_base *base;
    char url[256];
    char host[64];    /* numeric */
    char hosthdr[80]; /* Host: header */
    char prefix[128];
    int port;
    struct hconn conns[HCLIENT_MAX_CONNS];
    struct hclient_req *reqs; /* outstanding, doubly linked */
    int npending;
};

enum rstate { R_SENT, R_DONE };

struct hclient_req {
    struct hclient *h;
    struct hclient_req *prev, *next;
    struct evhttp_request *ev; /* while evhttp has it */
    struct hconn *conn;
    struct event *timer; /* deadline, then delivery */
    enum rstate state;
    bool detaching; /* inside our own evhttp_cancel_request */
    enum evhttp_request_error everr;
    bool have_everr;
    int status;
    json_t *reply;
    struct yerr err;
    bool failed;
    hclient_cb cb;
    void *ctx;
};

int hclient_parse_url(const char *url, char *host, size_t hostlen, int *port, char *prefix,
                      size_t prefixlen, struct yerr *err)
{
    if (!url || strncmp(url, "http://", 7))
        return yerr_set(err, YE_INVALID_ARGUMENT, "URL %s: must begin with http://",
                        url ? url : "(none)");
    const char *p = url + 7, *end;
    char h[64];
    if (*p == '[') {
        end = strchr(p, ']');
        if (!end || (size_t)(end - p - 1) >= sizeof h)
            return yerr_set(err, YE_INVALID_ARGUMENT, "URL %s: bad IPv6 address", url);
        memcpy(h, p + 1, (size_t)(end - p - 1));
        h[end - p - 1] = 0;
        end++;
    } else {
        end = p + strcspn(p, ":/");
        if ((size_t)(end - p) >= sizeof h || end == p)
            return yerr_set(err, YE_INVALID_ARGUMENT, "URL %s: bad host", url);
        memcpy(h, p, (size_t)(end - p));
        h[end - p] = 0;
    }
    unsigned char tmp[16];
    if (!strcmp(h, "localhost"))
        snprintf(h, sizeof h, "127.0.0.1");
    else if (inet_pton(AF_INET, h, tmp) != 1 && inet_pton(AF_INET6, h, tmp) != 1)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "URL %s: the host must be a numeric address (nothing is resolved)", url);
    long pt = 80;
    if (*end == ':') {
        char *e;
        pt = strtol(end + 1, &e, 10);
        if (e == end + 1 || pt < 1 || pt > 65535 || (*e && *e != '/'))
            return yerr_set(err, YE_INVALID_ARGUMENT, "URL %s: bad port", url);
        end = e;
    } else if (*end && *end != '/')
        return yerr_set(err, YE_INVALID_ARGUMENT, "URL %s: bad host", url);
    size_t pl = strlen(end);
    while (pl && end[pl - 1] == '/')
        pl--;
    if (pl >= prefixlen || strlen(h) >= hostlen)
        return yerr_set(err, YE_INVALID_ARGUMENT, "URL %s: too long", url);
    for (size_t i = 0; i < pl; i++)
        if ((unsigned char)end[i] <= 0x20 || (unsigned char)end[i] >= 0x7f || end[i] == '?' ||
            end[i] == '#')
            return yerr_set(err, YE_INVALID_ARGUMENT, "URL %s: bad path", url);
    memcpy(prefix, end, pl);
    prefix[pl] = 0;
    snprintf(host, hostlen, "%s", h);
    *port = (int)pt;
    return 0;
}

struct hclient *hclient_new(struct event_base *base, const char *base_url)
{
    struct hclient *h = calloc(1, sizeof *h);
    struct yerr err = {0};
    if (!h)
        return NULL;
    if (strlen(base_url ? base_url : "") >= sizeof h->url ||
        hclient_parse_url(base_url, h->host, sizeof h->host, &h->port, h->prefix, sizeof h->prefix,
                          &err) < 0) {
        free(h);
        return NULL;
    }
    h->base = base;
    snprintf(h->url, sizeof h->url, "%s", base_url);
    if (strchr(h->host, ':'))
        snprintf(h->hosthdr, sizeof h->hosthdr, "[%s]:%d", h->host, h->port);
    else
        snprintf(h->hosthdr, sizeof h->hosthdr, "%s:%d", h->host, h->port);
    return h;
}

const char *hclient_url(const struct hclient *h)
{
    return h->url;
}

int hclient_pending(const struct hclient *h)
{
    return h->npending;
}

static void unlink_req(struct hclient_req *r)
{
    struct hclient *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else if (h->reqs == r)
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    h->npending--;
}

static void req_free(struct hclient_req *r)
{
    unlink_req(r);
    if (r->conn)
        r->conn->inflight--;
    if (r->timer)
        event_free(r->timer);
    json_decref(r->reply);
    free(r);
}

/* Takes r away from evhttp (its callbacks may run inside, and are ignored). */
static void detach_ev(struct hclient_req *r)
{
    if (!r->ev)
        return;
    struct evhttp_request *ev = r->ev;
    r->detaching = true;
    evhttp_cancel_request(ev);
    r->detaching = false;
    r->ev = NULL;
}

static void finish(struct hclient_req *r)
{
    r->state = R_DONE;
    r->ev = NULL;
    event_del(r->timer);
    event_active(r->timer, EV_TIMEOUT, 0);
}

static void fail(struct hclient_req *r, int status, enum yerr_code code, const char *fmt,
                 const char *detail)
{
    r->failed = true;
    r->status = status;
    yerr_set(&r->err, code, fmt, r->h->url, detail);
}

static const char *everr_name(enum evhttp_request_error e)
{
    switch (e) {
    case EVREQ_HTTP_TIMEOUT:
        return "timed out";
    case EVREQ_HTTP_EOF:
        return "connection closed or refused";
    case EVREQ_HTTP_INVALID_HEADER:
        return "bad reply headers";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "connection error";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "reply too large";
    default:
        return "request failed";
    }
}

static void on_everror(enum evhttp_request_error e, void *arg)
{
    struct hclient_req *r = arg;
    r->everr = e;
    r->have_everr = true;
}

static void on_done(struct evhttp_request *ev, void *arg)
{
    struct hclient_req *r = arg;
    if (r->detaching || r->state == R_DONE)
        return;
    int status = ev ? evhttp_request_get_response_code(ev) : 0;
    if (!ev || status == 0) {
        if (r->have_everr && r->everr == EVREQ_HTTP_DATA_TOO_LONG)
            fail(r, 0, YE_TOO_LARGE, "%s: %s", everr_name(r->everr));
        else if (r->have_everr && r->everr == EVREQ_HTTP_INVALID_HEADER)
            fail(r, 0, YE_BAD_GATEWAY, "%s: %s", everr_name(r->everr));
        else
            fail(r, 0, YE_UNAVAILABLE, "%s: %s",
                 r->have_everr ? everr_name(r->everr)
                               : "no answer (connection refused, reset or closed)");
        finish(r);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(ev);
    size_t n = in ? evbuffer_get_length(in) : 0;
    if (n > HCLIENT_MAX_REPLY) {
        fail(r, status, YE_TOO_LARGE, "%s: %s", "reply over 64 MiB");
    } else if (n == 0) {
        r->status = status;
        r->reply = json_object();
    } else {
        json_error_t je;
        const char *p = (const char *)evbuffer_pullup(in, -1);
        r->reply = p ? json_loadb(p, n, JSON_DECODE_ANY, &je) : NULL;
        r->status = status;
        if (!r->reply) {
            char what[160];
            snprintf(what, sizeof what, "HTTP %d with a reply that is not JSON", status);
            fail(r, status, YE_BAD_GATEWAY, "%s: %s", what);
        }
    }
    finish(r);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hclient_req *r = arg;
    if (r->state != R_DONE) {
        detach_ev(r);
        r->failed = true;
        r->status = 0;
        yerr_set(&r->err, YE_TIMEOUT, "%s: no answer before the deadline", r->h->url);
    }
    hclient_cb cb = r->cb;
    void *ctx = r->ctx;
    int status = r->status;
    json_t *reply = r->failed ? NULL : json_incref(r->reply);
    struct yerr err = r->err;
    bool failed = r->failed;
    req_free(r);
    cb(ctx, status, reply, failed ? &err : NULL);
    json_decref(reply);
}

static struct hconn *pick_conn(struct hclient *h)
{
    struct hconn *best = NULL;
    for (int i = 0; i < HCLIENT_MAX_CONNS; i++) {
        struct hconn *c = &h->conns[i];
        if (c->ev && c->inflight == 0)
            return c;
    }
    for (int i = 0; i < HCLIENT_MAX_CONNS; i++) {
        struct hconn *c = &h->conns[i];
        if (!c->ev) {
            c->ev = evhttp_connection_base_new(h->base, NULL, h->host, (unsigned short)h->port);
            if (!c->ev)
                return NULL;
            evhttp_connection_set_timeout(c->ev, EVHTTP_IDLE_TIMEOUT_S);
            evhttp_connection_set_max_body_size(c->ev, HCLIENT_MAX_REPLY);
            evhttp_connection_set_max_headers_size(c->ev, 64 * 1024);
            evhttp_connection_set_retries(c->ev, 0);
            return c;
        }
        if (!best || c->inflight < best->inflight)
            best = c;
    }
    return best;
}

static int method_of(const char *m, enum evhttp_cmd_type *out)
{
    static const struct {
        const char *name;
        enum evhttp_cmd_type t;
    } tab[] = {{"GET", EVHTTP_REQ_GET},
               {"POST", EVHTTP_REQ_POST},
               {"PUT", EVHTTP_REQ_PUT},
               {"DELETE", EVHTTP_REQ_DELETE},
               {"PATCH", EVHTTP_REQ_PATCH}};
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (m && !strcmp(tab[i].name, m)) {
            *out = tab[i].t;
            return 0;
        }
    return -1;
}

static bool header_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Starts r on a connection; -1 with r->err filled. */
static int start(struct hclient_req *r, const char *method, const char *path, json_t *body,
                 const char *bearer, const char *extra)
{
    struct hclient *h = r->h;
    enum evhttp_cmd_type type;
    if (method_of(method, &type) < 0) {
        fail(r, 0, YE_INVALID_ARGUMENT, "%s: %s", "unknown method");
        return -1;
    }
    if (!path || path[0] != '/' || !header_ok(path) || strchr(path, ' ') ||
        (bearer && !header_ok(bearer)) || (extra && (!header_ok(extra) || !strchr(extra, ':')))) {
        fail(r, 0, YE_INVALID_ARGUMENT, "%s: %s", "bad path or header");
        return -1;
    }
    struct hconn *c = pick_conn(h);
    struct evhttp_request *ev = c ? evhttp_request_new(on_done, r) : NULL;
    if (!ev) {
        fail(r, 0, YE_INTERNAL, "%s: %s", "out of memory");
        return -1;
    }
    evhttp_request_set_error_cb(ev, on_everror);
    struct evkeyvalq *hd = evhttp_request_get_output_headers(ev);
    evhttp_add_header(hd, "Host", h->hosthdr);
    evhttp_add_header(hd, "Accept", "application/json");
    if (bearer) {
        char auth[600];
        snprintf(auth, sizeof auth, "Bearer %s", bearer);
        evhttp_add_header(hd, "Authorization", auth);
    }
    if (extra) {
        char name[128];
        size_t nl = (size_t)(strchr(extra, ':') - extra);
        if (nl == 0 || nl >= sizeof name) {
            evhttp_request_free(ev);
            fail(r, 0, YE_INVALID_ARGUMENT, "%s: %s", "bad extra header");
            return -1;
        }
        memcpy(name, extra, nl);
        name[nl] = 0;
        const char *val = extra + nl + 1;
        while (*val == ' ')
            val++;
        evhttp_add_header(hd, name, val);
    }
    if (body) {
        char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) {
            evhttp_request_free(ev);
            fail(r, 0, YE_INTERNAL, "%s: %s", "cannot encode the body");
            return -1;
        }
        size_t n = strlen(s);
        char len[32];
        snprintf(len, sizeof len, "%zu", n);
        evhttp_add_header(hd, "Content-Type", "application/json");
        evhttp_add_header(hd, "Content-Length", len);
        evbuffer_add(evhttp_request_get_output_buffer(ev), s, n);
        free(s);
    } else if (type == EVHTTP_REQ_POST || type == EVHTTP_REQ_PUT) {
        evhttp_add_header(hd, "Content-Length", "0");
    }
    char full[2048];
    if ((size_t)snprintf(full, sizeof full, "%s%s", h->prefix, path) >= sizeof full) {
        evhttp_request_free(ev);
        fail(r, 0, YE_INVALID_ARGUMENT, "%s: %s", "path too long");
        return -1;
    }
    r->ev = ev;
    r->conn = c;
    c->inflight++;
    if (evhttp_make_request(c->ev, ev, type, full) < 0) {
        /* evhttp freed ev */
        r->ev = NULL;
        fail(r, 0, YE_UNAVAILABLE, "%s: %s", "cannot send the request");
        return -1;
    }
    return 0;
}

struct hclient_req *hclient_request(struct hclient *h, const char *method, const char *path,
                                    json_t *body, const char *bearer, const char *extra_header,
                                    int timeout_ms, hclient_cb cb, void *ctx)
{
    struct hclient_req *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(body);
        log_err("hclient: out of memory");
        abort(); /* a handle is promised; nothing sensible is left */
    }
    r->h = h;
    r->cb = cb;
    r->ctx = ctx;
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->npending++;
    r->timer = evtimer_new(h->base, on_timer, r);
    if (!r->timer) {
        log_err("hclient: out of memory");
        abort();
    }
    if (start(r, method, path, body, bearer, extra_header) < 0) {
        r->state = R_DONE;
        event_active(r->timer, EV_TIMEOUT, 0);
    } else if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(r->timer, &tv);
    }
    json_decref(body);
    return r;
}

void hclient_cancel(struct hclient_req *r)
{
    if (!r)
        return;
    detach_ev(r);
    req_free(r);
}

void hclient_free(struct hclient *h)
{
    if (!h)
        return;
    while (h->reqs)
        hclient_cancel(h->reqs);
    for (int i = 0; i < HCLIENT_MAX_CONNS; i++)
        if (h->conns[i].ev)
            evhttp_connection_free(h->conns[i].ev);
    free(h);
}

static enum yerr_code code_of_status(int status)
{
    switch (status) {
    case 400:
        return YE_BAD_REQUEST;
    case 401:
    case 403:
        return YE_UNAUTHORIZED;
    case 404:
        return YE_NOT_FOUND;
    case 405:
        return YE_METHOD_NOT_ALLOWED;
    case 409:
        return YE_CONFLICT;
    case 413:
        return YE_TOO_LARGE;
    case 501:
        return YE_NOT_IMPLEMENTED;
    case 502:
        return YE_BAD_GATEWAY;
    case 503:
        return YE_UNAVAILABLE;
    case 504:
        return YE_TIMEOUT;
    default:
        return status >= 500 ? YE_INTERNAL : YE_BAD_REQUEST;
    }
}

int hclient_reply_error(int status, json_t *reply, struct yerr *err)
{
    if (status >= 200 && status < 300)
        return 0;
    json_t *e = json_object_get(reply, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    enum yerr_code c;
    if (!code || yerr_code_parse(code, &c) < 0)
        c = code_of_status(status);
    if (msg)
        return yerr_set(err, c, "%s", msg);
    return yerr_set(err, c, "HTTP %d", status);
}
