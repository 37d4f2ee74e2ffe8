/*
 * httpd.c - yun's HTTP/1.1 server, per connection: parsing requests on
 * bufferevents, the header and body limits, keep-alive, parked requests, and
 * writing replies. Listening and the connection cap are httpd_accept.c's.
 *
 * It replaces evhttp because evhttp (libevent 2.1) buffers a body before any
 * limit of ours can refuse it, has no connection cap, spins on accept() when
 * descriptors run out, and answers unknown methods with HTML itself.
 */
#include "lib/httpd.h"
#include "lib/httpd_int.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/yerr.h"

#include <ctype.h>
#include <errno.h>
#include <sys/queue.h> /* TAILQ_*, before libevent defines its own */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK_LINE_MAX  1024       /* a chunk-size line, extensions included */
#define DRAIN_MAX       (4u << 20) /* bytes discarded after an error reply */
#define DRAIN_TIMEOUT_S 2
#define METHOD_NAME_MAX 24

enum cstate {
    C_HEAD,       /* request line and headers */
    C_BODY,       /* Content-Length body */
    C_CHUNK_SIZE, /* chunked body: size line */
    C_CHUNK_DATA, /* chunked body: data */
    C_CHUNK_CRLF, /* chunked body: CRLF after data */
    C_TRAILER,    /* chunked body: trailer lines */
    C_DISPATCHED, /* the callback has the request */
    C_CLOSING,    /* writing the last reply */
    C_DRAIN,      /* reply written, write side shut; dropping input */
};

struct hconn;

struct hreq {
    struct hconn *c;
    int method;
    char method_name[METHOD_NAME_MAX];
    struct evhttp_uri *uri;
    int minor; /* HTTP/1.minor */
    bool keep_alive;
    struct evkeyvalq in, out;
    struct evbuffer *body;
    hreq_cb closecb;
    void *closearg;
    bool have_line; /* request line read */
    bool sent;      /* replied to */
};

struct hconn {
    struct hconn *next, *prev;
    struct httpd *h;
    struct listener *l;
    struct bufferevent *bev;
    struct event *resume; /* processes pipelined input after a later reply */
    struct event *drain;  /* C_DRAIN: reads and drops, straight from the socket */
    enum cstate st;
    struct hreq *req;
    struct hreq *finished; /* replied to, freed from the loop (on_resume) */
    size_t head_bytes;     /* request line, headers and trailers read */
    size_t body_left;      /* of the Content-Length body or the current chunk */
    size_t drained;
    bool peer_eof; /* client shut its side; close once the output is out */
};

static const struct timeval *tv_of(int s, struct timeval *tv)
{
    tv->tv_sec = s;
    tv->tv_usec = 0;
    return tv;
}

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *text;
    } phrases[] = {{100, "Continue"},
                   {200, "OK"},
                   {201, "Created"},
                   {202, "Accepted"},
                   {204, "No Content"},
                   {400, "Bad Request"},
                   {401, "Unauthorized"},
                   {403, "Forbidden"},
                   {404, "Not Found"},
                   {405, "Method Not Allowed"},
                   {409, "Conflict"},
                   {413, "Payload Too Large"},
                   {422, "Unprocessable Entity"},
                   {431, "Request Header Fields Too Large"},
                   {500, "Internal Server Error"},
                   {501, "Not Implemented"},
                   {502, "Bad Gateway"},
                   {503, "Service Unavailable"},
                   {504, "Gateway Timeout"},
                   {505, "HTTP Version Not Supported"},
                   {507, "Insufficient Storage"}};
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
        if (phrases[i].status == status)
            return phrases[i].text;
    return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

static int method_of(const char *m)
{
    static const struct {
        const char *name;
        int cmd;
    } methods[] = {
        {"GET", EVHTTP_REQ_GET},       {"POST", EVHTTP_REQ_POST},
        {"HEAD", EVHTTP_REQ_HEAD},     {"PUT", EVHTTP_REQ_PUT},
        {"DELETE", EVHTTP_REQ_DELETE}, {"OPTIONS", EVHTTP_REQ_OPTIONS},
        {"TRACE", EVHTTP_REQ_TRACE},   {"CONNECT", EVHTTP_REQ_CONNECT},
        {"PATCH", EVHTTP_REQ_PATCH},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (!strcmp(methods[i].name, m))
            return methods[i].cmd;
    return 0;
}

/* ---- connections ---- */

static void req_free(struct hreq *r)
{
    if (!r)
        return;
    evhttp_clear_headers(&r->in);
    evhttp_clear_headers(&r->out);
    if (r->body)
        evbuffer_free(r->body);
    if (r->uri)
        evhttp_uri_free(r->uri);
    free(r);
}

static void conn_free(struct hconn *c)
{
    struct hreq *r = c->req;
    c->req = NULL;
    if (r && r->closecb)
        r->closecb(r, r->closearg);
    req_free(r);
    req_free(c->finished);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->h->nconns--;
    event_free(c->resume);
    if (c->drain)
        event_free(c->drain);
    if (c->bev)
        bufferevent_free(c->bev);
    free(c);
}

static void set_timeouts(struct hconn *c, bool reading)
{
    struct timeval rt, wt;
    bufferevent_set_timeouts(c->bev, reading ? tv_of(c->h->lim.timeout_s, &rt) : NULL,
                             tv_of(c->h->lim.timeout_s, &wt));
}

/* The last reply is queued: once it is out, the write side is shut and the
 * rest of what the client sends is read and dropped for a moment, so the
 * reply is not lost to a reset caused by unread data. */
static void start_closing(struct hconn *c)
{
    c->st = C_CLOSING;
    set_timeouts(c, true);
}

/* Reads what the client still sends into a scratch buffer and drops it
 * (no buffering, so a client sending a huge body costs nothing), until
 * EOF, a quiet DRAIN_TIMEOUT_S, or DRAIN_MAX bytes. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct hconn *c = arg;
    static char scratch[16384];
    if (what & EV_TIMEOUT) {
        conn_free(c);
        return;
    }
    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0 || (c->drained += (size_t)n) > DRAIN_MAX) {
            conn_free(c);
            return;
        }
    }
}

static void start_drain(struct hconn *c)
{
    c->st = C_DRAIN;
    int fd = bufferevent_getfd(c->bev);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    shutdown(fd, SHUT_WR);
    c->drain = event_new(c->h->base, fd, EV_READ | EV_PERSIST, on_drain, c);
    struct timeval tv;
    if (!c->drain || event_add(c->drain, tv_of(DRAIN_TIMEOUT_S, &tv)) < 0)
        conn_free(c);
}

/* A reply httpd makes itself (bad request, limits): JSON error, then close. */
static void send_error(struct hconn *c, enum yerr_code ec, const char *msg)
{
    int status = yerr_code_status(ec);
    const char *code = yerr_code_name(ec);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char body[512];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", code,
                     msg);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n",
                        status, reason_phrase(status), n);
    evbuffer_add(out, body, (size_t)n);
    req_free(c->req);
    c->req = NULL;
    start_closing(c);
}

bool httpd_has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    while (v && *v) {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t'))
            m--;
        if (m == tl && !strncasecmp(v, tok, tl))
            return true;
        v += n;
    }
    return false;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* "METHOD SP target SP HTTP/1.x". 0, or -1 after an error reply. */
static int parse_request_line(struct hconn *c, char *line)
{
    struct hreq *r = c->req;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ')) {
        send_error(c, YE_BAD_REQUEST, "malformed request line");
        return -1;
    }
    *sp1 = *sp2 = 0;
    const char *version = sp2 + 1, *target = sp1 + 1;
    size_t ml = strlen(line);
    bool token = ml > 0;
    for (size_t i = 0; i < ml; i++)
        token = token && is_tchar((unsigned char)line[i]);
    if (!token || ml >= sizeof(r->method_name)) {
        send_error(c, YE_BAD_REQUEST, "malformed request method");
        return -1;
    }
    if (!strcmp(version, "HTTP/1.1"))
        r->minor = 1;
    else if (!strcmp(version, "HTTP/1.0"))
        r->minor = 0;
    else if (!strncmp(version, "HTTP/", 5)) {
        send_error(c, YE_HTTP_VERSION, "only HTTP/1.0 and HTTP/1.1 are served");
        return -1;
    } else {
        send_error(c, YE_BAD_REQUEST, "malformed request line");
        return -1;
    }
    memcpy(r->method_name, line, ml + 1);
    r->method = method_of(line);
    r->uri = *target ? evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT) : NULL;
    if (!r->uri) {
        send_error(c, YE_BAD_REQUEST, "malformed request target");
        return -1;
    }
    r->have_line = true;
    return 0;
}

/* "Name: value" into r->in. 0, or -1 after an error reply. */
static int parse_header(struct hconn *c, char *line)
{
    char *colon = strchr(line, ':');
    bool ok = colon && colon > line;
    for (char *p = line; ok && p < colon; p++)
        ok = is_tchar((unsigned char)*p);
    if (!ok) {
        send_error(c, YE_BAD_REQUEST, "malformed header line");
        return -1;
    }
    *colon = 0;
    char *v = colon + 1;
    v += strspn(v, " \t");
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        v[--n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 && v[i] != '\t') {
            send_error(c, YE_BAD_REQUEST, "control character in a header value");
            return -1;
        }
    if (evhttp_add_header(&c->req->in, line, v) != 0) {
        send_error(c, YE_BAD_REQUEST, "malformed header line");
        return -1;
    }
    return 0;
}

static int header_count(struct evkeyvalq *q, const char *key)
{
    int n = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, q, next)
    n += !strcasecmp(kv->key, key);
    return n;
}

/* Headers are complete: decide on keep-alive and the body. 0, or -1 after an
 * error reply. */
static int headers_done(struct hconn *c)
{
    struct hreq *r = c->req;
    const char *conn = evhttp_find_header(&r->in, "Connection");
    r->keep_alive =
        r->minor == 1 ? !httpd_has_token(conn, "close") : httpd_has_token(conn, "keep-alive");
    const char *te = evhttp_find_header(&r->in, "Transfer-Encoding");
    const char *cl = evhttp_find_header(&r->in, "Content-Length");
    if (te && cl) {
        send_error(c, YE_BAD_REQUEST, "both Content-Length and Transfer-Encoding");
        return -1;
    }
    if (te && (strcasecmp(te, "chunked") || header_count(&r->in, "Transfer-Encoding") > 1)) {
        send_error(c, YE_NOT_IMPLEMENTED, "only the chunked transfer coding is supported");
        return -1;
    }
    uint64_t len = 0;
    if (cl &&
        (header_count(&r->in, "Content-Length") > 1 || parse_u64(cl, 0, UINT64_MAX, &len) < 0)) {
        send_error(c, YE_BAD_REQUEST, "malformed Content-Length");
        return -1;
    }
    /* Refused from the header alone, before a byte of the body is read. */
    if (len > c->h->lim.max_body) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body of %llu bytes exceeds the limit of %zu",
                 (unsigned long long)len, c->h->lim.max_body);
        send_error(c, YE_TOO_LARGE, msg);
        return -1;
    }
    r->body = evbuffer_new();
    if (!r->body) {
        send_error(c, YE_INTERNAL, "out of memory");
        return -1;
    }
    const char *expect = evhttp_find_header(&r->in, "Expect");
    if (expect && r->minor == 1 && !strcasecmp(expect, "100-continue") && (te || len > 0))
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    if (te) {
        c->st = C_CHUNK_SIZE;
    } else {
        c->body_left = (size_t)len;
        c->st = C_BODY;
    }
    return 0;
}

static void dispatch(struct hconn *c)
{
    c->st = C_DISPATCHED;
    /* No read timeout while the request is with the callback: a parked
     * long-poll may take minutes. EOF is still noticed. */
    set_timeouts(c, false);
    c->l->cb(c->req, c->l->arg);
}

/* One line of the head or the trailer; NULL when more input is needed or
 * the header limit was passed (then the error reply is on its way). */
static char *read_head_line(struct hconn *c, struct evbuffer *in)
{
    size_t before = evbuffer_get_length(in);
    char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
    if (line)
        c->head_bytes += before - evbuffer_get_length(in);
    if (c->head_bytes + (line ? 0 : before) > c->h->lim.max_header) {
        free(line);
        send_error(c, YE_HEADERS_TOO_LARGE, "request line and headers exceed 64 KiB");
        return NULL;
    }
    return line;
}

/* Moves up to body_left bytes of input into the body. */
static void take_body(struct hconn *c, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    if (n > c->body_left)
        n = c->body_left;
    if (n) {
        evbuffer_remove_buffer(in, c->req->body, n);
        c->body_left -= n;
    }
}

/* Runs the state machine over buffered input, as far as it goes. */
static void process(struct hconn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char *line;
    for (;;) {
        switch (c->st) {
        case C_HEAD:
            if (!c->req) {
                if (evbuffer_get_length(in) == 0)
                    return;
                c->req = calloc(1, sizeof(*c->req));
                if (!c->req) {
                    send_error(c, YE_INTERNAL, "out of memory");
                    return;
                }
                c->req->c = c;
                TAILQ_INIT(&c->req->in);
                TAILQ_INIT(&c->req->out);
                c->head_bytes = 0;
                set_timeouts(c, true);
            }
            line = read_head_line(c, in);
            if (!line)
                return;
            if (!c->req->have_line) {
                /* empty lines before a request are allowed (RFC 9112 2.2) */
                if (*line && parse_request_line(c, line) < 0) {
                    free(line);
                    return;
                }
            } else if (!*line) {
                if (headers_done(c) < 0) {
                    free(line);
                    return;
                }
            } else if (*line == ' ' || *line == '\t') {
                send_error(c, YE_BAD_REQUEST, "folded header lines are not accepted");
            } else {
                parse_header(c, line);
            }
            free(line);
            break;
        case C_BODY:
            take_body(c, in);
            if (c->body_left)
                return;
            dispatch(c);
            break;
        case C_CHUNK_SIZE: {
            line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
            if (!line) {
                if (evbuffer_get_length(in) > CHUNK_LINE_MAX)
                    send_error(c, YE_BAD_REQUEST, "malformed chunk size");
                else
                    return;
                break;
            }
            char *end;
            errno = 0;
            unsigned long long sz = strtoull(line, &end, 16);
            bool ok = end != line && isxdigit((unsigned char)line[0]) && errno == 0 &&
                      (*end == 0 || *end == ';' || *end == ' ' || *end == '\t');
            free(line);
            size_t have = evbuffer_get_length(c->req->body);
            if (!ok)
                send_error(c, YE_BAD_REQUEST, "malformed chunk size");
            else if (sz > c->h->lim.max_body - have) {
                char msg[128];
                snprintf(msg, sizeof(msg), "request body exceeds the limit of %zu bytes",
                         c->h->lim.max_body);
                send_error(c, YE_TOO_LARGE, msg);
            } else if (sz == 0) {
                c->st = C_TRAILER;
            } else {
                c->body_left = (size_t)sz;
                c->st = C_CHUNK_DATA;
            }
            break;
        }
        case C_CHUNK_DATA:
            take_body(c, in);
            if (c->body_left)
                return;
            c->st = C_CHUNK_CRLF;
            break;
        case C_CHUNK_CRLF:
            line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
            if (!line) {
                if (evbuffer_get_length(in) >= 2)
                    send_error(c, YE_BAD_REQUEST, "chunk data longer than its size");
                else
                    return;
                break;
            }
            if (*line)
                send_error(c, YE_BAD_REQUEST, "chunk data longer than its size");
            else
                c->st = C_CHUNK_SIZE;
            free(line);
            break;
        case C_TRAILER:
            line = read_head_line(c, in);
            if (!line)
                return;
            if (!*line)
                dispatch(c);
            free(line);
            break;
        case C_DISPATCHED:
        case C_CLOSING:
            return;
        case C_DRAIN:
            return;
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    process(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct hconn *c = arg;
    if (c->st != C_CLOSING)
        return;
    if (c->peer_eof)
        conn_free(c);
    else
        start_drain(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct hconn *c = arg;
    bool flushing = (what & BEV_EVENT_EOF) && !c->req && c->st != C_DRAIN &&
                    evbuffer_get_length(bufferevent_get_output(bev)) > 0;
    if (flushing) {
        /* The client shut its side after its last request: let the reply
         * out, then close. */
        c->peer_eof = true;
        c->st = C_CLOSING;
        bufferevent_disable(bev, EV_READ);
        return;
    }
    conn_free(c);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct hconn *c = arg;
    req_free(c->finished);
    c->finished = NULL;
    process(c);
}

/* ---- replies ---- */

int hreq_method(const struct hreq *r)
{
    return r->method;
}

const char *hreq_method_name(const struct hreq *r)
{
    return r->method_name;
}

const char *hreq_path(const struct hreq *r)
{
    const char *p = evhttp_uri_get_path(r->uri);
    return p && *p ? p : "/";
}

const char *hreq_query(const struct hreq *r)
{
    return evhttp_uri_get_query(r->uri);
}

struct evkeyvalq *hreq_input_headers(struct hreq *r)
{
    return &r->in;
}

struct evkeyvalq *hreq_output_headers(struct hreq *r)
{
    return &r->out;
}

struct evbuffer *hreq_body(struct hreq *r)
{
    return r->body;
}

void hreq_set_closecb(struct hreq *r, hreq_cb cb, void *arg)
{
    r->closecb = cb;
    r->closearg = arg;
}

void hreq_send(struct hreq *r, int status, struct evbuffer *body)
{
    struct hconn *c = r->c;
    if (r->sent) {
        log_err("API: a second reply to %s %s dropped", r->method_name, hreq_path(r));
        return;
    }
    r->sent = true;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t blen = body ? evbuffer_get_length(body) : 0;
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", r->minor, status, reason_phrase(status));
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &r->out, next)
    evbuffer_add_printf(out, "%s: %s\r\n", kv->key, kv->value);
    evbuffer_add_printf(out, "Content-Length: %zu\r\n", blen);
    if (!r->keep_alive)
        evbuffer_add_printf(out, "Connection: close\r\n");
    else if (r->minor == 0)
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    evbuffer_add(out, "\r\n", 2);
    if (blen && r->method != EVHTTP_REQ_HEAD)
        evbuffer_add_buffer(out, body);
    /* The caller may still touch r after its reply (as evhttp allowed, and
     * the route code does: clearing a close callback), so r is freed from
     * the loop, which then handles a pipelined request that may wait. */
    r->closecb = NULL;
    req_free(c->finished);
    c->finished = r;
    c->req = NULL;
    event_active(c->resume, EV_TIMEOUT, 0);
    if (!r->keep_alive) {
        start_closing(c);
        return;
    }
    c->st = C_HEAD;
    set_timeouts(c, true);
}

struct bufferevent *hreq_upgrade(struct hreq *r, const char *protocol)
{
    struct hconn *c = r->c;
    if (r->sent || c->st != C_DISPATCHED || evbuffer_get_length(r->body) > 0)
        return NULL;
    struct bufferevent *bev = c->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\n", protocol);
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &r->out, next)
    evbuffer_add_printf(out, "%s: %s\r\n", kv->key, kv->value);
    evbuffer_add_printf(out, "Connection: Upgrade\r\n\r\n");
    /* The connection forgets its bufferevent and goes; the request with it
     * (no close callback: the caller has the connection now). */
    r->closecb = NULL;
    c->bev = NULL;
    conn_free(c);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    bufferevent_set_timeouts(bev, NULL, NULL);
    bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
    return bev;
}

/* ---- connections made by the listeners (httpd_accept.c) ---- */

void httpd_conn_open(struct listener *l, int fd)
{
    struct httpd *h = l->h;
    struct hconn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = c ? bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    struct event *resume = bev ? event_new(h->base, -1, 0, on_resume, c) : NULL;
    if (!resume) {
        if (bev)
            bufferevent_free(bev);
        else
            close(fd);
        free(c);
        log_err("API: out of memory accepting a connection");
        return;
    }
    c->h = h;
    c->l = l;
    c->bev = bev;
    /* a large reply (GET /v1/vms: megabytes) goes in a few writes, not
     * libevent's default of 16 KiB a loop turn (each turn also runs
     * whatever else is due) */
    bufferevent_set_max_single_write(bev, 256 * 1024);
    c->resume = resume;
    c->st = C_HEAD;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    /* Input is bounded: past this much unprocessed data the socket is not
     * read (bodies move on into the request as they arrive). */
    bufferevent_setwatermark(bev, EV_READ, 0, h->lim.max_header + 16 * 1024);
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    set_timeouts(c, true);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void httpd_conn_close_all(struct httpd *h)
{
    while (h->conns)
        conn_free(h->conns);
}
