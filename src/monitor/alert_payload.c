/*
 * alert_payload.c - notification bodies. The webhook follows Alertmanager's
 * webhook receiver format: version, groupKey, status, receiver, groupLabels,
 * commonLabels, commonAnnotations, externalURL, alerts[] with status, labels,
 * annotations, startsAt, endsAt, generatorURL and fingerprint.
 */
#include "monitor/alert_payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void rfc3339_ms(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "0001-01-01T00:00:00Z");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, (int)(ms % 1000));
}

static json_t *labels_of(const struct alert_rule *r, const char *object, const char *hostname)
{
    json_t *l = json_object();
    json_object_set_new(l, "alertname", json_string(r->name));
    json_object_set_new(l, "severity", json_string(r->severity));
    json_object_set_new(l, "metric", json_string(r->metric));
    if (!strncmp(object, "vm/", 3))
        json_object_set_new(l, "vm", json_string(object + 3));
    /* another host's alert (object host/NAME) names that host */
    json_object_set_new(l, "host",
                        json_string(!strncmp(object, "host/", 5) ? object + 5 : hostname));
    for (int i = 0; i < r->nlabels; i++)
        json_object_set_new(l, r->label_k[i], json_string(r->label_v[i]));
    return l;
}

/* FNV-1a of the sorted label pairs, as Alertmanager's fingerprint is a hash of labels. */
static void fingerprint(json_t *labels, char *out, size_t len)
{
    char *s = json_dumps(labels, JSON_SORT_KEYS | JSON_COMPACT);
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = s; p && *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    free(s);
    snprintf(out, len, "%016llx", (unsigned long long)h);
}

static void summary(const struct alert_rule *r, const struct alert_note *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s of %s over %ds is %.2f (threshold %s %g)%s", a->object,
             agg_name(r->agg), r->metric, r->window_s, a->value, cmp_op_name(r->op), r->threshold,
             a->resolved ? ", resolved" : "");
}

char *alert_webhook_json(const struct alert_rule *r, const struct alert_note *notes, int n,
                         const char *hostname, const char *external_url)
{
    json_t *alerts = json_array();
    bool any_firing = false;
    for (int i = 0; i < n; i++) {
        const struct alert_note *a = &notes[i];
        any_firing |= !a->resolved;
        json_t *labels = labels_of(r, a->object, hostname);
        char fp[32], sa[40], ea[40], sum[300], val[64];
        fingerprint(labels, fp, sizeof(fp));
        rfc3339_ms(a->starts_at, sa, sizeof(sa));
        rfc3339_ms(a->resolved ? a->ends_at : 0, ea, sizeof(ea));
        summary(r, a, sum, sizeof(sum));
        snprintf(val, sizeof(val), "%.4g", a->value);
        json_array_append_new(alerts, json_pack("{s:s,s:o,s:{s:s,s:s},s:s,s:s,s:s,s:s}", "status",
                                                a->resolved ? "resolved" : "firing", "labels",
                                                labels, "annotations", "summary", sum, "value", val,
                                                "startsAt", sa, "endsAt", ea, "generatorURL",
                                                external_url, "fingerprint", fp));
    }
    char group_key[128];
    snprintf(group_key, sizeof(group_key), "{}:{alertname=\"%s\"}", r->name);
    json_t *common = json_object();
    json_object_set_new(common, "alertname", json_string(r->name));
    json_object_set_new(common, "severity", json_string(r->severity));
    json_object_set_new(common, "metric", json_string(r->metric));
    for (int i = 0; i < r->nlabels; i++)
        json_object_set_new(common, r->label_k[i], json_string(r->label_v[i]));
    json_t *body =
        json_pack("{s:s,s:s,s:i,s:s,s:s,s:{s:s},s:o,s:{},s:s,s:o}", "version", "4", "groupKey",
                  group_key, "truncatedAlerts", 0, "status", any_firing ? "firing" : "resolved",
                  "receiver", "yun", "groupLabels", "alertname", r->name, "commonLabels", common,
                  "commonAnnotations", "externalURL", external_url, "alerts", alerts);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

void alert_message_text(const struct alert_rule *r, const struct alert_note *notes, int n,
                        char **subject, char **text)
{
    int firing = 0;
    for (int i = 0; i < n; i++)
        firing += !notes[i].resolved;
    if (asprintf(subject, "[%s:%d] %s (%s)", firing ? "FIRING" : "RESOLVED", firing ? firing : n,
                 r->name, r->severity) < 0)
        *subject = NULL;
    size_t cap = 256 + (size_t)n * 320, len = 0;
    char *t = malloc(cap);
    if (t) {
        len += (size_t)snprintf(t + len, cap - len, "%s: %s %s %g\n", r->name, r->metric,
                                cmp_op_name(r->op), r->threshold);
        for (int i = 0; i < n; i++) {
            char sum[300];
            summary(r, &notes[i], sum, sizeof(sum));
            len += (size_t)snprintf(t + len, cap - len, "- %s\n", sum);
        }
    }
    *text = t;
}
