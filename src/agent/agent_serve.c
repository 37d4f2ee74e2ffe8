/*
 * agent_serve.c - the agent API server (see agent_serve.h): authentication,
 * the bodies' checks, the idempotency cache by call id (running calls with
 * the requests waiting on them, finished answers kept as the bytes sent),
 * and progress turned into "call.progress" events; GET
 * /agent/v1/console/{vm} upgraded to the VM's live console
 * (console_bridge.c).
 */
#include "agent/agent_serve.h"
#include "agent/console_bridge.h"
#include "lib/httpd.h"
#include "lib/log.h"
#include "lib/sha256.h"
#include "lib/version.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ID_MAX       64
#define KEEP_MS      (10 * 60 * 1000)
#define KEEP_ENTRIES 4096
#define KEEP_BYTES   (64u << 20)
#define RUNNING_MAX  1024
#define PROGRESS_MS  500
#define WAITERS_MAX  16
#define MAX_BODY     (8u << 20)
#define DEADLINE_MAX (48LL * 3600 * 1000)

struct waiter {
    struct waiter *next;
    struct entry *e;
    struct hreq *req;
};

struct entry {
    struct entry *prev, *next; /* oldest first */
    struct agent_serve *s;
    char id[ID_MAX + 1];
    bool running;
    uint64_t call_id;
    struct waiter *waiters;
    int nwaiters;
    int status;
    char *text; /* the answer sent */
    size_t len;
    int64_t done_ms;
    int64_t progress_ms;
    struct event *deadline; /* the caller gives up then: the verb is asked to stop */
};

struct agent_serve {
    struct event_base *base;
    struct agent *local;
    struct httpd *http;
    char credential[256];
    char host_id[64];
    char run[65];
    struct entry *head, *tail;
    int nentries, nrunning;
    size_t bytes;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_text(struct hreq *req, int status, const char *text, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, text, len);
    evhttp_add_header(hreq_output_headers(req), "Content-Type", "application/json");
    hreq_send(req, status, b);
    if (b)
        evbuffer_free(b);
}

static void send_json(struct hreq *req, int status, json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!t) {
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        send_text(req, 500, oom, sizeof oom - 1);
        return;
    }
    send_text(req, status, t, strlen(t));
    free(t);
}

static void send_error(struct hreq *req, enum yerr_code code, const char *msg)
{
    send_json(req, yerr_code_status(code),
              json_pack("{s:{s:s,s:s}}", "error", "code", yerr_code_name(code), "message", msg));
}

/* ---- the cache ---- */

static void entry_unlink_free(struct entry *e)
{
    struct agent_serve *s = e->s;
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
    s->nentries--;
    if (e->running)
        s->nrunning--;
    s->bytes -= e->len;
    for (struct waiter *w = e->waiters, *n; w; w = n) {
        n = w->next;
        hreq_set_closecb(w->req, NULL, NULL);
        free(w);
    }
    if (e->deadline)
        event_free(e->deadline);
    free(e->text);
    free(e);
}

/* Drops finished answers past their time or over the bounds, oldest first. */
static void trim(struct agent_serve *s)
{
    int64_t now = mono_ms();
    for (struct entry *e = s->head, *n; e; e = n) {
        n = e->next;
        if (e->running)
            continue;
        if (now - e->done_ms > KEEP_MS || s->nentries > KEEP_ENTRIES || s->bytes > KEEP_BYTES)
            entry_unlink_free(e);
        else if (s->nentries <= KEEP_ENTRIES && s->bytes <= KEEP_BYTES)
            break; /* the rest are younger */
    }
}

static struct entry *find(struct agent_serve *s, const char *id)
{
    for (struct entry *e = s->tail; e; e = e->prev)
        if (!strcmp(e->id, id))
            return e;
    return NULL;
}

static void waiter_closed(struct hreq *req, void *arg)
{
    struct waiter *w = arg;
    struct entry *e = w->e;
    for (struct waiter **pp = &e->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            e->nwaiters--;
            free(w);
            return;
        }
}

static void add_waiter(struct entry *e, struct hreq *req)
{
    if (e->nwaiters >= WAITERS_MAX) {
        send_error(req, YE_UNAVAILABLE, "agent: too many requests wait on this call");
        return;
    }
    struct waiter *w = calloc(1, sizeof *w);
    if (!w) {
        send_error(req, YE_INTERNAL, "agent: out of memory");
        return;
    }
    w->e = e;
    w->req = req;
    w->next = e->waiters;
    e->waiters = w;
    e->nwaiters++;
    hreq_set_closecb(req, waiter_closed, w);
}

static void call_done(void *ctx, json_t *result, const struct yerr *err)
{
    struct entry *e = ctx;
    struct agent_serve *s = e->s;
    json_t *j =
        err ? json_pack("{s:{s:s,s:s}}", "error", "code", yerr_name(err), "message", err->message)
            : json_pack("{s:O}", "result", result);
    e->status = err ? yerr_status(err) : 200;
    e->text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!e->text) {
        e->status = 500;
        e->text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"agent: the answer could "
                         "not be encoded\"}}");
    }
    e->len = e->text ? strlen(e->text) : 0;
    s->bytes += e->len;
    e->running = false;
    s->nrunning--;
    e->done_ms = mono_ms();
    if (e->deadline) {
        event_free(e->deadline);
        e->deadline = NULL;
    }
    /* move to the young end: trimming is by the time it finished */
    if (e != s->tail) {
        if (e->prev)
            e->prev->next = e->next;
        else
            s->head = e->next;
        e->next->prev = e->prev;
        e->prev = s->tail;
        e->next = NULL;
        s->tail->next = e;
        s->tail = e;
    }
    for (struct waiter *w = e->waiters, *n; w; w = n) {
        n = w->next;
        hreq_set_closecb(w->req, NULL, NULL);
        send_text(w->req, e->status, e->text ? e->text : "", e->len);
        free(w);
    }
    e->waiters = NULL;
    e->nwaiters = 0;
    trim(s);
}

static void call_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct entry *e = ctx;
    int64_t now = mono_ms();
    if (now - e->progress_ms < PROGRESS_MS && done != total)
        return;
    e->progress_ms = now;
    json_t *ev = json_pack("{s:s,s:I,s:I}", "id", e->id, "done", (json_int_t)done, "total",
                           (json_int_t)total);
    if (ev)
        agent_emit(e->s->local, "call.progress", ev);
    json_decref(ev);
}

static void deadline_passed(evutil_socket_t fd, short what, void *arg)
{
    struct entry *e = arg;
    if (e->running && agent_cancel(e->s->local, e->call_id) == 0)
        log_info("agent: call %s ran past its deadline: asked to stop", e->id);
}

/* ---- requests ---- */

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static json_t *body_json(struct hreq *req)
{
    struct evbuffer *b = hreq_body(req);
    size_t n = b ? evbuffer_get_length(b) : 0;
    if (!n)
        return NULL;
    const char *p = (const char *)evbuffer_pullup(b, -1);
    json_error_t je;
    return p ? json_loadb(p, n, 0, &je) : NULL;
}

static void serve_call(struct agent_serve *s, struct hreq *req, json_t *body)
{
    const char *id = json_string_value(json_object_get(body, "id"));
    const char *verb = json_string_value(json_object_get(body, "verb"));
    json_t *args = json_object_get(body, "args");
    enum agent_verb v;
    if (!id || !id[0] || strlen(id) > ID_MAX || !printable(id)) {
        send_error(req, YE_INVALID_ARGUMENT, "agent: \"id\" must be a string of 1..64 characters");
        return;
    }
    if (!verb || agent_verb_parse(verb, &v) < 0) {
        send_error(req, YE_INVALID_ARGUMENT, "agent: \"verb\" must be a known verb");
        return;
    }
    if (!json_is_object(args)) {
        send_error(req, YE_INVALID_ARGUMENT, "agent: \"args\" must be an object");
        return;
    }
    json_t *dl = json_object_get(body, "deadline_ms");
    if (dl && (!json_is_integer(dl) || json_integer_value(dl) < 1 ||
               json_integer_value(dl) > DEADLINE_MAX)) {
        send_error(req, YE_INVALID_ARGUMENT,
                   "agent: \"deadline_ms\" must be an integer in 1..172800000");
        return;
    }
    struct entry *e = find(s, id);
    if (e && e->running) {
        add_waiter(e, req);
        return;
    }
    if (e) {
        send_text(req, e->status, e->text ? e->text : "", e->len);
        return;
    }
    if (s->nrunning >= RUNNING_MAX) {
        send_error(req, YE_UNAVAILABLE, "agent: too many calls running");
        return;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        send_error(req, YE_INTERNAL, "agent: out of memory");
        return;
    }
    e->s = s;
    snprintf(e->id, sizeof e->id, "%s", id);
    e->running = true;
    e->prev = s->tail;
    if (s->tail)
        s->tail->next = e;
    else
        s->head = e;
    s->tail = e;
    s->nentries++;
    s->nrunning++;
    add_waiter(e, req);
    if (dl) {
        /* a little after the caller's own: its timeout answers first */
        int64_t ms = json_integer_value(dl) + 1000;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        e->deadline = evtimer_new(s->base, deadline_passed, e);
        if (e->deadline)
            evtimer_add(e->deadline, &tv);
    }
    /* the reply comes from the loop, never from inside agent_call */
    e->call_id = agent_call(s->local, v, json_incref(args), call_done, call_progress, e);
    if (!e->call_id) {
        struct yerr err;
        yerr_set(&err, YE_INTERNAL, "agent: the call could not start");
        call_done(e, NULL, &err);
    }
    trim(s);
}

static void serve_cancel(struct agent_serve *s, struct hreq *req, json_t *body)
{
    const char *id = json_string_value(json_object_get(body, "id"));
    if (!id || !id[0] || strlen(id) > ID_MAX) {
        send_error(req, YE_INVALID_ARGUMENT, "agent: \"id\" must be a string of 1..64 characters");
        return;
    }
    struct entry *e = find(s, id);
    bool running = e && e->running;
    if (running)
        agent_cancel(s->local, e->call_id);
    send_json(req, 200, json_pack("{s:b}", "running", running));
}

static void console_fail(struct hreq *req, const struct yerr *err)
{
    send_error(req, err->code, err->message);
}

/* GET /agent/v1/console/{vm} with the upgrade: the VM's console on this
 * host (the controller splices it to its client). */
static void serve_console(struct agent_serve *s, struct hreq *req, const char *vm)
{
    struct yerr err;
    if (console_upgrade_check(req, &err) < 0 ||
        console_bridge(req, s->local, vm, console_fail, &err) < 0)
        send_error(req, err.code, err.message);
}

static bool authorized(struct agent_serve *s, struct hreq *req)
{
    const char *h = evhttp_find_header(hreq_input_headers(req), "Authorization");
    if (!s->credential[0] || !h || strncasecmp(h, "Bearer ", 7))
        return false;
    return ct_streq(h + 7, s->credential);
}

static void on_request(struct hreq *req, void *arg)
{
    struct agent_serve *s = arg;
    const char *path = hreq_path(req);
    int m = hreq_method(req);
    const char *console = !strncmp(path, "/agent/v1/console/", 18) ? path + 18 : NULL;
    bool known = !strcmp(path, "/agent/v1/call") || !strcmp(path, "/agent/v1/cancel") ||
                 !strcmp(path, "/agent/v1/health") || (console && *console);
    if (!known) {
        send_error(req, YE_NOT_FOUND, "agent: no such path");
        return;
    }
    if (!authorized(s, req)) {
        send_error(req, YE_UNAUTHORIZED,
                   s->credential[0] ? "agent: a wrong or missing credential"
                                    : "agent: this host has not joined a controller yet");
        return;
    }
    if (console) {
        serve_console(s, req, console);
        return;
    }
    if (!strcmp(path, "/agent/v1/health")) {
        if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
            send_error(req, YE_METHOD_NOT_ALLOWED, "agent: GET only");
            return;
        }
        send_json(req, 200,
                  json_pack("{s:s,s:s,s:i}", "host_id", s->host_id, "run", s->run, "protocol",
                            YUN_PROTOCOL));
        return;
    }
    if (m != EVHTTP_REQ_POST) {
        send_error(req, YE_METHOD_NOT_ALLOWED, "agent: POST only");
        return;
    }
    json_t *body = body_json(req);
    if (!json_is_object(body)) {
        json_decref(body);
        send_error(req, YE_INVALID_JSON, "agent: the body must be a JSON object");
        return;
    }
    if (!strcmp(path, "/agent/v1/call"))
        serve_call(s, req, body);
    else
        serve_cancel(s, req, body);
    json_decref(body);
}

struct agent_serve *agent_serve_new(struct event_base *base, struct agent *local,
                                    const char *credential, const char *host_id, const char *run)
{
    struct agent_serve *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    struct httpd_limits lim = {
        .max_body = MAX_BODY, .max_header = 16 * 1024, .max_connections = 256, .timeout_s = 120};
    s->http = httpd_new(base, &lim);
    if (!s->http) {
        free(s);
        return NULL;
    }
    s->base = base;
    s->local = local;
    agent_serve_set_credential(s, credential);
    agent_serve_set_host_id(s, host_id);
    snprintf(s->run, sizeof s->run, "%s", run ? run : "");
    return s;
}

int agent_serve_listen(struct agent_serve *s, int fd)
{
    return httpd_listen_fd(s->http, fd, on_request, s);
}

void agent_serve_set_credential(struct agent_serve *s, const char *credential)
{
    snprintf(s->credential, sizeof s->credential, "%s", credential ? credential : "");
}

void agent_serve_set_host_id(struct agent_serve *s, const char *host_id)
{
    snprintf(s->host_id, sizeof s->host_id, "%s", host_id ? host_id : "");
}

void agent_serve_free(struct agent_serve *s)
{
    if (!s)
        return;
    /* waiters first: httpd_free runs their close callbacks */
    for (struct entry *e = s->head; e; e = e->next) {
        for (struct waiter *w = e->waiters, *n; w; w = n) {
            n = w->next;
            hreq_set_closecb(w->req, NULL, NULL);
            free(w);
        }
        e->waiters = NULL;
        if (e->running)
            agent_forget(s->local, e);
    }
    console_bridges_close_all();
    httpd_free(s->http);
    while (s->head)
        entry_unlink_free(s->head);
    free(s);
}

int agent_serve_entries(const struct agent_serve *s)
{
    return s->nentries;
}

size_t agent_serve_bytes(const struct agent_serve *s)
{
    return s->bytes;
}
