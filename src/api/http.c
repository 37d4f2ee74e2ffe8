/*
 * http.c - the HTTP side of the API: listeners, authentication, body limits,
 * JSON parsing, routing to the route files, and JSON error replies.
 */
#include "api/api.h"
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

/* evhttp's own ceiling; bodies above cfg->max_body but below this get a
 * JSON 413 from us, larger ones are cut off by evhttp itself. */
#define HARD_BODY_MAX (8u << 20)

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

void reply_json(struct evhttp_request *req, int status, json_t *j)
{
    struct evbuffer *buf = evbuffer_new();
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text) {
        evbuffer_add(buf, text, strlen(text));
        evbuffer_add(buf, "\n", 1);
        free(text);
    }
    json_decref(j);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

void reply_jw(struct evhttp_request *req, int status, struct jw *w)
{
    if (w->oom) {
        jw_free(w);
        reply_errorf(req, 500, "internal", "out of memory");
        return;
    }
    struct evbuffer *buf = evbuffer_new();
    /* Hand the text to the evbuffer without copying; it frees it. */
    put_newline(w);
    evbuffer_add_reference(buf, w->buf, w->len, free_ref, NULL);
    w->buf = NULL;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

void reply_error(struct evhttp_request *req, const struct yerr *e)
{
    reply_json(req, e->status ? e->status : 500,
               json_pack("{s:{s:s,s:s}}", "error", "code", e->code, "message", e->message));
}

void reply_errorf(struct evhttp_request *req, int status, const char *code, const char *fmt, ...)
{
    struct yerr e;
    e.status = status;
    snprintf(e.code, sizeof(e.code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof(e.message), fmt, ap);
    va_end(ap);
    reply_error(req, &e);
}

const char *query_get(struct route_ctx *c, const char *key)
{
    return c->query ? evhttp_find_header(c->query, key) : NULL;
}

bool body_keys_known(json_t *body, const char *const *known, struct yerr *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        bool ok = false;
        for (const char *const *p = known; *p && !ok; p++)
            ok = !strcmp(*p, k);
        if (!ok) {
            yerr_set(err, 400, "invalid_argument", "unknown field '%.64s'", k);
            return false;
        }
    }
    return true;
}

static bool authorized(struct api *a, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
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

static void dispatch(struct evhttp_request *req, struct api *a, bool need_auth)
{
    a->requests++;
    if (need_auth && !authorized(a, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        reply_errorf(req, 401, "unauthorized", "missing or wrong bearer token");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    if (!path)
        path = "/";
    struct route_ctx c = {.api = a, .req = req, .method = evhttp_request_get_command(req)};
    struct evkeyvalq query = {0};
    const char *qs = evhttp_uri_get_query(uri);
    if (qs && evhttp_parse_query_str(qs, &query) == 0)
        c.query = &query;

    if (!strcmp(path, "/healthz")) {
        reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
        goto out;
    }
    if (!strcmp(path, "/metrics")) {
        routes_prometheus(&c);
        goto out;
    }

    /* Split /v1/a/b/c into segments (decoded). */
    char *copy = evhttp_uridecode(path, 0, NULL);
    if (!copy) {
        reply_errorf(req, 400, "invalid_argument", "bad path");
        goto out;
    }
    char *save = NULL, *seg = strtok_r(copy, "/", &save);
    if (!seg || strcmp(seg, "v1")) {
        reply_errorf(req, 404, "not_found", "no route for %s", path);
        free(copy);
        goto out;
    }
    while ((seg = strtok_r(NULL, "/", &save)) && c.nparts < 8)
        c.parts[c.nparts++] = seg;
    if (seg) {
        reply_errorf(req, 404, "not_found", "no route for %s", path);
        free(copy);
        goto out;
    }

    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = evbuffer_get_length(in);
    if (blen > a->cfg->max_body) {
        reply_errorf(req, 413, "too_large", "request body of %zu bytes exceeds the limit of %zu",
                     blen, a->cfg->max_body);
        free(copy);
        goto out;
    }
    if (blen > 0) {
        char *text = malloc(blen + 1);
        evbuffer_copyout(in, text, blen);
        text[blen] = 0;
        json_error_t je;
        c.body = json_loads(text, JSON_REJECT_DUPLICATES, &je);
        free(text);
        if (!c.body) {
            reply_errorf(req, 400, "invalid_json", "malformed JSON at line %d column %d: %s",
                         je.line, je.column, je.text);
            free(copy);
            goto out;
        }
        if (!json_is_object(c.body)) {
            reply_errorf(req, 400, "invalid_json", "request body must be a JSON object");
            json_decref(c.body);
            free(copy);
            goto out;
        }
    }

    if (c.nparts >= 1 && !strcmp(c.parts[0], "vms"))
        routes_vms(&c);
    else if (c.nparts >= 1 && !strcmp(c.parts[0], "images"))
        routes_images(&c);
    else if (c.nparts >= 1 && !strcmp(c.parts[0], "volumes"))
        routes_volumes(&c);
    else if (c.nparts >= 1 && !strcmp(c.parts[0], "pools"))
        routes_pools(&c);
    else if (c.nparts >= 1 && !strcmp(c.parts[0], "events"))
        routes_events(&c);
    else if (c.nparts == 2 && !strcmp(c.parts[0], "host") && !strcmp(c.parts[1], "metrics") &&
             c.method == EVHTTP_REQ_GET)
        route_object_metrics(&c, "host", true);
    else if (c.nparts >= 1 && (!strcmp(c.parts[0], "host") || !strcmp(c.parts[0], "version")))
        routes_host(&c);
    else if (c.nparts == 1 && !strcmp(c.parts[0], "stats") && c.method == EVHTTP_REQ_GET)
        routes_stats(&c);
    else if (c.nparts >= 1 && (!strcmp(c.parts[0], "alert-rules") || !strcmp(c.parts[0], "alerts")))
        routes_alerts(&c);
    else
        reply_errorf(req, 404, "not_found", "no route for %s", path);
    json_decref(c.body);
    free(copy);
out:
    if (c.query)
        evhttp_clear_headers(&query);
}

static void on_unix_request(struct evhttp_request *req, void *arg)
{
    dispatch(req, arg, false);
}

static void on_tcp_request(struct evhttp_request *req, void *arg)
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

static struct evhttp *make_http(struct event_base *base, struct api *a,
                                void (*cb)(struct evhttp_request *, void *))
{
    struct evhttp *h = evhttp_new(base);
    if (!h)
        return NULL;
    evhttp_set_max_body_size(h, HARD_BODY_MAX);
    evhttp_set_max_headers_size(h, 64 * 1024);
    evhttp_set_timeout(h, 120);
    evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                      EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h, cb, a);
    return h;
}

int api_start(struct api *a, struct event_base *base, struct engine *eng,
              const struct yun_config *cfg, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->eng = eng;
    a->cfg = cfg;
    eng->on_event = api_on_event;
    eng->on_event_ctx = a;

    int fd = listen_unix(cfg->socket_path, err, errlen);
    if (fd < 0)
        return -1;
    a->unix_http = make_http(base, a, on_unix_request);
    if (!a->unix_http || !evhttp_accept_socket_with_handle(a->unix_http, fd)) {
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
        char host[64];
        snprintf(host, sizeof(host), "%s", cfg->listen_tcp);
        char *colon = strrchr(host, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (!colon || port <= 0 || port > 65535) {
            snprintf(err, errlen, "listen '%s' is not HOST:PORT", cfg->listen_tcp);
            return -1;
        }
        *colon = 0;
        a->tcp_http = make_http(base, a, on_tcp_request);
        if (!a->tcp_http || evhttp_bind_socket(a->tcp_http, host, (ev_uint16_t)port) != 0) {
            snprintf(err, errlen, "cannot listen on %s", cfg->listen_tcp);
            return -1;
        }
        log_info("API on tcp %s (bearer token required)", cfg->listen_tcp);
    }
    log_info("API on unix socket %s", cfg->socket_path);
    return 0;
}
