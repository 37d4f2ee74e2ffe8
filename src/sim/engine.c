/* engine.c - the simulation loop. Time advances in control intervals; inside an
 * interval the engine also stops at every migration completion, because that is
 * where CPU shares, energy and SLA bookkeeping change. The CPU-sharing physics
 * (per-core caps, proportional scaling when oversubscribed, 10 % migration
 * overhead) and the metrics (SLATAH, PDM, SLAV, ESV) live here; every decision
 * is delegated to src/sched. */
#include "sim/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct mig {
    int vm, to, seq;
    bool stale_out; /* target still lists the VM as migrating out (see left_add) */
    double done;
} mig;

typedef struct entry {
    double t, alloc, req;
    bool flag, valid;
} entry;

typedef struct eng {
    const sim_dc *dc;
    const sim_trace *tr;
    const sim_opts *o;
    sched_model m;
    int H, V;
    bool *removed;
    int *pending; /* migrations in flight per VM */
    int **left;   /* per VM: hosts it migrated away from and has not lived on since */
    int *nleft, *capleft;
    double *prev_u, *sumc, *reqh, *util, *capv;
    double *req, *vmips; /* compact per-VM demand and size: physics walks them a lot */
    int *vcpus;
    double req_t;           /* time the VM demands were last evaluated at */
    unsigned char *touched; /* hosts changed by migrations at the current instant */
    uint16_t *tmaj;         /* the trace transposed to time-major: one event reads a row */
    entry *hlast, *vlast;
    double active_time, viol_time, vm_req_int, vm_alloc_int, vm_under_mig;
    double energy_j, last_t;
    mig *migs;
    int nmig, capmig, seq;
    int finished;
} eng;

int sim_policy_parse(const char *s, sim_opts *o)
{
    sched_consol_defaults(&o->consol);
    if (strcmp(s, "npa") == 0) {
        o->alg = SIM_ALG_NPA;
        return 0;
    }
    if (strcmp(s, "dvfs") == 0) {
        o->alg = SIM_ALG_DVFS;
        return 0;
    }
    char det[16], sel[16];
    double p;
    char tail;
    if (sscanf(s, "%15[a-z]-%15[a-z]-%lf%c", det, sel, &p, &tail) != 3 || !(p >= 0))
        return -1;
    static const struct {
        const char *n;
        sched_detector d;
    } dets[] = {{"thr", SCHED_DET_THR},
                {"iqr", SCHED_DET_IQR},
                {"mad", SCHED_DET_MAD},
                {"lr", SCHED_DET_LR},
                {"lrr", SCHED_DET_LRR}};
    static const struct {
        const char *n;
        sched_selector s;
    } sels[] = {
        {"mmt", SCHED_SEL_MMT}, {"rs", SCHED_SEL_RS}, {"mc", SCHED_SEL_MC}, {"mu", SCHED_SEL_MU}};
    int okd = 0, oks = 0;
    for (size_t i = 0; i < sizeof(dets) / sizeof(dets[0]); i++)
        if (strcmp(det, dets[i].n) == 0) {
            o->consol.det = dets[i].d;
            okd = 1;
        }
    for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++)
        if (strcmp(sel, sels[i].n) == 0) {
            o->consol.sel = sels[i].s;
            oks = 1;
        }
    if (!okd || !oks)
        return -1;
    o->consol.param = p;
    o->alg = SIM_ALG_DYNAMIC;
    return 0;
}

void sim_result_free(sim_result *r)
{
    free(r->series_t);
    free(r->series_power_w);
    free(r->series_active);
    memset(r, 0, sizeof(*r));
}

/* where time t falls in the trace: the same for every VM, so computed once;
 * sample indices past the end repeat the last sample (as the reference does) */
typedef struct tpos {
    const uint16_t *r1, *r2; /* time-major rows of the two samples around t */
    bool exact;
    double span, off;
} tpos;

static const uint16_t *step_row(const eng *e, int i)
{
    if (i >= e->tr->nsteps)
        i = e->tr->nsteps - 1;
    if (i < 0)
        i = 0;
    return e->tmaj + (size_t)i * (size_t)e->V;
}

static tpos time_pos(const eng *e, double t)
{
    double I = e->tr->interval;
    tpos p = {0};
    if (fmod(t, I) == 0) {
        p.exact = true;
        p.r1 = step_row(e, (int)(t / I));
        return p;
    }
    int i1 = (int)floor(t / I), i2 = (int)ceil(t / I);
    p.r1 = step_row(e, i1);
    p.r2 = step_row(e, i2);
    p.span = (i2 - i1) * I;
    p.off = t - i1 * I;
    return p;
}

/* utilisation at time t, linear between samples (the reference's arithmetic) */
static double util_at(const tpos *p, int v)
{
    double u1 = p->r1[v] / 10000.0;
    if (p->exact)
        return u1;
    double u2 = p->r2[v] / 10000.0;
    return u1 + (u2 - u1) / p->span * p->off;
}

static void host_entry(eng *e, int h, double t, double alloc, double req, bool active)
{
    entry *l = &e->hlast[h];
    if (l->valid && l->t != t) {
        double dt = t - l->t;
        if (l->flag) {
            e->active_time += dt;
            if (l->alloc < l->req)
                e->viol_time += dt;
        }
    }
    *l = (entry){t, alloc, req, active, true};
}

static void vm_entry(eng *e, int v, double t, double alloc, double req, bool inmig)
{
    entry *l = &e->vlast[v];
    if (l->valid && l->t != t) {
        double dt = t - l->t;
        e->vm_req_int += l->req * dt;
        e->vm_alloc_int += l->alloc * dt;
        if (l->alloc < l->req && l->flag)
            e->vm_under_mig += (l->req - l->alloc) * dt;
    }
    *l = (entry){t, alloc, req, inmig, true};
}

/* a VM's vCPU never gets more than one physical core */
static inline double capped_req(const sched_host *h, double req, int vcpus)
{
    double per = req / vcpus;
    return (per > h->core_mips ? h->core_mips : per) * vcpus;
}

/* the library sees the demands at each control step */
static void sync_req(eng *e)
{
    for (int v = 0; v < e->V; v++)
        e->m.vms[v].req_mips = e->req[v];
}

/* Recomputes every host's CPU shares at time t and books energy since the
 * previous computation (when energy), VM histories and finished VMs. */
static void physics(eng *e, double t, bool energy, bool hist, bool remove,
                    const unsigned char *only)
{
    sched_model *m = &e->m;
    if (t != e->req_t) { /* demands only change with time */
        tpos tp = time_pos(e, t);
        for (int v = 0; v < e->V; v++)
            if (!e->removed[v])
                e->req[v] = util_at(&tp, v) * e->vmips[v];
        e->req_t = t;
    }
    for (int h = 0; h < e->H; h++) {
        if (only && !only[h])
            continue;
        sched_host *hh = &m->hosts[h];
        double s = 0, r = 0;
        for (int k = 0; k < hh->nvms; k++) {
            int v = hh->vms[k];
            double c = capped_req(hh, e->req[v], e->vcpus[v]);
            e->capv[v] = c;
            s += c;
            r += e->req[v];
        }
        e->sumc[h] = s;
        e->reqh[h] = r;
    }
    /* the destination of a migration reserves 10 % of the VM's demand */
    for (int i = 0; i < e->nmig; i++) {
        if (only && !only[e->migs[i].to])
            continue;
        int v = e->migs[i].vm;
        e->sumc[e->migs[i].to] +=
            0.1 * capped_req(&m->hosts[e->migs[i].to], e->req[v], e->vcpus[v]);
        e->reqh[e->migs[i].to] += e->req[v];
    }
    double dt = t - e->last_t;
    bool book = energy && dt > 0;
    for (int h = 0; h < e->H; h++) {
        if (only && !only[h])
            continue;
        sched_host *hh = &m->hosts[h];
        double cap = sched_host_capacity(hh);
        bool over = e->sumc[h] > cap;
        double scale = over ? cap / e->sumc[h] : 1, util = 0;
        for (int k = 0; k < hh->nvms; k++) {
            int v = hh->vms[k];
            bool out = e->pending[v] > 0;
            double a = e->capv[v] * scale;
            if (out)
                a *= 0.9; /* live migration costs the VM 10 % of its CPU */
            if (over)
                a = floor(a);
            util += out ? a / 0.9 : a;
            vm_entry(e, v, t, a, e->req[v], out);
        }
        e->util[h] = util;
    }
    for (int i = 0; i < e->nmig; i++) {
        int h = e->migs[i].to;
        if (only && !only[h])
            continue;
        sched_host *hh = &m->hosts[h];
        double cap = sched_host_capacity(hh);
        bool over = e->sumc[h] > cap;
        int v = e->migs[i].vm;
        /* the reference's scheduler reserves 10 % for an incoming VM, but hands it
         * 90 % when the host still lists the VM as migrating out from an earlier
         * move (its per-host list is never cleaned when a VM leaves) */
        double share = e->migs[i].stale_out ? 0.9 : 0.1;
        double a = share * capped_req(hh, e->req[v], e->vcpus[v]) * (over ? cap / e->sumc[h] : 1);
        e->util[h] += over ? floor(a) : a;
    }
    for (int h = 0; h < e->H; h++) {
        if (only && !only[h])
            continue;
        sched_host *hh = &m->hosts[h];
        double cap = sched_host_capacity(hh);
        double u = e->util[h] / cap;
        if (u > 1)
            u = 1; /* (1, 1.01) is rounding in the reference; beyond is impossible here */
        host_entry(e, h, t, e->util[h], e->reqh[h], e->util[h] > 0);
        if (book) {
            if (e->o->alg == SIM_ALG_NPA)
                e->energy_j += sched_power_at(&hh->power, 1) * dt;
            else if (e->prev_u[h] != 0)
                e->energy_j +=
                    (sched_power_at(&hh->power, e->prev_u[h]) + sched_power_at(&hh->power, u)) / 2 *
                    dt;
        }
        e->prev_u[h] = u;
        hh->util_mips = e->util[h];
        hh->alloc_mips = e->sumc[h];
    }
    if (hist)
        for (int v = 0; v < e->V; v++)
            if (!e->removed[v] && m->vms[v].host >= 0)
                sched_vm_push_hist(&m->vms[v], e->req[v] / e->vmips[v]);
    /* a VM whose demand dropped to zero has finished its work and leaves */
    if (remove && e->o->cloudsim)
        for (int v = 0; v < e->V; v++)
            if (!e->removed[v] && !e->pending[v] && e->req[v] == 0 && m->vms[v].host >= 0) {
                m->vms[v].req_mips = 0;
                sched_model_detach(m, v);
                e->removed[v] = true;
                e->finished++;
            }
    if (book)
        e->last_t = t;
}

static bool left_has(const eng *e, int v, int h)
{
    for (int i = 0; i < e->nleft[v]; i++)
        if (e->left[v][i] == h)
            return true;
    return false;
}

static void left_add(eng *e, int v, int h)
{
    if (left_has(e, v, h))
        return;
    if (e->nleft[v] == e->capleft[v]) {
        int nc = e->capleft[v] ? e->capleft[v] * 2 : 4;
        int *p = realloc(e->left[v], (size_t)nc * sizeof(int));
        if (!p)
            return; /* only affects a second-order CloudSim quirk */
        e->left[v] = p;
        e->capleft[v] = nc;
    }
    e->left[v][e->nleft[v]++] = h;
}

static void left_del(eng *e, int v, int h)
{
    for (int i = 0; i < e->nleft[v]; i++)
        if (e->left[v][i] == h) {
            e->left[v][i] = e->left[v][--e->nleft[v]];
            return;
        }
}

static int cmp_mig(const void *a, const void *b)
{
    const mig *x = a, *y = b;
    if (x->done != y->done)
        return x->done < y->done ? -1 : 1;
    return x->seq - y->seq;
}

static int start_migrations(eng *e, const sched_plan *p, double t)
{
    for (int i = 0; i < p->n; i++) {
        const sched_migration *mv = &p->moves[i];
        if (e->nmig == e->capmig) {
            int nc = e->capmig ? e->capmig * 2 : 256;
            mig *q = realloc(e->migs, (size_t)nc * sizeof(mig));
            if (!q)
                return -1;
            e->migs = q;
            e->capmig = nc;
        }
        const sched_host *to = &e->m.hosts[mv->to];
        double mbps = to->bw_mbps * e->o->consol.mig_bw_share / 8.0;
        double dur = mbps > 0 ? e->m.vms[mv->vm].ram_mb / mbps : 0;
        bool stale = e->o->cloudsim && left_has(e, mv->vm, mv->to);
        e->migs[e->nmig++] = (mig){mv->vm, mv->to, e->seq++, stale, t + dur};
        e->pending[mv->vm]++;
        e->m.vms[mv->vm].in_migration = true;
        e->touched[e->m.vms[mv->vm].host] = e->touched[mv->to] = 1;
    }
    return 0;
}

/* completes every migration that ends before limit, stopping at each distinct end time */
static void finish_migrations(eng *e, double limit)
{
    qsort(e->migs, (size_t)e->nmig, sizeof(mig), cmp_mig);
    int i = 0;
    while (i < e->nmig && e->migs[i].done <= limit) {
        double c = e->migs[i].done;
        int j = i;
        while (j < e->nmig && e->migs[j].done == c)
            j++;
        /* shares just before the moves (energy booked up to c), then after them */
        physics(e, c, true, false, true, NULL);
        for (int k = i; k < j; k++) {
            int v = e->migs[k].vm;
            e->touched[e->m.vms[v].host] = e->touched[e->migs[k].to] = 1;
            if (e->o->cloudsim) {
                left_add(e, v, e->m.vms[v].host);
                left_del(e, v, e->migs[k].to);
            }
            sched_model_detach(&e->m, v);
            sched_model_attach(&e->m, v, e->migs[k].to);
            if (--e->pending[v] == 0)
                e->m.vms[v].in_migration = false;
        }
        memmove(e->migs + i, e->migs + j, (size_t)(e->nmig - j) * sizeof(mig));
        e->nmig -= j - i;
        /* only the hosts the moves touched can change at the same instant */
        physics(e, c, false, false, true, e->touched);
        memset(e->touched, 0, (size_t)e->H);
    }
}

static int build(eng *e)
{
    const sim_dc *dc = e->dc;
    sched_model_init(&e->m);
    int left[SIM_MAX_TYPES], ti = 0, total = 0;
    for (int k = 0; k < dc->nhtypes; k++)
        total += left[k] = dc->htypes[k].count;
    for (int i = 0; i < e->H; i++) {
        /* types interleave (host i has type i % ntypes) until a type runs out */
        if (total >= e->H)
            while (left[ti % dc->nhtypes] <= 0)
                ti++;
        const sim_host_type *ht = &dc->htypes[ti % dc->nhtypes];
        left[ti % dc->nhtypes]--;
        ti++;
        sched_host h;
        sched_host_defaults(&h);
        snprintf(h.name, sizeof(h.name), "%.32s-%d", ht->name, i);
        h.cores = ht->cores;
        h.core_mips = ht->core_mips;
        h.ram_mb = ht->ram_mb;
        h.bw_mbps = ht->bw_mbps;
        h.power = ht->power;
        if (sched_model_add_host(&e->m, &h) < 0)
            return -1;
    }
    int per = (e->V + dc->nvtypes - 1) / dc->nvtypes;
    for (int i = 0; i < e->V; i++) {
        int vti = e->o->vm_type_block ? i / (per ? per : 1) : i % dc->nvtypes;
        const sim_vm_type *vt = &dc->vtypes[vti];
        sched_vm v;
        sched_vm_defaults(&v);
        snprintf(v.name, sizeof(v.name), "vm-%d", i);
        v.vcpus = vt->vcpus;
        v.mips = vt->mips;
        v.ram_mb = vt->ram_mb;
        v.bw_mbps = vt->bw_mbps;
        v.req_mips = v.mips; /* a VM being created asks for its full size */
        if (sched_model_add_vm(&e->m, &v) < 0)
            return -1;
    }
    return 0;
}

static void initial_placement(eng *e)
{
    if (e->o->alg == SIM_ALG_DYNAMIC && e->o->initial_pabfd) {
        sched_pabfd_place_all(&e->m, &e->o->consol);
    } else {
        sched_place_opts po = {.policy = SCHED_POL_FIRST_FIT, .use_requested = true};
        sched_place_all(&e->m, &po);
    }
    for (int v = 0; v < e->V; v++)
        if (e->m.vms[v].host < 0)
            e->removed[v] = true; /* never started: no host could take it */
}

int sim_run(const sim_dc *dc, const sim_trace *tr, const sim_opts *o, sim_result *res)
{
    memset(res, 0, sizeof(*res));
    eng e = {.dc = dc, .tr = tr, .o = o, .H = dc->nhosts, .V = tr->nvms};
    int rc = -1;
    e.removed = calloc((size_t)e.V + 1, sizeof(bool));
    e.pending = calloc((size_t)e.V + 1, sizeof(int));
    e.vlast = calloc((size_t)e.V + 1, sizeof(entry));
    e.hlast = calloc((size_t)e.H + 1, sizeof(entry));
    e.prev_u = calloc((size_t)e.H + 1, sizeof(double));
    e.sumc = calloc((size_t)e.H + 1, sizeof(double));
    e.reqh = calloc((size_t)e.H + 1, sizeof(double));
    e.util = calloc((size_t)e.H + 1, sizeof(double));
    e.capv = calloc((size_t)e.V + 1, sizeof(double));
    e.touched = calloc((size_t)e.H + 1, 1);
    e.req = calloc((size_t)e.V + 1, sizeof(double));
    e.vmips = calloc((size_t)e.V + 1, sizeof(double));
    e.vcpus = calloc((size_t)e.V + 1, sizeof(int));
    e.left = calloc((size_t)e.V + 1, sizeof(int *));
    e.tmaj = malloc(((size_t)e.V * (size_t)tr->nsteps + 1) * sizeof(uint16_t));
    if (e.tmaj)
        for (int v = 0; v < e.V; v++)
            for (int k = 0; k < tr->nsteps; k++)
                e.tmaj[(size_t)k * (size_t)e.V + (size_t)v] =
                    tr->u[(size_t)v * (size_t)tr->nsteps + (size_t)k];
    e.nleft = calloc((size_t)e.V + 1, sizeof(int));
    e.capleft = calloc((size_t)e.V + 1, sizeof(int));
    e.req_t = -1;
    sched_rng rng;
    sched_rng_seed(&rng, o->seed);
    sched_consol_opts co = o->consol;
    co.rng = &rng;
    sim_opts o2 = *o;
    o2.consol = co;
    e.o = &o2;
    if (!e.removed || !e.pending || !e.vlast || !e.hlast || !e.prev_u || !e.sumc || !e.reqh ||
        !e.util || !e.capv || !e.touched || !e.req || !e.vmips || !e.vcpus || !e.left || !e.nleft ||
        !e.capleft || e.H <= 0 || build(&e))
        goto out;
    initial_placement(&e);
    for (int v = 0; v < e.V; v++) {
        e.m.vms[v].req_mips = 0;
        e.vmips[v] = e.m.vms[v].mips;
        e.vcpus[v] = e.m.vms[v].vcpus > 0 ? e.m.vms[v].vcpus : 1;
        if (o->cloudsim) {
            /* the reference workload's RAM and bandwidth utilisation models are
             * null: once created, a VM is charged no RAM or bandwidth */
            e.m.vms[v].ram_active_mb = e.m.vms[v].bw_active_mbps = 0;
        }
    }
    if (o->cloudsim)
        for (int h = 0; h < e.H; h++)
            sched_model_recompute_host(&e.m, h);

    double I = tr->interval, dur = o->duration > 0 ? o->duration : tr->nsteps * I;
    /* the reference starts the workload 0.1 s after the VMs exist and then
     * observes every interval; times accumulate exactly as its event queue does */
    double t = 0.1;
    e.last_t = t;
    int nsteps = 0;
    for (double tt = t + I; tt <= dur; tt += I)
        nsteps++;
    if (o->keep_series) {
        res->series_t = calloc((size_t)nsteps + 1, sizeof(double));
        res->series_power_w = calloc((size_t)nsteps + 1, sizeof(double));
        res->series_active = calloc((size_t)nsteps + 1, sizeof(int));
    }
    long migrations = 0;
    sched_plan plan = {0};
    for (int k = 1; k <= nsteps; k++) {
        t += I;
        physics(&e, t, true, fmod(t - 0.1, I) == 0 || !o->cloudsim, true, NULL);
        if (o->keep_series && res->series_t) {
            double pw = 0;
            int act = 0;
            for (int h = 0; h < e.H; h++)
                if (e.prev_u[h] > 0) {
                    act++;
                    pw += sched_power_at(&e.m.hosts[h].power, e.prev_u[h]);
                }
            res->series_t[res->nseries] = t;
            res->series_power_w[res->nseries] = pw;
            res->series_active[res->nseries++] = act;
        }
        if (o->alg == SIM_ALG_DYNAMIC) {
            sync_req(&e);
            plan.n = 0;
            if (sched_consolidate(&e.m, &e.o->consol, &plan))
                goto out;
            migrations += plan.n;
            if (plan.n) {
                if (start_migrations(&e, &plan, t))
                    goto out;
                physics(&e, t, false, false, false, e.touched);
                memset(e.touched, 0, (size_t)e.H);
                finish_migrations(&e, dur);
            }
        }
        if (o->progress && (k % (nsteps / 10 ? nsteps / 10 : 1) == 0 || k == nsteps))
            fprintf(stderr, "sim: %3d%%  t=%.0fs  migrations=%ld  energy=%.2f kWh\n",
                    k * 100 / nsteps, t, migrations, e.energy_j / 3.6e6);
    }
    sched_plan_free(&plan);
    res->energy_kwh = e.energy_j / 3.6e6;
    res->migrations = migrations;
    res->slatah = e.active_time > 0 ? e.viol_time / e.active_time : 0;
    res->pdm = e.vm_req_int > 0 ? e.vm_under_mig / e.vm_req_int : 0;
    res->slav = res->slatah * res->pdm;
    res->esv = res->energy_kwh * res->slav;
    res->overall_sla = e.vm_req_int > 0 ? (e.vm_req_int - e.vm_alloc_int) / e.vm_req_int : 0;
    res->nhosts = e.H;
    res->nvms = e.V;
    res->steps = nsteps;
    res->vms_finished = e.finished;
    rc = 0;
out:
    sched_model_free(&e.m);
    free(e.removed);
    free(e.pending);
    free(e.vlast);
    free(e.hlast);
    free(e.prev_u);
    free(e.sumc);
    free(e.reqh);
    free(e.util);
    free(e.capv);
    free(e.touched);
    free(e.req);
    free(e.vmips);
    free(e.vcpus);
    for (int v = 0; e.left && v < e.V; v++)
        free(e.left[v]);
    free(e.left);
    free(e.tmaj);
    free(e.nleft);
    free(e.capleft);
    free(e.migs);
    return rc;
}
