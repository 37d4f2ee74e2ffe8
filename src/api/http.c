/*
 * http.c - the HTTP side of the API: listeners, authentication, method
 * check, JSON body parsing, dispatch to the matched row of the route table
 * (route_table.c), and JSON (error) replies. Connections, parsing and
 * limits are api/httpd.c's.
 */
#include "api/api.h"
#include "ctl/leader.h"
#include "api/httpd.h"
#include "lib/jsonw.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* What the server serves; anything else gets 405 with this as Allow. */
#define ALLOWED_METHODS                                                                            \
    (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |      \
     EVHTTP_REQ_DELETE)
#define ALLOW_HEADER "GET, HEAD, POST, PUT, PATCH, DELETE"

static void free_ref(const void *data, size_t len, void *arg)
{
    free((void *)data);
}

static void put_newline(struct jw *w)
{
    if (w->buf && w->len + 1 < w->cap) {
        w->buf[w->len++] = '\n';
        w->buf[w->len] = 0;
    }
}

void reply_json(struct hreq *req, int status, json_t *j)
{
    struct evbuffer *buf = evbuffer_new();
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!text) {
        /* json_pack failed (out of memory, or a string that was not UTF-8
         * slipped through): still answer with a JSON body. */
        status = 500;
        text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"the reply could not "
                      "be encoded as JSON\"}}");
    }
    if (text) {
        evbuffer_add(buf, text, strlen(text));
        evbuffer_add(buf, "\n", 1);
        free(text);
    }
    json_decref(j);
    evhttp_add_header(hreq_output_headers(req), "Content-Type", "application/json");
    hreq_send(req, status, buf);
    evbuffer_free(buf);
}

void reply_jw(struct hreq *req, int status, struct jw *w)
{
    if (w->oom) {
        jw_free(w);
        reply_errorf(req, YE_INTERNAL, "out of memory");
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    /* Hand the text to the evbuffer without copying; it frees it. */
    put_newline(w);
    evbuffer_add_reference(buf, w->buf, w->len, free_ref, NULL);
    w->buf = NULL;
    evhttp_add_header(hreq_output_headers(req), "Content-Type", "application/json");
    hreq_send(req, status, buf);
    evbuffer_free(buf);
}

json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j || !s)
        return j;
    size_t n = strlen(s), cap = 4 * n + 1;
    char *clean = malloc(cap);
    if (!clean)
        return NULL;
    utf8_sanitize(clean, cap, s, n, false);
    j = json_string(clean);
    free(clean);
    return j;
}

void reply_error(struct hreq *req, const struct yerr *e)
{
    /* A yerr filled by hand (not by yerr_set) may still hold any bytes. */
    reply_json(req, yerr_status(e),
               json_pack("{s:{s:s,s:o}}", "error", "code", yerr_name(e), "message",
                         json_text(e->message)));
}

void reply_errorf(struct hreq *req, enum yerr_code code, const char *fmt, ...)
{
    struct yerr e;
    char msg[sizeof(e.message)];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e.code = code;
    utf8_sanitize(e.message, sizeof(e.message), msg, strlen(msg),
                  n < 0 || (size_t)n >= sizeof(msg));
    reply_error(req, &e);
}

const char *query_get(struct route_ctx *c, const char *key)
{
    return c->query ? evhttp_find_header(c->query, key) : NULL;
}

const char *route_param(const struct route_ctx *c, const char *name)
{
    const struct route_match *m = &c->match;
    size_t len = strlen(name);
    for (int i = 0; i < m->nparams; i++)
        if (m->param_len[i] == len && !memcmp(m->param_name[i], name, len))
            return m->param_val[i];
    return NULL;
}

bool route_vm(struct route_ctx *c, struct vm_rec *vm)
{
    struct yerr err = {0};
    const char *name = route_param(c, "name");
    if (ctl_vm_get(c->api->ctl, name ? name : "", vm, &err) < 0) {
        reply_error(c->req, &err);
        return false;
    }
    return true;
}

static bool authorized(struct api *a, struct hreq *req)
{
    const char *h = evhttp_find_header(hreq_input_headers(req), "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    /* Constant-time compare: the token is a secret. */
    const char *t = h + 7;
    size_t lt = strlen(t), la = strlen(a->token);
    unsigned char diff = (unsigned char)(lt != la);
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a->token[i] ^ (i < lt ? t[i] : 0));
    return diff == 0 && la > 0;
}

/* The request's body as a JSON object in *out (NULL when empty); false
 * after replying 400/500. */
static bool parse_body(struct hreq *req, json_t **out)
{
    /* httpd has held the body to max_body already. */
    struct evbuffer *in = hreq_body(req);
    size_t blen = evbuffer_get_length(in);
    *out = NULL;
    if (blen == 0)
        return true;
    char *text = malloc(blen + 1);
    if (!text) {
        reply_errorf(req, YE_INTERNAL, "out of memory");
        return false;
    }
    evbuffer_copyout(in, text, blen);
    text[blen] = 0;
    json_error_t je;
    json_t *body = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!body) {
        reply_errorf(req, YE_INVALID_JSON, "malformed JSON at line %d column %d: %s", je.line,
                     je.column, je.text);
        return false;
    }
    if (!json_is_object(body)) {
        reply_errorf(req, YE_INVALID_JSON, "request body must be a JSON object");
        json_decref(body);
        return false;
    }
    *out = body;
    return true;
}

static void reply_unauthorized(struct hreq *req)
{
    evhttp_add_header(hreq_output_headers(req), "WWW-Authenticate", "Bearer");
    reply_errorf(req, YE_UNAUTHORIZED, "missing or wrong bearer token");
}

/* Everything but the handler is derived from the matched row: the token
 * check (skipped for ROUTE_PUBLIC), 404 for no path, 405 with Allow for no
 * method, the JSON body (handed over to ROUTE_BODY rows). */
static void dispatch(struct hreq *req, struct api *a, bool need_auth)
{
    a->requests++;
    int method = hreq_method(req);
    const char *path = hreq_path(req);
    struct route_ctx c = {.api = a, .req = req, .method = method};
    struct evkeyvalq query = {0};
    char err[256];
    size_t n = 0;
    const struct route *t = route_table(&n, err, sizeof(err));
    /* Split /v1/a/b/c into segments (decoded). */
    char *copy = evhttp_uridecode(path, 0, NULL);
    const char *segs[ROUTE_MAX_SEGS];
    int nsegs = copy ? route_split(copy, segs, ROUTE_MAX_SEGS) : -1;
    bool known = t && nsegs >= 0 && (method & ALLOWED_METHODS) &&
                 route_match(t, n, method, segs, nsegs, &c.match);
    const struct route *r = c.match.route;
    bool public = known && r && (r->flags & ROUTE_PUBLIC);

    if (need_auth && !public && !authorized(a, req)) {
        reply_unauthorized(req);
    } else if (!(method & ALLOWED_METHODS)) {
        evhttp_add_header(hreq_output_headers(req), "Allow", ALLOW_HEADER);
        reply_errorf(req, YE_METHOD_NOT_ALLOWED, "method %s is not supported; use %s",
                     hreq_method_name(req), ALLOW_HEADER);
    } else if (!t) {
        reply_errorf(req, YE_INTERNAL, "%s", err);
    } else if (!copy) {
        reply_errorf(req, YE_INVALID_ARGUMENT, "bad path");
    } else if (!known) {
        reply_errorf(req, YE_NOT_FOUND, "no route for %s", path);
    } else if (a->leader && !(r && (r->flags & ROUTE_STANDBY)) &&
               !(leader_serving(a->leader) && a->ready)) {
        reply_not_leader(a, req);
    } else if (!r) {
        char allow[64];
        route_allow_header(c.match.allow, allow, sizeof(allow));
        evhttp_add_header(hreq_output_headers(req), "Allow", allow);
        reply_errorf(req, YE_METHOD_NOT_ALLOWED, "method %s is not allowed on %s; use %s",
                     hreq_method_name(req), path, allow);
    } else if (parse_body(req, &c.body)) {
        /* A body sent to a row that takes none is still parsed (400 when it
         * is not a JSON object), then left out. */
        if (!(r->flags & ROUTE_BODY)) {
            json_decref(c.body);
            c.body = NULL;
        }
        const char *qs = hreq_query(req);
        if (qs && evhttp_parse_query_str(qs, &query) == 0)
            c.query = &query;
        r->fn(&c);
        json_decref(c.body);
        if (c.query)
            evhttp_clear_headers(&query);
    }
    free(copy);
}

static void on_unix_request(struct hreq *req, void *arg)
{
    dispatch(req, arg, false);
}

static void on_tcp_request(struct hreq *req, void *arg)
{
    dispatch(req, arg, true);
}

static int listen_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* yund holds the state-dir lock, so a socket file here is stale. */
    unlink(path);
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(path, 0660) < 0 || listen(fd, 128) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int api_start(struct api *a, struct event_base *base, struct ctl *ctl, const struct yun_config *cfg,
              char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    size_t nroutes;
    if (!route_table(&nroutes, err, errlen))
        return -1;
    a->ctl = ctl;
    a->cfg = cfg;
    ctl->on_event = api_on_event;
    ctl->on_event_ctx = a;

    struct httpd_limits lim = {.max_body = cfg->max_body,
                               .max_header = 64 * 1024,
                               .max_connections = cfg->max_connections,
                               .timeout_s = 120};
    a->http = httpd_new(base, &lim);
    if (!a->http) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int fd = listen_unix(cfg->socket_path, err, errlen);
    if (fd < 0)
        return -1;
    if (httpd_listen_fd(a->http, fd, on_unix_request, a) < 0) {
        snprintf(err, errlen, "cannot serve on %s", cfg->socket_path);
        close(fd);
        return -1;
    }
    if (cfg->listen_tcp[0]) {
        char *tok = read_file(cfg->token_file, sizeof(a->token) - 1, NULL);
        if (!tok) {
            snprintf(err, errlen, "cannot read token_file %s: %s", cfg->token_file,
                     strerror(errno));
            return -1;
        }
        size_t n = strcspn(tok, "\r\n");
        tok[n] = 0;
        if (n < 16) {
            free(tok);
            snprintf(err, errlen, "token in %s is shorter than 16 characters", cfg->token_file);
            return -1;
        }
        snprintf(a->token, sizeof(a->token), "%s", tok);
        free(tok);
        int tfd = httpd_listen_tcp("listen", cfg->listen_tcp, false, err, errlen);
        if (tfd < 0)
            return -1;
        if (httpd_listen_fd(a->http, tfd, on_tcp_request, a) < 0) {
            snprintf(err, errlen, "cannot serve on %s", cfg->listen_tcp);
            close(tfd);
            return -1;
        }
        log_info("API on tcp %s (bearer token required)", cfg->listen_tcp);
    }
    log_info("API on unix socket %s (max_connections %d)", cfg->socket_path, cfg->max_connections);
    return 0;
}
