/*
 * events.c - the controller's event log: every event (the controller's own
 * and those the host's engine reports) is recorded here, logged, handed to
 * the hook (long-polling readers), and the log kept within its retention.
 * An event about a VM on another host names the host ("[host NAME]").
 */
#include "ctl/ctl.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* An event about a VM on another host than this process's own (a
 * controller's agents) names that host in its reason. */
static void name_host(struct ctl *c, struct event_rec *ev)
{
    struct vm_rec vm;
    if (strcmp(ev->object_type, "vm") || store_vm_get(c->store, ev->object, &vm) != 0 ||
        ctl_host_same(c, vm.host, ""))
        return;
    size_t len = strlen(ev->reason);
    const char *host = ctl_host_label(c, vm.host);
    char named[80];
    snprintf(named, sizeof named, "host %s", host);
    if (strstr(ev->reason, named))
        return; /* it says so already */
    if (len + strlen(host) + 10 < sizeof ev->reason)
        snprintf(ev->reason + len, sizeof ev->reason - len, "%s[host %s]", len ? " " : "", host);
}

void ctl_event_record(struct ctl *c, struct event_rec *ev)
{
    name_host(c, ev);
    log_msg(strcmp(ev->result, "error") ? LOG_INFO : LOG_WARN, "%s %s %s: %s%s%s", ev->object_type,
            ev->object, ev->action, ev->result, ev->reason[0] ? " - " : "", ev->reason);
    if (store_event_add(c->store, ev) != 0) {
        log_err("cannot record event: %s", store_errmsg(c->store));
        return;
    }
    if (c->on_event)
        c->on_event(c->on_event_ctx, ev);
    /* Retention between reconcile passes too, so a burst cannot outgrow it. */
    if (++c->events_since_prune >= 256) {
        c->events_since_prune = 0;
        ctl_events_prune(c, 1);
    }
}

void ctl_event(struct ctl *c, const char *type, const char *object, const char *action,
               const char *result, const char *fmt, ...)
{
    struct event_rec ev;
    va_list ap;
    va_start(ap, fmt);
    event_rec_vfill(&ev, type, object, action, result, fmt, ap);
    va_end(ap);
    ctl_event_record(c, &ev);
}

int ctl_events_list(struct ctl *c, int64_t after, int limit, const char *object,
                    struct event_rec **out, size_t *n, struct yerr *err)
{
    if (store_event_list(c->store, after, limit, object, out, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

#define EVENTS_PRUNE_BATCH 1000

void ctl_events_prune(struct ctl *c, int batches)
{
    int64_t keep = c->cfg->event_retention;
    int64_t older = c->cfg->event_max_age_s ? now_ms() - c->cfg->event_max_age_s * 1000 : 0;
    long total = 0;
    for (int i = 0; i < batches; i++) {
        int n = store_event_prune(c->store, keep, older, EVENTS_PRUNE_BATCH);
        if (n < 0) {
            log_warn("cannot prune events: %s", store_errmsg(c->store));
            return;
        }
        total += n;
        if (n < EVENTS_PRUNE_BATCH)
            break;
    }
    if (total)
        log_debug("pruned %ld events (retention %lld, max age %lld s)", total, (long long)keep,
                  (long long)c->cfg->event_max_age_s);
}

int64_t ctl_events_last_id(struct ctl *c)
{
    return store_event_last_id(c->store);
}
