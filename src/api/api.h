/*
 * api.h - yund's REST/JSON API under /v1, served by yun's own HTTP server
 * (api/httpd.h) on a Unix socket (trusted by file mode 0660) and optionally
 * on TCP (every request must carry "Authorization: Bearer <token>").
 */
#ifndef YUN_API_H
#define YUN_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/httpd.h"
#include "api/routes.h"
#include "ctl/ctl.h"
#include "lib/config.h"
#include "lib/yerr.h"

struct httpd;
struct hreq;
struct event_base;
struct event_waiter;

struct monitor;
struct jw;
struct leader;

struct api {
    struct ctl *ctl; /* what the handlers call */
    struct monitor *mon;
    const struct yun_config *cfg;
    struct httpd *http; /* both listeners */
    char token[256];
    struct event_waiter *waiters; /* long-polling GET /v1/events */
    int64_t requests;
    struct vmlist *vmlist; /* GET /v1/vms's caches (vms_list.c) */
    /* A controller among several (ctl/leader.h), NULL when alone: until it
     * leads and `ready` (its controller is up), only ROUTE_STANDBY rows
     * are served, the rest answer 503 not_leader. */
    struct leader *leader;
    bool ready;
    char role[16]; /* "all", "controller" (GET /v1/health) */
};

int api_start(struct api *a, struct event_base *base, struct ctl *ctl, const struct yun_config *cfg,
              char *err, size_t errlen);
void api_stop(struct api *a);
/* Controller hook: a new event was recorded; wakes long-polling readers. */
void api_on_event(void *ctx, const struct event_rec *ev);

/* What a handler gets: the matched row, its path parameters (route_param),
 * the parsed body (ROUTE_BODY rows; NULL when the request had none) and
 * the query. */
struct route_ctx {
    struct api *api;
    struct hreq *req;
    int method; /* EVHTTP_REQ_* */
    struct route_match match;
    json_t *body;
    struct evkeyvalq *query;
};

void reply_json(struct hreq *req, int status, json_t *j); /* steals j */
/* 503 {"error": {"code": "not_leader", "message", "leader": URL or null}}. */
void reply_not_leader(struct api *a, struct hreq *req);
void reply_error(struct hreq *req, const struct yerr *e);
void reply_errorf(struct hreq *req, enum yerr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *query_get(struct route_ctx *c, const char *key);
/* A JSON string of s even when s is not valid UTF-8 (old store rows):
 * invalid bytes become "\xNN". */
json_t *json_text(const char *s);

/* A VM row's fields, the object left open for more; uptime: include
 * uptime_s, which changes every second (lists leave it out so they can be
 * cached). */
/* GET /v1/vms (vms_list.c) and its caches' end. */
void vm_list(struct route_ctx *c);
void vm_list_cache_free(struct api *a);
void vm_write_json(struct jw *w, struct ctl *c, const struct vm_rec *vm, bool uptime);
void reply_jw(struct hreq *req, int status, struct jw *w); /* frees w */
/* The VM the route's {name} names: true with vm filled, or false after
 * replying with the error (404 when there is none). */
bool route_vm(struct route_ctx *c, struct vm_rec *vm);

#endif
