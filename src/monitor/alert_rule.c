/*
 * alert_rule.c - parsing, validation and evaluation of alert rules.
 */
#include "monitor/alert_rule.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const alert_vm_metrics[] = {"cpu",
                                        "cpu_wait",
                                        "cpu_wait_model",
                                        "mem_rss",
                                        "balloon",
                                        "disk_read_bps",
                                        "disk_write_bps",
                                        "disk_read_iops",
                                        "disk_write_iops",
                                        "disk_read_latency_ms",
                                        "disk_write_latency_ms",
                                        NULL};
const char *const alert_host_metrics[] = {"cpu",           "load1",         "mem_used",
                                          "mem_available", "disk_read_bps", "disk_write_bps",
                                          "net_rx_bps",    "net_tx_bps",    NULL};

bool alert_metric_known(enum alert_scope scope, const char *m)
{
    const char *const *list =
        scope == SCOPE_HOST || scope == SCOPE_HOST_NAMED ? alert_host_metrics : alert_vm_metrics;
    for (; *list; list++)
        if (!strcmp(*list, m))
            return true;
    return false;
}

const char *alert_metrics_list(enum alert_scope scope)
{
    return scope == SCOPE_HOST || scope == SCOPE_HOST_NAMED
               ? "cpu, load1, mem_used, mem_available, disk_read_bps, "
                 "disk_write_bps, net_rx_bps, net_tx_bps"
               : "cpu, cpu_wait, cpu_wait_model, mem_rss, balloon, disk_read_bps, disk_write_bps, "
                 "disk_read_iops, disk_write_iops, disk_read_latency_ms, "
                 "disk_write_latency_ms";
}

static const char *const op_names[] = {">", ">=", "<", "<=", "==", "!="};
static const char *const state_names[] = {"inactive", "pending", "firing", "resolved"};

const char *cmp_op_name(enum cmp_op op)
{
    return (unsigned)op < 6 ? op_names[op] : ">";
}

const char *alert_state_name(enum alert_state s)
{
    return (unsigned)s < 4 ? state_names[s] : "inactive";
}

bool alert_compare(double v, enum cmp_op op, double t)
{
    switch (op) {
    case OP_GT:
        return v > t;
    case OP_GE:
        return v >= t;
    case OP_LT:
        return v < t;
    case OP_LE:
        return v <= t;
    case OP_EQ:
        return v == t;
    default:
        return v != t;
    }
}

#define DURATION_MAX_S (30 * 86400)

/* "30s", "5m", "1h", "2d", or a bare number of seconds, at most 30 days.
 * The number is checked before it is multiplied, so no text overflows. */
static int parse_duration(json_t *v, int *out)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > DURATION_MAX_S)
            return -1;
        *out = (int)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned long long mult = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mult = 60, end++;
    else if (*end == 'h')
        mult = 3600, end++;
    else if (*end == 'd')
        mult = 86400, end++;
    if (*end || n > DURATION_MAX_S / mult)
        return -1;
    *out = (int)(n * mult);
    return 0;
}

static bool channel_valid(const char *c, char *err, size_t len)
{
    if (!strncmp(c, "webhook:", 8)) {
        const char *u = c + 8;
        if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) {
            snprintf(err, len, "channel '%.80s': webhook needs an http:// or https:// URL", c);
            return false;
        }
        return true;
    }
    if (!strncmp(c, "email:", 6)) {
        const char *a = c + 6, *at = strchr(a, '@');
        if (!at || at == a || !at[1] || strpbrk(a, " <>\r\n,")) {
            snprintf(err, len, "channel '%.80s': not an email address", c);
            return false;
        }
        return true;
    }
    if (!strncmp(c, "sms:", 4)) {
        const char *n = c + 4;
        size_t digits = 0;
        for (const char *p = n; *p; p++) {
            if (isdigit((unsigned char)*p))
                digits++;
            else if (!(p == n && *p == '+') && *p != ' ' && *p != '-') {
                snprintf(err, len, "channel '%.80s': not a phone number", c);
                return false;
            }
        }
        if (digits < 3) {
            snprintf(err, len, "channel '%.80s': not a phone number", c);
            return false;
        }
        return true;
    }
    snprintf(err, len, "channel '%.80s' must be webhook:URL, email:ADDRESS or sms:NUMBER", c);
    return false;
}

static int parse_scope(const char *s, struct alert_rule *r, char *err, size_t len)
{
    if (!strcmp(s, "host")) {
        r->scope = SCOPE_HOST;
    } else if (!strcmp(s, "vms")) {
        r->scope = SCOPE_VMS;
    } else if (!strncmp(s, "vm:", 3) && s[3] && strlen(s + 3) < sizeof(r->target)) {
        r->scope = SCOPE_VM;
        snprintf(r->target, sizeof(r->target), "%s", s + 3);
    } else if (!strncmp(s, "host:", 5) && s[5] && strlen(s + 5) < sizeof(r->target)) {
        r->scope = SCOPE_HOST_NAMED;
        snprintf(r->target, sizeof(r->target), "%s", s + 5);
    } else {
        snprintf(err, len, "scope must be host, host:NAME, vms or vm:NAME, not '%.64s'", s);
        return -1;
    }
    return 0;
}

int alert_rule_from_json(json_t *j, struct alert_rule *r, char *err, size_t len)
{
    static const char *const known[] = {
        "name",     "metric", "scope",    "agg",    "window", "op",         "threshold",      "for",
        "severity", "labels", "channels", "repeat", "id",     "created_at", "silenced_until", NULL};
    memset(r, 0, sizeof(*r));
    if (!json_is_object(j)) {
        snprintf(err, len, "rule must be a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        bool ok = false;
        for (const char *const *p = known; *p && !ok; p++)
            ok = !strcmp(*p, k);
        if (!ok) {
            snprintf(err, len, "unknown field '%.64s'", k);
            return -1;
        }
    }
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *metric = json_string_value(json_object_get(j, "metric"));
    const char *scope = json_string_value(json_object_get(j, "scope"));
    const char *op = json_string_value(json_object_get(j, "op"));
    json_t *thr = json_object_get(j, "threshold");
    if (!name || !*name || strlen(name) >= sizeof(r->name)) {
        snprintf(err, len, "name is required (1..63 characters)");
        return -1;
    }
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            snprintf(err, len, "name '%.63s' has a character outside [A-Za-z0-9_.-]", name);
            return -1;
        }
    snprintf(r->name, sizeof(r->name), "%s", name);
    if (parse_scope(scope ? scope : "vms", r, err, len) < 0)
        return -1;
    if (!metric || !alert_metric_known(r->scope, metric)) {
        snprintf(err, len, "unknown metric '%.32s' for scope %s (known: %s)", metric ? metric : "",
                 r->scope == SCOPE_HOST || r->scope == SCOPE_HOST_NAMED ? "host" : "vm",
                 alert_metrics_list(r->scope));
        return -1;
    }
    snprintf(r->metric, sizeof(r->metric), "%s", metric);
    const char *agg = json_string_value(json_object_get(j, "agg"));
    if (agg_parse(agg ? agg : "avg", &r->agg) < 0) {
        snprintf(err, len, "agg must be avg, max, min or last");
        return -1;
    }
    json_t *w = json_object_get(j, "window");
    r->window_s = 60;
    if (w && (parse_duration(w, &r->window_s) < 0 || r->window_s < 1)) {
        snprintf(err, len, "window must be a positive duration such as 30s, 5m (at most 30d)");
        return -1;
    }
    json_t *f = json_object_get(j, "for");
    if (f && parse_duration(f, &r->for_s) < 0) {
        snprintf(err, len, "for must be a duration such as 0s, 30s, 5m (not negative)");
        return -1;
    }
    json_t *rep = json_object_get(j, "repeat");
    if (rep && parse_duration(rep, &r->repeat_s) < 0) {
        snprintf(err, len, "repeat must be a duration such as 1h, or 0 for never");
        return -1;
    }
    int opi = -1;
    for (int i = 0; op && i < 6; i++)
        if (!strcmp(op, op_names[i]))
            opi = i;
    if (opi < 0) {
        snprintf(err, len, "op must be one of > >= < <= == !=");
        return -1;
    }
    r->op = (enum cmp_op)opi;
    if (!json_is_number(thr) || !isfinite(json_number_value(thr))) {
        snprintf(err, len, "threshold must be a number");
        return -1;
    }
    r->threshold = json_number_value(thr);
    const char *sev = json_string_value(json_object_get(j, "severity"));
    if (!sev)
        sev = "warning";
    if (strcmp(sev, "info") && strcmp(sev, "warning") && strcmp(sev, "critical")) {
        snprintf(err, len, "severity must be info, warning or critical");
        return -1;
    }
    snprintf(r->severity, sizeof(r->severity), "%s", sev);
    json_t *labels = json_object_get(j, "labels");
    if (labels && !json_is_object(labels)) {
        snprintf(err, len, "labels must be an object of strings");
        return -1;
    }
    json_object_foreach(labels, k, v)
    {
        if (r->nlabels == RULE_MAX_LABELS || !json_is_string(v) || strlen(k) >= 32 ||
            strlen(json_string_value(v)) >= 64 || !*k) {
            snprintf(err, len, "labels: at most %d, keys < 32 and values < 64 characters, strings",
                     RULE_MAX_LABELS);
            return -1;
        }
        snprintf(r->label_k[r->nlabels], 32, "%s", k);
        snprintf(r->label_v[r->nlabels], 64, "%s", json_string_value(v));
        r->nlabels++;
    }
    json_t *ch = json_object_get(j, "channels");
    if (ch && !json_is_array(ch)) {
        snprintf(err, len, "channels must be an array of strings");
        return -1;
    }
    size_t i;
    json_array_foreach(ch, i, v)
    {
        const char *c = json_string_value(v);
        if (!c || i >= RULE_MAX_CHANNELS || strlen(c) >= sizeof(r->channels[0])) {
            snprintf(err, len, "channels: at most %d strings of < 256 characters",
                     RULE_MAX_CHANNELS);
            return -1;
        }
        if (!channel_valid(c, err, len))
            return -1;
        snprintf(r->channels[r->nchannels++], sizeof(r->channels[0]), "%s", c);
    }
    json_t *su = json_object_get(j, "silenced_until");
    if (json_is_integer(su))
        r->silenced_until = json_integer_value(su);
    json_t *ca = json_object_get(j, "created_at");
    if (json_is_integer(ca))
        r->created_at = json_integer_value(ca);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (id)
        snprintf(r->id, sizeof(r->id), "%s", id);
    return 0;
}

json_t *alert_rule_to_json(const struct alert_rule *r)
{
    char scope[80];
    if (r->scope == SCOPE_VM)
        snprintf(scope, sizeof(scope), "vm:%s", r->target);
    else if (r->scope == SCOPE_HOST_NAMED)
        snprintf(scope, sizeof(scope), "host:%s", r->target);
    else
        snprintf(scope, sizeof(scope), "%s", r->scope == SCOPE_HOST ? "host" : "vms");
    json_t *labels = json_object(), *ch = json_array();
    for (int i = 0; i < r->nlabels; i++)
        json_object_set_new(labels, r->label_k[i], json_string(r->label_v[i]));
    for (int i = 0; i < r->nchannels; i++)
        json_array_append_new(ch, json_string(r->channels[i]));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:f,s:i,s:i,s:s,s:o,s:o,s:I,s:I}", "id", r->id,
                     "name", r->name, "metric", r->metric, "scope", scope, "agg", agg_name(r->agg),
                     "window", r->window_s, "op", cmp_op_name(r->op), "threshold", r->threshold,
                     "for", r->for_s, "repeat", r->repeat_s, "severity", r->severity, "labels",
                     labels, "channels", ch, "silenced_until", (json_int_t)r->silenced_until,
                     "created_at", (json_int_t)r->created_at);
}

enum alert_action alert_step(const struct alert_rule *r, struct alert_inst *a, bool have_value,
                             double value, int64_t now)
{
    bool cond = have_value && alert_compare(value, r->op, r->threshold);
    if (have_value)
        a->value = value;
    switch (a->state) {
    case AS_INACTIVE:
    case AS_RESOLVED:
        if (!cond) {
            a->state = a->state == AS_RESOLVED ? AS_RESOLVED : AS_INACTIVE;
            return AA_NONE;
        }
        a->state = AS_PENDING;
        a->pending_since = now;
        a->fired_at = a->resolved_at = a->notified_at = 0;
        a->db_id = 0;
        /* fall through: with for=0 it fires in the same evaluation */
        /* FALLTHROUGH */
    case AS_PENDING:
        if (!cond) {
            a->state = AS_INACTIVE;
            return AA_NONE;
        }
        if (now - a->pending_since >= (int64_t)r->for_s * 1000) {
            a->state = AS_FIRING;
            a->fired_at = now;
            a->notified_at = now;
            return AA_FIRE;
        }
        return AA_NONE;
    case AS_FIRING:
        if (!cond) {
            a->state = AS_RESOLVED;
            a->resolved_at = now;
            return AA_RESOLVE;
        }
        if (r->repeat_s > 0 && now - a->notified_at >= (int64_t)r->repeat_s * 1000) {
            a->notified_at = now;
            return AA_REPEAT;
        }
        return AA_NONE;
    }
    return AA_NONE;
}
