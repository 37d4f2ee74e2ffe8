/*
 * routes_monitor.c - the monitor's rows (alert rule bodies are checked by
 * body_monitor.c).
 *
 *   GET  /metrics                               Prometheus text exposition
 *   GET  /v1/stats                              current host, yund and per-VM figures
 *   GET  /v1/host/metrics[?name=M&since=S&step=T]
 *   GET  /v1/vms/{name}/metrics[?name=M&since=S&step=T]
 *        without name: the latest value of every metric; with it: points.
 *        since: seconds back when negative ("-3600"), else ms since epoch.
 *        step: seconds; >= 60 reads the 1-minute rollups, >= 3600 the hourly.
 *   GET/POST /v1/alert-rules, GET/DELETE /v1/alert-rules/{name},
 *   POST /v1/alert-rules/{name}/silence  {"for":"1h"} | {"until":MS} | {"for":0}
 *   GET  /v1/alerts[?state=firing&limit=N]
 */
#include "api/api.h"
#include "api/bodies.h"
#include "ctl/hosts.h"
#include "lib/jsonw.h"
#include "lib/util.h"
#include "monitor/monitor.h"
#include "monitor/prom.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Range of the metrics query parameters: nothing is kept longer than 30
 * days, so 100 years back is generous and keeps since * 1000 in range. */
#define SINCE_MAX_BACK_S (100LL * 366 * 86400)
#define STEP_MAX_S       (86400 * 30)

static void prometheus(struct route_ctx *c)
{
    struct monitor *m = c->api->mon;
    struct vm_rec *vms;
    size_t n, len = 0;
    struct yerr err = {0};
    if (monitor_vms(m, &vms, &n, &err) != 0) {
        reply_error(c->req, &err);
        return;
    }
    char *text = prom_render(m, vms, n, c->api->requests, &len);
    free(vms);
    struct evbuffer *buf = evbuffer_new();
    if (text)
        evbuffer_add(buf, text, len);
    free(text);
    evhttp_add_header(hreq_output_headers(c->req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    hreq_send(c->req, 200, buf);
    evbuffer_free(buf);
}

static void write_latest(struct jw *w, struct monitor *m, const char *object,
                         const char *const *names)
{
    for (; *names; names++) {
        double v;
        if (series_last(series_get(&m->ss, object, *names), NULL, &v) == 0) {
            jw_key(w, *names);
            jw_num(w, v);
        }
    }
}

static void object_metrics(struct route_ctx *c, const char *object, bool is_host)
{
    struct monitor *m = c->api->mon;
    const char *name = query_get(c, "name"), *since_s = query_get(c, "since"),
               *step_s = query_get(c, "step");
    const char *const *names = is_host ? alert_host_metrics : alert_vm_metrics;
    if (name) {
        bool known = false;
        for (const char *const *p = names; *p && !known; p++)
            known = !strcmp(*p, name);
        if (!known) {
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "unknown metric '%.32s'", name);
            return;
        }
    }
    int64_t now = now_ms(), since = now - 3600 * 1000;
    uint64_t step = 0;
    if (since_s) {
        /* bounded so that seconds back times 1000 stays far inside int64 */
        int64_t v;
        if (parse_i64(since_s, -SINCE_MAX_BACK_S, INT64_MAX, &v) < 0) {
            reply_errorf(c->req, YE_INVALID_ARGUMENT,
                         "since must be seconds back (-1..-%lld) or ms since epoch (>= 0)",
                         (long long)SINCE_MAX_BACK_S);
            return;
        }
        since = v < 0 ? now + v * 1000 : v;
    }
    if (step_s && parse_u64(step_s, 0, STEP_MAX_S, &step) < 0) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "step must be a number of seconds in 0..%d",
                     STEP_MAX_S);
        return;
    }
    struct jw w;
    jw_init(&w);
    jw_obj_open(&w);
    jw_kv_str(&w, "object", object);
    if (!name) {
        jw_key(&w, "metrics");
        jw_obj_open(&w);
        write_latest(&w, m, object, names);
        jw_obj_close(&w);
        jw_obj_close(&w);
        reply_jw(c->req, 200, &w);
        return;
    }
    jw_kv_str(&w, "metric", name);
    struct series *s = series_get(&m->ss, object, name);
    /* The ring answers unless it has wrapped past `since` (then older
     * samples exist only as rollups) or a coarse step was asked for. */
    bool ring_short = s && s->count == SERIES_RING &&
                      s->ts[(s->head - s->count + SERIES_RING) % SERIES_RING] > since;
    int rollup_step = step >= 3600 ? 3600 : (step >= 60 || ring_short ? 60 : 0);
    jw_kv_int(&w, "step", rollup_step ? rollup_step : (int64_t)step);
    jw_kv_str(&w, "source", rollup_step ? "rollup" : "memory");
    jw_key(&w, "points");
    jw_arr_open(&w);
    if (rollup_step) {
        struct rollup_row *rows;
        size_t n;
        struct yerr err = {0};
        if (monitor_rollups(m, object, name, rollup_step, since, &rows, &n, &err) == 0) {
            for (size_t i = 0; i < n; i++) {
                jw_arr_open(&w);
                jw_int(&w, rows[i].ts);
                jw_num(&w, rows[i].avg);
                jw_arr_close(&w);
            }
            free(rows);
        }
    } else {
        static struct point pts[SERIES_RING];
        size_t n = series_points(s, since, (int64_t)step * 1000, pts, SERIES_RING);
        for (size_t i = 0; i < n; i++) {
            jw_arr_open(&w);
            jw_int(&w, pts[i].ts);
            jw_num(&w, pts[i].v);
            jw_arr_close(&w);
        }
    }
    jw_arr_close(&w);
    jw_obj_close(&w);
    reply_jw(c->req, 200, &w);
}

static void stats_show(struct route_ctx *c)
{
    struct monitor *m = c->api->mon;
    struct vm_rec *vms;
    size_t n;
    struct yerr err = {0};
    if (monitor_vms(m, &vms, &n, &err) != 0) {
        reply_error(c->req, &err);
        return;
    }
    struct jw w;
    jw_init(&w);
    jw_obj_open(&w);
    jw_kv_str(&w, "hostname", m->hostname);
    jw_key(&w, "host");
    jw_obj_open(&w);
    write_latest(&w, m, "host", alert_host_metrics);
    jw_obj_close(&w);
    /* every host: the local one (all-in-one) and each other one sampled */
    jw_key(&w, "hosts");
    jw_arr_open(&w);
    if (ctl_local_host(m->ctl)[0]) {
        jw_obj_open(&w);
        jw_kv_str(&w, "name", m->hostname);
        write_latest(&w, m, "host", alert_host_metrics);
        jw_obj_close(&w);
    }
    int64_t now = now_ms();
    for (const struct host_mon *h = m->hosts; h; h = h->next) {
        if (!monitor_host_fresh(m, h, now))
            continue; /* down or gone: no figures to show */
        jw_obj_open(&w);
        jw_kv_str(&w, "name", h->name);
        write_latest(&w, m, h->object, alert_host_metrics);
        jw_obj_close(&w);
    }
    jw_arr_close(&w);
    jw_key(&w, "yund");
    jw_obj_open(&w);
    jw_key(&w, "cpu");
    jw_num(&w, m->self_cpu);
    jw_obj_close(&w);
    jw_key(&w, "vms");
    jw_arr_open(&w);
    for (size_t i = 0; i < n; i++) {
        char obj[72];
        snprintf(obj, sizeof(obj), "vm/%s", vms[i].name);
        jw_obj_open(&w);
        jw_kv_str(&w, "name", vms[i].name);
        jw_kv_str(&w, "state", vm_state_name(vms[i].state));
        jw_kv_str(&w, "host",
                  ctl_host_same(m->ctl, vms[i].host, "") ? m->hostname
                                                         : ctl_host_name(m->ctl, vms[i].host));
        jw_kv_int(&w, "cpus", vms[i].cpus);
        jw_kv_int(&w, "memory_mb", (int64_t)vms[i].memory_mb);
        jw_kv_int(&w, "uptime_s", vms[i].started_at ? (now - vms[i].started_at) / 1000 : 0);
        if (vm_state_has_process(vms[i].state))
            write_latest(&w, m, obj, alert_vm_metrics);
        jw_obj_close(&w);
    }
    jw_arr_close(&w);
    jw_obj_close(&w);
    free(vms);
    reply_jw(c->req, 200, &w);
}

static json_t *rule_json(struct monitor *m, const struct alert_rule *r)
{
    json_t *j = alert_rule_to_json(r);
    int p, f;
    monitor_rule_counts(m, r->id, &p, &f);
    json_object_set_new(j, "pending", json_integer(p));
    json_object_set_new(j, "firing", json_integer(f));
    return j;
}

static void rule_create(struct route_ctx *c)
{
    struct monitor *m = c->api->mon;
    struct alert_rule r;
    struct yerr err = {0};
    const struct alert_rule *saved = NULL;
    if (alert_rule_body_from_json(c->body, &r, &err) < 0 ||
        monitor_rule_add(m, &r, &saved, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(c->req, 201, rule_json(m, saved ? saved : &r));
}

static void rule_silence(struct route_ctx *c)
{
    struct monitor *m = c->api->mon;
    struct yerr err = {0};
    struct silence_body sb;
    const struct alert_rule *r;
    if (silence_body_from_json(c->body, &sb, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    int64_t until = sb.until_set ? sb.until : sb.for_s ? now_ms() + (int64_t)sb.for_s * 1000 : 0;
    if (monitor_rule_silence(m, route_param(c, "name"), until, &r, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(c->req, 200, rule_json(m, r));
}

static void alert_list(struct route_ctx *c)
{
    struct monitor *m = c->api->mon;
    const char *state = query_get(c, "state"), *lim = query_get(c, "limit");
    uint64_t limit = 100;
    if (lim && parse_u64(lim, 1, 10000, &limit) < 0) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "limit must be 1..10000");
        return;
    }
    if (state && strcmp(state, "pending") && strcmp(state, "firing") && strcmp(state, "resolved") &&
        strcmp(state, "inactive")) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT,
                     "state must be pending, firing, resolved or inactive");
        return;
    }
    struct alert_row *rows;
    size_t n;
    struct yerr err = {0};
    if (monitor_alerts(m, state, (int)limit, &rows, &n, &err) != 0) {
        reply_error(c->req, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:I,s:s,s:s,s:s,s:s,s:f,s:I,s:I,s:I,s:I}", "id",
                                             (json_int_t)rows[i].id, "rule", rows[i].rule, "object",
                                             rows[i].object, "state", rows[i].state, "severity",
                                             rows[i].severity, "value", rows[i].value, "started_at",
                                             (json_int_t)rows[i].started_at, "fired_at",
                                             (json_int_t)rows[i].fired_at, "resolved_at",
                                             (json_int_t)rows[i].resolved_at, "notified_at",
                                             (json_int_t)rows[i].notified_at));
    free(rows);
    reply_json(c->req, 200, json_pack("{s:o}", "alerts", arr));
}

static void rule_list(struct route_ctx *c)
{
    struct monitor *m = c->api->mon;
    json_t *arr = json_array();
    for (size_t i = 0; i < m->nrules; i++)
        json_array_append_new(arr, rule_json(m, &m->rules[i]));
    reply_json(c->req, 200, json_pack("{s:o}", "rules", arr));
}

/* The rule the route's {name} names, or NULL after a 404. */
static const struct alert_rule *route_rule(struct route_ctx *c)
{
    const char *name = route_param(c, "name");
    const struct alert_rule *r = monitor_rule_find(c->api->mon, name);
    if (!r)
        reply_errorf(c->req, YE_NOT_FOUND, "alert rule '%s' does not exist", name);
    return r;
}

static void rule_show(struct route_ctx *c)
{
    const struct alert_rule *r = route_rule(c);
    if (r)
        reply_json(c->req, 200, rule_json(c->api->mon, r));
}

static void rule_delete(struct route_ctx *c)
{
    struct yerr err = {0};
    char rname[64];
    if (monitor_rule_delete(c->api->mon, route_param(c, "name"), rname, sizeof(rname), &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(c->req, 200, json_pack("{s:s}", "deleted", rname));
}

static void host_metrics(struct route_ctx *c)
{
    object_metrics(c, "host", true);
}

static void vm_metrics(struct route_ctx *c)
{
    struct vm_rec vm;
    if (!route_vm(c, &vm))
        return;
    char obj[72];
    snprintf(obj, sizeof(obj), "vm/%s", vm.name);
    object_metrics(c, obj, false);
}

const struct route routes_monitor[] = {
    {EVHTTP_REQ_GET, "/metrics", prometheus, 0,
     "Prometheus text exposition (yun_ prefix, vm and host labels)", NULL},
    {EVHTTP_REQ_GET, "/v1/stats", stats_show, 0,
     "Latest host, yund and per-VM figures (what `yun top` shows)", NULL},
    {EVHTTP_REQ_GET, "/v1/host/metrics", host_metrics, 0,
     "Host metrics; latest values, or points of one metric", NULL},
    {EVHTTP_REQ_GET, "/v1/vms/{name}/metrics", vm_metrics, 0,
     "A VM's metrics; latest values, or points of one metric", NULL},
    {EVHTTP_REQ_GET, "/v1/alert-rules", rule_list, 0,
     "List alert rules with their pending/firing counts", NULL},
    {EVHTTP_REQ_POST, "/v1/alert-rules", rule_create, ROUTE_BODY | ROUTE_ADMIN, "Add an alert rule",
     check_alert_rule_create},
    {EVHTTP_REQ_GET, "/v1/alert-rules/{name}", rule_show, 0, "Show a rule", NULL},
    {EVHTTP_REQ_DELETE, "/v1/alert-rules/{name}", rule_delete, ROUTE_ADMIN, "Delete a rule", NULL},
    {EVHTTP_REQ_POST, "/v1/alert-rules/{name}/silence", rule_silence, ROUTE_BODY | ROUTE_ADMIN,
     "Silence a rule's notifications for a while ({\"for\":\"1h\"}, at most 30 days, or "
     "{\"until\":MS}); {\"for\":0} lifts it",
     check_alert_rule_silence},
    {EVHTTP_REQ_GET, "/v1/alerts", alert_list, 0, "Alert history, newest first", NULL},
};
const size_t routes_monitor_count = sizeof(routes_monitor) / sizeof(routes_monitor[0]);
