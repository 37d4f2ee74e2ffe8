/*
 * monitor_svc.c - the monitor's service for the API (routes_monitor.c): alert
 * rules added, silenced and deleted (store row, rules reloaded, event
 * recorded), alert history, rollups, the VM rows the figures are shown for.
 * Routes call these and never the store; errors come back as a yerr with
 * the code and text the API has always answered.
 */
#include "lib/util.h"
#include "monitor/monitor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int db_error(struct monitor *m, struct yerr *err)
{
    return yerr_set(err, YE_INTERNAL, "database: %s", store_errmsg(m->ctl->store));
}

int monitor_vms(struct monitor *m, struct vm_rec **out, size_t *n, struct yerr *err)
{
    if (ctl_vm_list(m->ctl, out, n, err) < 0) {
        err->code = YE_INTERNAL; /* as the API always said it ("database: ...") */
        return -1;
    }
    return 0;
}

const struct alert_rule *monitor_rule_find(struct monitor *m, const char *name)
{
    for (size_t i = 0; name && i < m->nrules; i++)
        if (!strcmp(m->rules[i].name, name) || !strcmp(m->rules[i].id, name))
            return &m->rules[i];
    return NULL;
}

static const struct alert_rule *rule_or_404(struct monitor *m, const char *name, struct yerr *err)
{
    const struct alert_rule *r = monitor_rule_find(m, name);
    if (!r)
        yerr_set(err, YE_NOT_FOUND, "alert rule '%s' does not exist", name);
    return r;
}

int monitor_rule_add(struct monitor *m, struct alert_rule *r, const struct alert_rule **saved,
                     struct yerr *err)
{
    uuid_generate_str(r->id);
    r->created_at = now_ms();
    json_t *spec = alert_rule_to_json(r);
    char *text = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    int rc = text ? store_rule_insert(m->ctl->store, r->id, r->name, text, r->created_at) : -1;
    free(text);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "alert rule '%s' already exists", r->name);
    if (rc != 0)
        return db_error(m, err);
    monitor_reload_rules(m);
    ctl_event(m->ctl, "alert", r->name, "rule-add", "ok", "%s %s %s %g for %ds", r->metric,
              agg_name(r->agg), cmp_op_name(r->op), r->threshold, r->for_s);
    *saved = monitor_rule_find(m, r->name);
    return 0;
}

int monitor_rule_silence(struct monitor *m, const char *name, int64_t until,
                         const struct alert_rule **out, struct yerr *err)
{
    const struct alert_rule *r = rule_or_404(m, name, err);
    if (!r)
        return -1;
    char rname[64];
    snprintf(rname, sizeof(rname), "%s", r->name);
    if (store_rule_silence(m->ctl->store, rname, until) != 0)
        return db_error(m, err);
    monitor_reload_rules(m);
    ctl_event(m->ctl, "alert", rname, until ? "silence" : "unsilence", "ok", "%s",
              until ? "notifications suppressed" : "notifications resume");
    *out = monitor_rule_find(m, rname);
    if (!*out)
        return yerr_set(err, YE_NOT_FOUND, "alert rule '%s' does not exist", rname);
    return 0;
}

int monitor_rule_delete(struct monitor *m, const char *name, char *deleted, size_t len,
                        struct yerr *err)
{
    const struct alert_rule *r = rule_or_404(m, name, err);
    if (!r)
        return -1;
    char rname[64];
    snprintf(rname, sizeof(rname), "%s", r->name);
    if (store_rule_delete(m->ctl->store, rname) != 0)
        return db_error(m, err);
    monitor_reload_rules(m);
    ctl_event(m->ctl, "alert", rname, "rule-delete", "ok", "%s", "");
    snprintf(deleted, len, "%s", rname);
    return 0;
}

int monitor_alerts(struct monitor *m, const char *state, int limit, struct alert_row **out,
                   size_t *n, struct yerr *err)
{
    if (store_alert_list(m->ctl->store, state, limit, out, n) != 0)
        return db_error(m, err);
    return 0;
}

int monitor_rollups(struct monitor *m, const char *object, const char *metric, int step,
                    int64_t since, struct rollup_row **out, size_t *n, struct yerr *err)
{
    if (store_rollup_query(m->ctl->store, object, metric, step, since, out, n) != 0)
        return db_error(m, err);
    return 0;
}
