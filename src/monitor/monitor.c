/*
 * monitor.c - sampling, alert evaluation and rollups (controller side).
 *
 * Every sample_interval one host.sample call to the host's agent (agent.h)
 * brings the raw counters of the host and of each VM with a QEMU: CPU ticks,
 * memory, load, disk and network bytes, per-vCPU ticks, block statistics,
 * balloon size, the vCPU threads' run and run-queue wait. This file reads nothing of a host itself
 * (no /proc, no QMP): it turns those counters into rates and series, evaluates the alert rules and
 * writes the rollups. One tick's samples are in flight at a time; a tick that finds them still out
 * is skipped. The agent answers within its deadline even when a QEMU does not (that VM then lacks
 * its QMP figures). Only the local host (the all-in-one's) is asked at each tick; its series are
 * object "host", and the tick's rules and rollups run when it has answered (at once in a
 * controller, which has no host of its own). Every other host pushes its own samples
 * (monitor_hosts.c): its series are "host/NAME", its VMs' "vm/NAME" as any; the rules see them at
 * the next tick.
 */
#include "monitor/monitor.h"
#include "agent/agent.h"
#include "agent/sample_msg.h"
#include "ctl/hosts.h"
#include "lib/log.h"
#include "lib/util.h"
#include "monitor/alert_payload.h"
#include "monitor/monitor_int.h"

#include <errno.h>
#include <stddef.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct alert_slot {
    struct alert_slot *next;
    char rule_id[37];
    char object[72];
    struct alert_inst inst;
    bool touched;
};

/* ---- host ---- */

/* yund itself (the controller's own process): the overhead figure. */
static void sample_self(struct monitor *m, int64_t now)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return;
    int64_t us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                 (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
    if (m->self_ts && now > m->self_ts)
        m->self_cpu =
            100.0 * ((double)(us - m->self_us) / 1e6) / ((double)(now - m->self_ts) / 1000.0);
    m->self_us = us;
    m->self_ts = now;
}

/* ---- VMs ---- */

static struct vm_mon *vm_mon_get(struct monitor *m, const struct vm_rec *vm)
{
    for (struct vm_mon *v = m->vms; v; v = v->next)
        if (!strcmp(v->id, vm->id))
            return v;
    struct vm_mon *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->m = m;
    snprintf(v->id, sizeof(v->id), "%s", vm->id);
    snprintf(v->name, sizeof(v->name), "%s", vm->name);
    snprintf(v->object, sizeof(v->object), "vm/%s", vm->name);
    v->next = m->vms;
    m->vms = v;
    return v;
}

static void apply_blockstats(struct vm_mon *v, const struct vm_counters_raw *r, int64_t at,
                             int64_t now)
{
    struct monitor *m = v->m;
    if (v->blk_have && at > v->blk_ts && r->rd_bytes >= v->rd && r->wr_bytes >= v->wr) {
        double dt = (double)(at - v->blk_ts) / 1000.0;
        series_add(&m->ss, v->object, "disk_read_bps", now, (double)(r->rd_bytes - v->rd) / dt);
        series_add(&m->ss, v->object, "disk_write_bps", now, (double)(r->wr_bytes - v->wr) / dt);
        series_add(&m->ss, v->object, "disk_read_iops", now, (double)(r->rd_ops - v->rdo) / dt);
        series_add(&m->ss, v->object, "disk_write_iops", now, (double)(r->wr_ops - v->wro) / dt);
        /* mean latency of the operations completed in this interval */
        if (r->rd_ops > v->rdo && r->rd_ns >= v->rd_ns)
            series_add(&m->ss, v->object, "disk_read_latency_ms", now,
                       (double)(r->rd_ns - v->rd_ns) / 1e6 / (double)(r->rd_ops - v->rdo));
        if (r->wr_ops > v->wro && r->wr_ns >= v->wr_ns)
            series_add(&m->ss, v->object, "disk_write_latency_ms", now,
                       (double)(r->wr_ns - v->wr_ns) / 1e6 / (double)(r->wr_ops - v->wro));
    }
    v->rd_ns = r->rd_ns;
    v->wr_ns = r->wr_ns;
    v->rd = r->rd_bytes;
    v->wr = r->wr_bytes;
    v->rdo = r->rd_ops;
    v->wro = r->wr_ops;
    v->blk_ts = at;
    v->blk_have = true;
    v->c.rd_bytes = r->rd_bytes;
    v->c.wr_bytes = r->wr_bytes;
    v->c.rd_ops = r->rd_ops;
    v->c.wr_ops = r->wr_ops;
}

void mon_apply_vm(struct monitor *m, const struct vm_rec *vm, const struct vm_counters_raw *r,
                  int64_t clk_tck, int64_t at, int64_t now)
{
    struct vm_mon *v = vm_mon_get(m, vm);
    if (!v)
        return;
    v->seen = true;
    if (v->pid != vm->pid) {
        /* a new QEMU: counters start over */
        memset(&v->ticks, 0, sizeof(*v) - offsetof(struct vm_mon, ticks));
        v->pid = vm->pid;
    }
    if (!r)
        return; /* the agent did not report it */
    double tck = (double)clk_tck;
    if (r->have_cpu) {
        if (v->ts && at > v->ts && r->cpu_ticks >= v->ticks)
            series_add(&m->ss, v->object, "cpu", now,
                       100.0 * ((double)(r->cpu_ticks - v->ticks) / tck) /
                           ((double)(at - v->ts) / 1000.0));
        v->ticks = r->cpu_ticks;
        v->ts = at;
        v->c.cpu_seconds = (double)r->cpu_ticks / tck;
        v->c.valid = 1;
    }
    if (r->have_rss) {
        v->c.rss = r->rss;
        series_add(&m->ss, v->object, "mem_rss", now, (double)r->rss);
    }
    if (r->nvcpu > 0) {
        v->c.nvcpu = r->nvcpu;
        for (int i = 0; i < r->nvcpu; i++)
            v->c.vcpu_seconds[i] = (double)r->vcpu_ticks[i] / tck;
    }
    if (r->have_sched) {
        int nv = r->nvcpu > 0 ? r->nvcpu : vm->cpus;
        if (v->sched_ts && at > v->sched_ts && nv > 0 && r->vcpu_run_ns >= v->run_ns &&
            r->vcpu_wait_ns >= v->wait_ns) {
            double dt = (double)(at - v->sched_ts) * 1e6; /* ns */
            double dw = (double)(r->vcpu_wait_ns - v->wait_ns);
            double dr = (double)(r->vcpu_run_ns - v->run_ns);
            series_add(&m->ss, v->object, "cpu_wait", now, 100.0 * dw / (dt * nv));
            v->runnable = (dw + dr) / dt;
            v->runnable_at = at;
            v->nv = nv;
        }
        v->run_ns = r->vcpu_run_ns;
        v->wait_ns = r->vcpu_wait_ns;
        v->sched_ts = at;
    }
    if (r->have_blk)
        apply_blockstats(v, r, at, now);
    v->c.have_swap = r->have_swap;
    v->c.swap = r->swap;
    if (r->have_balloon) {
        v->c.balloon = r->balloon;
        series_add(&m->ss, v->object, "balloon", now, (double)r->balloon);
    }
    v->c.balloon_target = r->have_balloon_target ? r->balloon_target : 0;
}

static bool sampled(const struct vm_rec *vm)
{
    return vm_state_has_process(vm->state) && vm->pid > 0;
}

int monitor_vm_counters(struct monitor *m, const char *vm_id, struct vm_counters *out)
{
    for (struct vm_mon *v = m->vms; v; v = v->next)
        if (!strcmp(v->id, vm_id) && v->c.valid) {
            *out = v->c;
            return 0;
        }
    return -1;
}

/* VMs that stopped or vanished: forget their counters. A deleted VM's
 * series go too; a stopped VM keeps its history for the API. */
static void sweep_vms(struct monitor *m, const struct vm_rec *vms, size_t n)
{
    struct vm_mon **pp = &m->vms;
    while (*pp) {
        struct vm_mon *v = *pp;
        if (v->seen) {
            v->seen = false;
            pp = &v->next;
            continue;
        }
        const struct vm_rec *rec = NULL;
        for (size_t i = 0; i < n && !rec; i++)
            if (!strcmp(vms[i].id, v->id))
                rec = &vms[i];
        if (rec && sampled(rec) && rec->pid == v->pid && m->ctl &&
            !ctl_host_same(m->ctl, rec->host, "")) {
            pp = &v->next; /* another host's: its samples come when they come */
            continue;
        }
        if (!rec)
            series_drop_object(&m->ss, v->object);
        *pp = v->next;
        free(v);
    }
}

/* ---- alerts ---- */

static struct alert_slot *slot_get(struct monitor *m, const char *rule_id, const char *object)
{
    for (struct alert_slot *s = m->slots; s; s = s->next)
        if (!strcmp(s->rule_id, rule_id) && !strcmp(s->object, object))
            return s;
    struct alert_slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    snprintf(s->rule_id, sizeof(s->rule_id), "%s", rule_id);
    snprintf(s->object, sizeof(s->object), "%s", object);
    s->next = m->slots;
    m->slots = s;
    return s;
}

static void save_alert(struct monitor *m, const struct alert_rule *r, struct alert_slot *s,
                       bool notified)
{
    struct alert_row row = {0};
    row.id = s->inst.db_id;
    snprintf(row.rule, sizeof(row.rule), "%s", r->name);
    snprintf(row.object, sizeof(row.object), "%s", s->object);
    snprintf(row.state, sizeof(row.state), "%s", alert_state_name(s->inst.state));
    snprintf(row.severity, sizeof(row.severity), "%s", r->severity);
    row.value = s->inst.value;
    row.started_at = s->inst.pending_since;
    row.fired_at = s->inst.fired_at;
    row.resolved_at = s->inst.resolved_at;
    row.notified_at = s->inst.notified_at;
    row.notifications = notified;
    if (store_alert_save(m->ctl->store, &row) == 0)
        s->inst.db_id = row.id;
}

static void notify_group(struct monitor *m, const struct alert_rule *r, struct alert_note *notes,
                         int n, int64_t now)
{
    if (n == 0)
        return;
    bool resolved = notes[0].resolved;
    if (r->silenced_until > now) {
        ctl_event(m->ctl, "alert", r->name, "silenced", "info",
                  "%d %s notification(s) not sent: silenced for %lld s more", n,
                  resolved ? "resolved" : "firing", (long long)((r->silenced_until - now) / 1000));
        return;
    }
    if (r->nchannels == 0)
        return;
    char *json = alert_webhook_json(r, notes, n, m->hostname, m->cfg->external_url);
    char *subject = NULL, *text = NULL;
    alert_message_text(r, notes, n, &subject, &text);
    for (int i = 0; i < r->nchannels; i++)
        if (m->notifier &&
            notifier_send(m->notifier, r->channels[i], r->name, json, subject, text) == 0)
            m->notifications_total++;
    free(json);
    free(subject);
    free(text);
}

static void eval_object(struct monitor *m, const struct alert_rule *r, const char *object,
                        int64_t now, struct alert_note *fire, int *nfire, struct alert_note *res,
                        int *nres, int max)
{
    struct alert_slot *s = slot_get(m, r->id, object);
    if (!s)
        return;
    s->touched = true;
    double v = 0;
    struct series *ser = series_get(&m->ss, object, r->metric);
    bool have = series_aggregate(ser, now - (int64_t)r->window_s * 1000, now, r->agg, &v) == 0;
    enum alert_state before = s->inst.state;
    enum alert_action a = alert_step(r, &s->inst, have, v, now);
    enum alert_state after = s->inst.state;
    if (before != after) {
        if (after == AS_INACTIVE && s->inst.db_id) {
            /* pending that never fired: the row said pending, say why it ended */
            save_alert(m, r, s, false);
        } else if (after != AS_INACTIVE) {
            save_alert(m, r, s, a != AA_NONE);
        }
        if (after == AS_PENDING)
            ctl_event(m->ctl, "alert", r->name, "pending", "info", "%s %s %s = %.2f %s %g", object,
                      agg_name(r->agg), r->metric, v, cmp_op_name(r->op), r->threshold);
        else if (after == AS_FIRING)
            ctl_event(m->ctl, "alert", r->name, "firing", "error", "%s %s %s = %.2f %s %g (%s)",
                      object, agg_name(r->agg), r->metric, v, cmp_op_name(r->op), r->threshold,
                      r->severity);
        else if (after == AS_RESOLVED)
            ctl_event(m->ctl, "alert", r->name, "resolved", "ok", "%s %s %s = %.2f", object,
                      agg_name(r->agg), r->metric, s->inst.value);
    }
    if (a == AA_NONE)
        return;
    struct alert_note note = {.value = s->inst.value,
                              .starts_at =
                                  s->inst.fired_at ? s->inst.fired_at : s->inst.pending_since,
                              .ends_at = s->inst.resolved_at,
                              .resolved = a == AA_RESOLVE};
    snprintf(note.object, sizeof(note.object), "%s", object);
    if (a == AA_RESOLVE) {
        if (*nres < max)
            res[(*nres)++] = note;
    } else if (*nfire < max) {
        fire[(*nfire)++] = note;
    }
    if (a == AA_REPEAT)
        save_alert(m, r, s, true);
}

#define NOTE_MAX 256

static void evaluate(struct monitor *m, const struct vm_rec *vms, size_t n, int64_t now)
{
    static struct alert_note fire[NOTE_MAX], res[NOTE_MAX];
    for (struct alert_slot *s = m->slots; s; s = s->next)
        s->touched = false;
    for (size_t ri = 0; ri < m->nrules; ri++) {
        const struct alert_rule *r = &m->rules[ri];
        int nf = 0, nr = 0;
        if (r->scope == SCOPE_HOST) { /* every host */
            if (!m->ctl || ctl_local_host(m->ctl)[0])
                eval_object(m, r, "host", now, fire, &nf, res, &nr, NOTE_MAX);
            for (struct host_mon *h = m->hosts; h; h = h->next)
                eval_object(m, r, h->object, now, fire, &nf, res, &nr, NOTE_MAX);
        } else if (r->scope == SCOPE_HOST_NAMED) {
            const char *obj = monitor_host_object(m, r->target);
            if (obj)
                eval_object(m, r, obj, now, fire, &nf, res, &nr, NOTE_MAX);
        } else {
            for (size_t i = 0; i < n; i++) {
                if (r->scope == SCOPE_VM && strcmp(vms[i].name, r->target))
                    continue;
                char obj[72];
                snprintf(obj, sizeof(obj), "vm/%s", vms[i].name);
                eval_object(m, r, obj, now, fire, &nf, res, &nr, NOTE_MAX);
            }
        }
        /* one notification per rule and status: the group */
        notify_group(m, r, fire, nf, now);
        notify_group(m, r, res, nr, now);
    }
    /* slots of deleted rules or VMs */
    struct alert_slot **pp = &m->slots;
    while (*pp) {
        if (!(*pp)->touched) {
            struct alert_slot *dead = *pp;
            *pp = dead->next;
            free(dead);
        } else {
            pp = &(*pp)->next;
        }
    }
}

void monitor_rule_counts(struct monitor *m, const char *rule_id, int *pending, int *firing)
{
    *pending = *firing = 0;
    for (struct alert_slot *s = m->slots; s; s = s->next)
        if (!strcmp(s->rule_id, rule_id)) {
            *pending += s->inst.state == AS_PENDING;
            *firing += s->inst.state == AS_FIRING;
        }
}

int monitor_reload_rules(struct monitor *m)
{
    struct rule_row *rows;
    size_t n;
    if (store_rule_list(m->ctl->store, &rows, &n) != 0)
        return -1;
    struct alert_rule *rules = calloc(n ? n : 1, sizeof(*rules));
    size_t k = 0;
    for (size_t i = 0; rules && i < n; i++) {
        json_t *j = json_loads(rows[i].spec, 0, NULL);
        char err[256];
        if (j && alert_rule_from_json(j, &rules[k], err, sizeof(err)) == 0) {
            snprintf(rules[k].id, sizeof(rules[k].id), "%s", rows[i].id);
            rules[k].silenced_until = rows[i].silenced_until;
            rules[k].created_at = rows[i].created_at;
            k++;
        } else {
            log_warn("alert rule %s in the store is invalid: %s", rows[i].name,
                     j ? err : "bad JSON");
        }
        json_decref(j);
    }
    store_rule_rows_free(rows, n);
    free(m->rules);
    m->rules = rules;
    m->nrules = k;
    return 0;
}

/* ---- rollups: 1-minute rows for a day, 1-hour rows for 30 days ---- */

static void rollup(struct monitor *m, int64_t now)
{
    int64_t minute = now / 60000 * 60000;
    if (m->last_minute == 0) {
        m->last_minute = minute;
        return;
    }
    if (minute == m->last_minute)
        return;
    int64_t start = m->last_minute;
    m->last_minute = minute;
    store_begin(m->ctl->store);
    for (int b = 0; b < SERIES_BUCKETS; b++)
        for (struct series *s = m->ss.buckets[b]; s; s = s->next) {
            double avg, mn, mx;
            if (series_aggregate(s, start, start + 59999, AGG_AVG, &avg) == 0 &&
                series_aggregate(s, start, start + 59999, AGG_MIN, &mn) == 0 &&
                series_aggregate(s, start, start + 59999, AGG_MAX, &mx) == 0)
                store_rollup_add(m->ctl->store, s->object, s->metric, 60, start, avg, mn, mx);
        }
    /* an hour just ended: compact its minutes; prune old rows */
    if (minute % 3600000 == 0) {
        store_rollup_compact(m->ctl->store, 60, 3600, minute - 3600000);
        store_rollup_prune(m->ctl->store, 60, now - 86400000LL);
        store_rollup_prune(m->ctl->store, 3600, now - 30LL * 86400000LL);
    }
    store_commit(m->ctl->store);
}

static void evaluate(struct monitor *m, const struct vm_rec *vms, size_t n, int64_t now);
static void rollup(struct monitor *m, int64_t now);

/* One host's host.sample in flight. */
struct mon_sample {
    struct mon_sample *next;
    struct monitor *m;
    char host[37];
    bool local; /* this process's own host: its counters are the "host" series */
    uint64_t call;
};

static void sample_unlink(struct mon_sample *ms)
{
    for (struct mon_sample **pp = &ms->m->samples; *pp; pp = &(*pp)->next)
        if (*pp == ms) {
            *pp = ms->next;
            return;
        }
}

/* Every host has answered: the rules and the rollups run over the series. */
static void sample_finish(struct monitor *m)
{
    struct vm_rec *vms = m->svms;
    size_t n = m->nsvms;
    bool prime = m->sprime;
    m->svms = NULL;
    m->nsvms = m->capsvms = 0;
    if (!prime) {
        int64_t now = now_ms();
        sample_self(m, now);
        sweep_vms(m, vms, n);
        mon_hosts_sweep(m);
        evaluate(m, vms, n, now);
        rollup(m, now);
        m->samples_total++;
    }
    free(vms);
}

/* A host's answer: its counters become series (the local host's own, and
 * its VMs'); the last answer of the tick finishes it. */
static void on_sample(void *ctx, json_t *result, const struct yerr *err)
{
    struct mon_sample *ms = ctx;
    struct monitor *m = ms->m;
    sample_unlink(ms);
    int64_t now = now_ms();
    struct host_counters h;
    struct vm_counters_raw *raw = NULL;
    size_t nraw = 0;
    struct yerr derr = {0};
    const char *where = ms->local ? m->hostname : ctl_host_label(m->ctl, ms->host);
    if (err) {
        log_warn("monitor: host.sample on %s: %s", where, err->message);
    } else if (sample_reply_decode(result, &h, &raw, &nraw, &derr) < 0) {
        log_warn("monitor: host.sample on %s: %s", where, derr.message);
    } else {
        mon_apply_host(m, "host", &m->h, &h, now, now);
        for (size_t i = 0; i < m->nsvms; i++) {
            struct vm_rec *vm = &m->svms[i];
            if (!sampled(vm) || !ctl_host_same(m->ctl, vm->host, ms->host))
                continue;
            const struct vm_counters_raw *r = NULL;
            for (size_t k = 0; k < nraw && !r; k++)
                if (!strcmp(raw[k].vm, vm->id) && raw[k].pid == vm->pid)
                    r = &raw[k];
            mon_apply_vm(m, vm, r, h.clk_tck, now, now);
        }
        mon_predict_waits(m, m->svms, m->nsvms, ms->host, h.ncpus, now, now);
    }
    free(raw);
    free(ms);
    if (!m->samples)
        sample_finish(m);
}

/* The host.sample of one host, with its VMs that have a QEMU. */
static void sample_host(struct ctl *c, const char *host_id, struct agent *a, void *arg)
{
    struct monitor *m = arg;
    struct yerr down = {0};
    if (!a || !ctl_host_agent(c, host_id, &down))
        return; /* down: its VMs keep their last figures */
    if (!ctl_host_same(c, host_id, ""))
        return; /* another host pushes its own samples (monitor_hosts.c) */
    struct sample_target *t = calloc(m->nsvms ? m->nsvms : 1, sizeof *t);
    struct mon_sample *ms = t ? calloc(1, sizeof *ms) : NULL;
    if (!ms) {
        free(t);
        return;
    }
    size_t nt = 0;
    for (size_t i = 0; i < m->nsvms; i++) {
        const struct vm_rec *vm = &m->svms[i];
        if (sampled(vm) && nt < SAMPLE_MAX_VMS && ctl_host_same(c, vm->host, host_id)) {
            snprintf(t[nt].vm, sizeof t[nt].vm, "%s", vm->id);
            t[nt++].pid = vm->pid;
        }
    }
    /* answers by half the interval (at most the default), so the next tick
     * finds this one done */
    int deadline = m->cfg->sample_interval_s * 500;
    if (deadline > SAMPLE_DEADLINE_MS || deadline < 1)
        deadline = SAMPLE_DEADLINE_MS;
    json_t *args = sample_args_encode(t, nt, deadline);
    free(t);
    ms->m = m;
    snprintf(ms->host, sizeof ms->host, "%s", host_id);
    ms->local = ctl_host_same(c, host_id, "");
    ms->next = m->samples;
    m->samples = ms;
    ms->call = ctl_host_call(c, host_id, AV_HOST_SAMPLE, args, on_sample, NULL, ms);
    if (!ms->call) {
        sample_unlink(ms);
        free(ms);
    }
}

#define SLICE_ROWS   250
#define SLICE_GAP_MS 5 /* between slices: the tick takes a share of the loop, not all */

/* The rows are in (or there are none to read): every host that is up is
 * asked. */
static void sample_send(struct monitor *m)
{
    m->reading = false;
    ctl_hosts_each(m->ctl, sample_host, m);
    if (!m->samples) /* no local host (a controller) or it is not up */
        sample_finish(m);
}

/* The next SLICE_ROWS rows by name into m->svms. */
static void sample_read(struct monitor *m)
{
    struct vm_rec *vms = NULL;
    size_t n = 0;
    struct yerr err = {0};
    if (ctl_vm_list_page(m->ctl, m->cursor, SLICE_ROWS, &vms, &n, &err) < 0) {
        log_warn("monitor: %s", err.message);
        free(m->svms);
        m->svms = NULL;
        m->nsvms = m->capsvms = 0;
        m->reading = false;
        return;
    }
    if (m->nsvms + n > m->capsvms) {
        size_t nc = m->capsvms ? m->capsvms : SLICE_ROWS;
        while (nc < m->nsvms + n)
            nc *= 2;
        struct vm_rec *na = realloc(m->svms, nc * sizeof *na);
        if (!na) {
            log_warn("monitor: out of memory reading the vm rows");
            free(vms);
            free(m->svms);
            m->svms = NULL;
            m->nsvms = m->capsvms = 0;
            m->reading = false;
            return;
        }
        m->svms = na;
        m->capsvms = nc;
    }
    if (n) {
        memcpy(m->svms + m->nsvms, vms, n * sizeof *vms);
        m->nsvms += n;
        snprintf(m->cursor, sizeof m->cursor, "%s", vms[n - 1].name);
    }
    free(vms);
    if (n < SLICE_ROWS) {
        sample_send(m);
        return;
    }
    struct timeval gap = {0, SLICE_GAP_MS * 1000};
    evtimer_add(m->slice, &gap); /* the next slice after what is waiting */
}

static void slice_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sample_read(arg);
}

/* Asks every host that is up for one sample (prime: the hosts only, a
 * first reading so the first tick has rates), once the rows are read. */
static void sample_start(struct monitor *m, bool prime)
{
    if (m->samples || m->reading)
        return; /* the last tick's are still out (their deadline is shorter than a tick) */
    free(m->svms);
    m->svms = NULL;
    m->nsvms = m->capsvms = 0;
    m->sprime = prime;
    if (prime) {
        sample_send(m);
        return;
    }
    if (!m->slice) { /* no timer for the slices: the whole table at once */
        struct yerr err = {0};
        if (ctl_vm_list(m->ctl, &m->svms, &m->nsvms, &err) < 0) {
            log_warn("monitor: %s", err.message);
            return;
        }
        m->capsvms = m->nsvms;
        sample_send(m);
        return;
    }
    m->reading = true;
    m->cursor[0] = 0;
    sample_read(m);
}

void monitor_tick(struct monitor *m)
{
    sample_start(m, false);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    monitor_tick(arg);
}

static void on_notify_result(void *ctx, const char *channel, const char *rule, int attempt, bool ok,
                             bool final, const char *detail)
{
    struct monitor *m = ctx;
    if (!ok)
        m->notify_failures_total++;
    ctl_event(m->ctl, "alert", rule, "notify", ok ? "ok" : (final ? "error" : "info"),
              "%s attempt %d: %s%s", channel, attempt, detail,
              !ok && !final ? " (will retry)" : "");
}

int monitor_init(struct monitor *m, struct ctl *c, const struct yun_config *cfg, char *err,
                 size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->ctl = c;
    m->cfg = cfg;
    series_init(&m->ss);
    if (gethostname(m->hostname, sizeof(m->hostname)) < 0)
        snprintf(m->hostname, sizeof(m->hostname), "localhost");
    struct notify_config nc = {0};
    snprintf(nc.smtp_url, sizeof(nc.smtp_url), "%s", cfg->smtp_url);
    snprintf(nc.smtp_from, sizeof(nc.smtp_from), "%s", cfg->smtp_from);
    snprintf(nc.smtp_user, sizeof(nc.smtp_user), "%s", cfg->smtp_user);
    if (cfg->smtp_password_file[0]) {
        char *pw = read_file(cfg->smtp_password_file, sizeof(nc.smtp_password) - 1, NULL);
        if (!pw) {
            snprintf(err, errlen, "cannot read smtp_password_file %s: %s", cfg->smtp_password_file,
                     strerror(errno));
            return -1;
        }
        pw[strcspn(pw, "\r\n")] = 0;
        snprintf(nc.smtp_password, sizeof(nc.smtp_password), "%s", pw);
        free(pw);
    }
    nc.smtp_starttls = cfg->smtp_starttls;
    snprintf(nc.sms_url, sizeof(nc.sms_url), "%s", cfg->sms_url);
    snprintf(nc.sms_body, sizeof(nc.sms_body), "%s", cfg->sms_body);
    nc.retries = cfg->notify_retries;
    nc.backoff_ms = cfg->notify_backoff_ms;
    nc.timeout_s = cfg->notify_timeout_s;
    m->notifier = notifier_start(c->base, &nc, on_notify_result, m);
    if (!m->notifier) {
        snprintf(err, errlen, "cannot start the notifier thread");
        return -1;
    }
    monitor_reload_rules(m);
    c->on_host_sample = monitor_host_sample;
    c->on_host_sample_ctx = m;
    m->timer = event_new(c->base, -1, EV_PERSIST, tick_cb, m);
    m->slice = evtimer_new(c->base, slice_cb, m);
    struct timeval tv = {cfg->sample_interval_s, 0};
    event_add(m->timer, &tv);
    sample_start(m, true); /* a first reading, so the first tick has rates */
    return 0;
}

void monitor_shutdown(struct monitor *m)
{
    if (m->timer)
        event_free(m->timer);
    m->timer = NULL;
    if (m->slice)
        event_free(m->slice);
    m->slice = NULL;
    m->reading = false;
    if (m->ctl && m->ctl->on_host_sample_ctx == m) {
        m->ctl->on_host_sample = NULL;
        m->ctl->on_host_sample_ctx = NULL;
    }
    while (m->samples) {
        struct mon_sample *ms = m->samples;
        m->samples = ms->next;
        ctl_host_cancel(m->ctl, ms->host, ms->call);
        ctl_agents_forget(m->ctl, ms);
        free(ms);
    }
    free(m->svms);
    m->svms = NULL;
    notifier_stop(m->notifier);
    m->notifier = NULL;
    while (m->vms) {
        struct vm_mon *v = m->vms;
        m->vms = v->next;
        free(v);
    }
    while (m->hosts) {
        struct host_mon *h = m->hosts;
        m->hosts = h->next;
        free(h);
    }
    while (m->slots) {
        struct alert_slot *s = m->slots;
        m->slots = s->next;
        free(s);
    }
    free(m->rules);
    m->rules = NULL;
    series_free(&m->ss);
}
