/*
 * migrate_plan.c - a move's plan before it starts (ctl_migrate_plan in
 * ctl/migrate.h; POST /v1/vms/{name}/migrate/plan, `yun vm migrate
 * --dry-run`): the same checks as the move (mig_check, dry: nothing
 * reserved), then the guest's dirty-page rate measured on the source
 * (QMP calc-dirty-rate for PLAN_CALC_S, then query-dirty-rate until
 * "measured", through the agent's vm.qmp: nothing on the loop waits), and
 * the pre-copy model (sched/migrate_model.c) run on it. Nothing changes.
 *
 * Before the dirty rate, the link from the source to the target is measured
 * (the target agent's link.sink, the source agent's link.probe: LINK_PROBE_MS
 * of TCP between the addresses the move's own streams use) unless it was
 * within LINK_TTL_MS (ctl/links.h). The model gets the smaller of it and
 * --max-bandwidth; a link that could not be measured is logged, the reason
 * kept in "link": {"why"}, and 1 Gbit/s is "assumed" (a host that cannot
 * be reached fails the move's own steps, which roll it back).
 */
#include "ctl/migrate_int.h"

#include "ctl/hosts.h"
#include "ctl/links.h"
#include "ctl/vms_int.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/migrate_model.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAN_CALC_S   1    /* calc-dirty-rate's sample, seconds */
#define PLAN_SAMPLES  1024 /* pages sampled per GiB (QEMU's default 512) */
#define PLAN_POLLS    20   /* query-dirty-rate tries, PLAN_POLL_MS apart */
#define PLAN_POLL_MS  250
#define PLAN_SETUP_MS 300.0 /* target QEMU's start and the handshake */

struct plan {
    struct ctl *c;
    struct vm_rec vm;
    struct migrate_opts o;
    char target[37];
    char source[37];
    migrate_plan_cb cb;
    void *arg;
    struct event *timer;
    int polls;
    struct link_view link;
};

static void plan_end(struct plan *p, json_t *plan, const struct yerr *err)
{
    p->cb(p->arg, plan, err);
    json_decref(plan);
    ctl_agents_forget(p->c, p);
    if (p->timer)
        event_free(p->timer);
    free(p);
}

/* ---- the move's own prediction (its first step) ---- */

static void mpred_query(struct mig *m, json_t *res, const struct yerr *err);

/* The refusal of a move whose pre-copy cannot converge, with the numbers
 * and what would help. */
static void no_converge(struct yerr *e, double mibs, const struct mig_model_in *in,
                        const struct mig_model_out *out, const struct link_view *l)
{
    char help[160];
    if (!strcmp(l->source, "max_bandwidth"))
        snprintf(help, sizeof help, "give --auto-converge or a higher --max-bandwidth");
    else if (!strcmp(l->source, "measured"))
        snprintf(help, sizeof help, "the link measured %.1f MiB/s: give --auto-converge",
                 l->measured_bps / 1048576.0);
    else
        snprintf(help, sizeof help, "the link was not measured (%s): give --auto-converge",
                 l->why[0] ? l->why : "1 Gbit/s assumed");
    yerr_set(e, YE_CONFLICT,
             "pre-copy cannot converge: the guest dirties %.1f MiB/s, the move sends %.1f MiB/s; "
             "after %d rounds the stop would take %.0f ms (max downtime %d ms): %s",
             mibs, in->bandwidth_bps / 1048576.0, out->rounds, out->downtime_ms,
             in->max_downtime_ms ? in->max_downtime_ms : 300, help);
}

static void mpred_go(struct mig *m, const char *why)
{
    if (why)
        log_warn("migration %s of vm %s: no prediction (%s)", m->row.id, m->row.vm_name, why);
    m->polls = 0;
    m->after_predict(m);
}

static void mpred_poll(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (err) {
        mig_fail(m, err);
        return;
    }
    mig_qmp(m, m->row.source, "query-dirty-rate", NULL, mpred_query);
}

static void mpred_calc(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (err) {
        mpred_go(m, err->message);
        return;
    }
    mig_later(m, PLAN_CALC_S * 1000 + 100, mpred_poll);
}

static void mpred_query(struct mig *m, json_t *res, const struct yerr *err)
{
    if (err) {
        mpred_go(m, err->message);
        return;
    }
    const char *st = json_string_value(json_object_get(res, "status"));
    if (!st || strcmp(st, "measured")) {
        if (++m->polls >= PLAN_POLLS)
            mpred_go(m, "the dirty rate was not measured in time");
        else
            mig_later(m, PLAN_POLL_MS, mpred_poll);
        return;
    }
    double mibs = (double)json_integer_value(json_object_get(res, "dirty-rate"));
    ctl_link_choose(&m->link, m->o.max_bandwidth);
    struct mig_model_in in = {.ram_bytes = m->vm.memory_mb << 20,
                              .dirty_bps = mibs * 1048576.0,
                              .bandwidth_bps = m->link.bandwidth_bps,
                              .max_downtime_ms = m->o.max_downtime_ms,
                              .auto_converge = m->o.auto_converge,
                              .setup_ms = PLAN_SETUP_MS};
    struct mig_model_out out;
    if (mig_model_predict(&in, &out) < 0) {
        mpred_go(m, "the model has no answer for these figures");
        return;
    }
    m->prediction = mig_prediction_json(&in, &out);
    if (m->prediction)
        json_object_set_new(m->prediction, "link", ctl_link_json(&m->link));
    if (m->prediction && m->detail)
        json_object_set(m->detail, "prediction", m->prediction);
    if (!out.converges) {
        struct yerr e;
        no_converge(&e, mibs, &in, &out, &m->link);
        mig_fail(m, &e);
        return;
    }
    mpred_go(m, NULL);
}

static void mpred_rate(struct mig *m)
{
    json_t *a = json_pack("{s:i,s:i}", "calc-time", PLAN_CALC_S, "sample-pages", PLAN_SAMPLES);
    mig_qmp(m, m->row.source, "calc-dirty-rate", a, mpred_calc);
}

/* A link not measured: the reason kept and logged, the move goes on. */
static void link_unmeasured(struct link_view *l, const char *vm, const char *why)
{
    snprintf(l->why, sizeof l->why, "%s", why);
    log_warn("vm %s: the link to the target was not measured (%s)", vm, why);
}

/* The source's link.probe answered (err: it failed): the figure taken and
 * kept, or the reason it is missing. */
static void link_probed(struct ctl *c, struct link_view *l, const char *vm, const char *source,
                        const char *target, json_t *res, const struct yerr *err)
{
    struct yerr e;
    double bps;
    if (err)
        link_unmeasured(l, vm, err->message);
    else if (ctl_link_probe_bps(res, &bps, &e) < 0)
        link_unmeasured(l, vm, e.message);
    else {
        l->measured_bps = bps;
        ctl_link_note(c, source, target, bps);
    }
}

static void mlink_probe(struct mig *m, json_t *res, const struct yerr *err)
{
    link_probed(m->c, &m->link, m->row.vm_name, m->row.source, m->row.target, res, err);
    mpred_rate(m);
}

static void mlink_sink(struct mig *m, json_t *res, const struct yerr *err)
{
    struct yerr e;
    json_t *a = err ? NULL : ctl_link_probe_args(res, &e);
    if (!a) {
        link_unmeasured(&m->link, m->row.vm_name, err ? err->message : e.message);
        mpred_rate(m);
        return;
    }
    mig_call(m, m->row.source, AV_LINK_PROBE, a, mlink_probe);
}

void mig_predict(struct mig *m, void (*then)(struct mig *m))
{
    m->after_predict = then;
    memset(&m->link, 0, sizeof m->link);
    if (ctl_link_cached(m->c, m->row.source, m->row.target, &m->link.measured_bps,
                        &m->link.age_ms)) {
        mpred_rate(m);
        return;
    }
    mig_call(m, m->row.target, AV_LINK_SINK, json_object(), mlink_sink);
}

json_t *mig_prediction_json(const struct mig_model_in *in, const struct mig_model_out *out)
{
    return json_pack(
        "{s:b,s:i,s:I,s:I,s:I,s:f,s:f,s:I,s:I,s:i,s:b}", "converges", out->converges, "rounds",
        out->rounds, "total_ms", (json_int_t)(out->total_ms + 0.5), "downtime_ms",
        (json_int_t)(out->downtime_ms + 0.5), "bytes", (json_int_t)out->bytes, "throttle_pct",
        out->throttle_pct, "ratio", out->ratio, "dirty_bps", (json_int_t)in->dirty_bps,
        "bandwidth_bps", (json_int_t)in->bandwidth_bps, "max_downtime_ms",
        in->max_downtime_ms ? in->max_downtime_ms : 300, "auto_converge", in->auto_converge);
}

static void predict(struct plan *p, double dirty_mibs)
{
    struct ctl *c = p->c;
    ctl_link_choose(&p->link, p->o.max_bandwidth);
    struct mig_model_in in = {.ram_bytes = p->vm.memory_mb << 20,
                              .dirty_bps = dirty_mibs * 1048576.0,
                              .bandwidth_bps = p->link.bandwidth_bps,
                              .max_downtime_ms = p->o.max_downtime_ms,
                              .auto_converge = p->o.auto_converge,
                              .setup_ms = PLAN_SETUP_MS};
    struct mig_model_out out;
    struct yerr e;
    if (mig_model_predict(&in, &out) < 0) {
        yerr_set(&e, YE_INTERNAL, "the prediction has no answer for these figures");
        plan_end(p, NULL, &e);
        return;
    }
    json_t *pred = mig_prediction_json(&in, &out);
    json_t *lj = ctl_link_json(&p->link);
    json_t *plan =
        json_pack("{s:{s:s,s:s},s:s,s:o,s:o}", "target", "id", p->target, "name",
                  ctl_host_label(c, p->target), "strategy",
                  p->o.to[0] ? "to" : (p->o.strategy[0] ? p->o.strategy : "least-loaded"),
                  "prediction", pred ? pred : json_null(), "link", lj ? lj : json_null());
    if (!plan) {
        yerr_set(&e, YE_INTERNAL, "out of memory");
        plan_end(p, NULL, &e);
        return;
    }
    if (!out.converges) {
        no_converge(&e, dirty_mibs, &in, &out, &p->link);
        plan_end(p, plan, &e);
        return;
    }
    plan_end(p, plan, NULL);
}

static void poll_rate(struct plan *p);

static void on_query(void *ctx, json_t *res, const struct yerr *err)
{
    struct plan *p = ctx;
    if (err) {
        plan_end(p, NULL, err);
        return;
    }
    json_t *r = json_object_get(res, "return");
    const char *st = json_string_value(json_object_get(r, "status"));
    if (st && !strcmp(st, "measured")) {
        predict(p, (double)json_integer_value(json_object_get(r, "dirty-rate")));
        return;
    }
    if (++p->polls >= PLAN_POLLS) {
        struct yerr e;
        yerr_set(&e, YE_UNAVAILABLE, "the dirty-page rate of vm '%s' was not measured (%s)",
                 p->vm.name, st ? st : "no status");
        plan_end(p, NULL, &e);
        return;
    }
    struct timeval tv = {0, PLAN_POLL_MS * 1000};
    if (evtimer_add(p->timer, &tv) < 0) {
        struct yerr e;
        yerr_set(&e, YE_INTERNAL, "out of memory");
        plan_end(p, NULL, &e);
    }
}

static void poll_rate(struct plan *p)
{
    json_t *a = json_pack("{s:s,s:s}", "vm", p->vm.id, "command", "query-dirty-rate");
    if (!a || !ctl_host_call(p->c, p->source, AV_VM_QMP, a, on_query, NULL, p)) {
        struct yerr e;
        yerr_set(&e, YE_INTERNAL, "agent: the call could not be made");
        plan_end(p, NULL, &e);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    poll_rate(arg);
}

static void on_calc(void *ctx, json_t *res, const struct yerr *err)
{
    (void)res;
    struct plan *p = ctx;
    if (err) {
        plan_end(p, NULL, err);
        return;
    }
    struct timeval tv = {PLAN_CALC_S, 100 * 1000};
    if (evtimer_add(p->timer, &tv) < 0) {
        struct yerr e;
        yerr_set(&e, YE_INTERNAL, "out of memory");
        plan_end(p, NULL, &e);
    }
}

static void plan_rate(struct plan *p)
{
    struct yerr e;
    json_t *a = json_pack("{s:s,s:s,s:{s:i,s:i}}", "vm", p->vm.id, "command", "calc-dirty-rate",
                          "arguments", "calc-time", PLAN_CALC_S, "sample-pages", PLAN_SAMPLES);
    if (!a || !ctl_host_call(p->c, p->source, AV_VM_QMP, a, on_calc, NULL, p)) {
        yerr_set(&e, YE_INTERNAL, "agent: the call could not be made");
        plan_end(p, NULL, &e);
    }
}

static void on_probe(void *ctx, json_t *res, const struct yerr *err)
{
    struct plan *p = ctx;
    link_probed(p->c, &p->link, p->vm.name, p->source, p->target, res, err);
    plan_rate(p);
}

static void on_sink(void *ctx, json_t *res, const struct yerr *err)
{
    struct plan *p = ctx;
    struct yerr e;
    json_t *a = err ? NULL : ctl_link_probe_args(res, &e);
    if (!a) {
        link_unmeasured(&p->link, p->vm.name, err ? err->message : e.message);
        plan_rate(p);
        return;
    }
    if (!ctl_host_call(p->c, p->source, AV_LINK_PROBE, a, on_probe, NULL, p)) {
        link_unmeasured(&p->link, p->vm.name, "agent: the call could not be made");
        plan_rate(p);
    }
}

void ctl_migrate_plan(struct ctl *c, const struct vm_rec *vm, const struct migrate_opts *o,
                      migrate_plan_cb cb, void *arg)
{
    struct yerr e = {0};
    struct plan *p = calloc(1, sizeof *p);
    if (!p) {
        yerr_set(&e, YE_INTERNAL, "out of memory");
        cb(arg, NULL, &e);
        return;
    }
    p->c = c;
    p->vm = *vm;
    p->o = *o;
    p->cb = cb;
    p->arg = arg;
    snprintf(p->source, sizeof p->source, "%s", vm->host[0] ? vm->host : ctl_local_host(c));
    p->timer = evtimer_new(c->base, on_timer, p);
    if (!p->timer) {
        yerr_set(&e, YE_INTERNAL, "out of memory");
        plan_end(p, NULL, &e);
        return;
    }
    if (mig_check(c, vm, o, true, p->target, &e) < 0 || !ctl_vm_agent(c, vm, &e)) {
        plan_end(p, NULL, &e);
        return;
    }
    if (vm->state == VM_STOPPED || vm->state == VM_CRASHED) {
        /* a cold move (migrate_cold.c): its files are copied, nothing runs,
         * so there is no dirty rate and no downtime to predict */
        json_t *plan = json_pack("{s:{s:s,s:s},s:s,s:b,s:n}", "target", "id", p->target, "name",
                                 ctl_host_label(c, p->target), "strategy",
                                 o->to[0] ? "to" : (o->strategy[0] ? o->strategy : "least-loaded"),
                                 "cold", 1, "prediction");
        if (!plan)
            yerr_set(&e, YE_INTERNAL, "out of memory");
        plan_end(p, plan, plan ? NULL : &e);
        return;
    }
    if (ctl_link_cached(c, p->source, p->target, &p->link.measured_bps, &p->link.age_ms)) {
        plan_rate(p);
        return;
    }
    json_t *a = json_object();
    if (!a || !ctl_host_call(c, p->target, AV_LINK_SINK, a, on_sink, NULL, p)) {
        link_unmeasured(&p->link, p->vm.name, "agent: the call could not be made");
        plan_rate(p);
    }
}
