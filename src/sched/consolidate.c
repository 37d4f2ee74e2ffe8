/* consolidate.c - one round of dynamic VM consolidation: overloaded hosts shed
 * VMs chosen by the selection policy, underloaded hosts are drained when all of
 * their VMs fit elsewhere, and every VM is re-placed by PABFD (power-aware best
 * fit decreasing). Planning works on the model itself and undoes every change
 * before returning, so the caller gets a plan and an untouched model. */
#include "sched/internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* undo log entry: VM vm was pushed to (add) or removed from (!add) host at pos */
typedef struct undo {
    int host, vm, pos;
    bool add;
} undo;

typedef struct cround {
    sched_model *m;
    const sched_consol_opts *o;
    undo *log;
    int nlog, caplog;
    double *planned;     /* per host MIPS planned in minus out this round (live utilisation) */
    sched_host_sig *sig; /* per host detector inputs, valid while sig_ok[h] */
    unsigned char *sig_ok;
    /* Hosts of one "shape" (same hardware, power curve, labels, state) that are
     * empty and idle are interchangeable: PABFD only needs the first of each. */
    signed char *shape; /* per host shape id, -1 if not tracked */
    int nshapes;
} cround;

#define MAX_SHAPES 32

static bool same_shape(const sched_host *a, const sched_host *b)
{
    if (a->cores != b->cores || a->core_mips != b->core_mips || a->ram_mb != b->ram_mb ||
        a->disk_gb != b->disk_gb || a->bw_mbps != b->bw_mbps || a->cpu_ratio != b->cpu_ratio ||
        a->ram_ratio != b->ram_ratio || a->max_vms != b->max_vms || a->state != b->state ||
        a->nlabels != b->nlabels)
        return false;
    if (memcmp(&a->power, &b->power, sizeof(a->power)))
        return false;
    for (int i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i], b->labels[i]))
            return false;
    return true;
}

static void classify_shapes(cround *r)
{
    const sched_model *m = r->m;
    int rep[MAX_SHAPES];
    r->nshapes = 0;
    for (int h = 0; h < m->nhosts; h++) {
        int k;
        for (k = 0; k < r->nshapes; k++)
            if (same_shape(&m->hosts[h], &m->hosts[rep[k]]))
                break;
        if (k == r->nshapes && r->nshapes < MAX_SHAPES)
            rep[r->nshapes++] = h;
        r->shape[h] = (signed char)(k < r->nshapes ? k : -1);
    }
}

static int log_push(cround *r, int host, int vm, int pos, bool add)
{
    if (r->nlog == r->caplog) {
        int nc = r->caplog ? r->caplog * 2 : 256;
        undo *p = realloc(r->log, (size_t)nc * sizeof(undo));
        if (!p)
            return -1;
        r->log = p;
        r->caplog = nc;
    }
    r->log[r->nlog++] = (undo){host, vm, pos, add};
    return 0;
}

/* account VM on a host list without moving v->host (a VM may sit on two lists
 * while a plan is being built, exactly as in the reference simulator) */
static void list_add(sched_model *m, int host, int vm, int pos)
{
    sched_host *h = &m->hosts[host];
    if (h->nvms == h->cap_vms) {
        int nc = h->cap_vms ? h->cap_vms * 2 : 8;
        int *p = realloc(h->vms, (size_t)nc * sizeof(int));
        if (!p)
            abort(); /* tiny allocation; nothing sensible to continue with */
        h->vms = p;
        h->cap_vms = nc;
    }
    memmove(&h->vms[pos + 1], &h->vms[pos], (size_t)(h->nvms - pos) * sizeof(int));
    h->vms[pos] = vm;
    h->nvms++;
    const sched_vm *v = &m->vms[vm];
    h->alloc_mips += sched_vm_capped_req(h, v);
    h->vcpu_mips += v->mips;
    h->ram_used += sched_vm_ram(v);
    h->disk_used += v->disk_gb;
    h->bw_used += sched_vm_bw(v);
}

static int list_remove(sched_model *m, int host, int vm)
{
    sched_host *h = &m->hosts[host];
    for (int i = 0; i < h->nvms; i++) {
        if (h->vms[i] != vm)
            continue;
        memmove(&h->vms[i], &h->vms[i + 1], (size_t)(h->nvms - i - 1) * sizeof(int));
        h->nvms--;
        const sched_vm *v = &m->vms[vm];
        h->alloc_mips -= sched_vm_capped_req(h, v);
        h->vcpu_mips -= v->mips;
        h->ram_used -= sched_vm_ram(v);
        h->disk_used -= v->disk_gb;
        h->bw_used -= sched_vm_bw(v);
        if (h->nvms == 0) /* no float residue on an empty host */
            h->alloc_mips = h->vcpu_mips = h->ram_used = h->disk_used = h->bw_used = 0;
        return i;
    }
    return -1;
}

static void r_add(cround *r, int host, int vm)
{
    int pos = r->m->hosts[host].nvms;
    list_add(r->m, host, vm, pos);
    log_push(r, host, vm, pos, true);
    r->planned[host] += r->m->vms[vm].req_mips;
    r->sig_ok[host] = 0;
}

static void r_remove(cround *r, int host, int vm)
{
    int pos = list_remove(r->m, host, vm);
    if (pos >= 0) {
        log_push(r, host, vm, pos, false);
        r->planned[host] -= r->m->vms[vm].req_mips;
        r->sig_ok[host] = 0;
    }
}

/* revert the log back to mark */
static void r_undo(cround *r, int mark)
{
    while (r->nlog > mark) {
        undo u = r->log[--r->nlog];
        if (u.add)
            list_remove(r->m, u.host, u.vm);
        else
            list_add(r->m, u.host, u.vm, u.pos);
        r->planned[u.host] += (u.add ? -1 : 1) * r->m->vms[u.vm].req_mips;
        r->sig_ok[u.host] = 0;
    }
}

/* would host be overloaded with vm added? (cached host signature + the VM) */
static bool overloaded_with(cround *r, int host, int vm)
{
    if (!r->sig_ok[host]) {
        sched_sig_build(r->m, host, sched_sig_depth(r->o), &r->sig[host]);
        r->sig_ok[host] = 1;
    }
    sched_host_sig s = r->sig[host];
    sched_sig_add(r->m, host, &r->m->vms[vm], &s);
    return sched_sig_overloaded(&r->m->hosts[host], &s, r->o);
}

static int round_init(cround *r, sched_model *m, const sched_consol_opts *o)
{
    size_t H = (size_t)m->nhosts + 1;
    *r = (cround){.m = m, .o = o};
    r->planned = calloc(H, sizeof(double));
    r->sig = malloc(H * sizeof(sched_host_sig));
    r->sig_ok = calloc(H, 1);
    r->shape = malloc(H);
    if (!r->planned || !r->sig || !r->sig_ok || !r->shape)
        return -1;
    classify_shapes(r);
    return 0;
}

static void round_free(cround *r)
{
    r_undo(r, 0);
    free(r->log);
    free(r->planned);
    free(r->sig);
    free(r->sig_ok);
    free(r->shape);
}

/* Power increase of putting v on host: P(after) - P(now), with "now" and the
 * base of "after" given in MIPS (they differ in the reference's arithmetic). */
static double pabfd_score(const sched_host *h, const sched_vm *v, double now_mips, double base_mips,
                          bool *ok)
{
    double cap = sched_host_capacity(h);
    double now = now_mips / cap;
    double after = (base_mips + v->req_mips) / cap;
    /* CloudSim clamps utilisation in (1, 1.01) to 1 and cannot price more */
    if (after > 1 && after < 1.01)
        after = 1;
    *ok = after <= 1 && now >= -1e-9;
    return sched_power_at(&h->power, after) - sched_power_at(&h->power, now);
}

/* CPU the scheduler has handed to the VMs now listed on the host (planned moves
 * included): capped requests, scaled down (and floored) when oversubscribed */
static double listed_alloc(const sched_model *m, int host)
{
    const sched_host *h = &m->hosts[host];
    double cap = sched_host_capacity(h);
    if (h->alloc_mips <= cap)
        return h->alloc_mips;
    double s = 0, scale = cap / h->alloc_mips;
    for (int k = 0; k < h->nvms; k++)
        s += floor(sched_vm_capped_req(h, &m->vms[h->vms[k]]) * scale);
    return s;
}

static int pabfd(cround *r, int vm, const unsigned char *excl, const int *cand, int ncand)
{
    sched_model *m = r->m;
    const sched_consol_opts *o = r->o;
    const sched_vm *v = &m->vms[vm];
    double best = DBL_MAX;
    int best_h = -1;
    int n = m->nhosts, sample = (o->sample > 0 && o->sample < n && o->rng) ? o->sample : 0;
    int vcpus = v->vcpus > 0 ? v->vcpus : 1;
    if (cand)
        sample = 0;
    int iters = cand ? ncand : sample ? sample : n;
    unsigned seen = 0; /* shapes of empty, idle hosts already scored in this scan */
    for (int it = 0; it < iters; it++) {
        int i = cand ? cand[it] : sample ? (int)sched_rng_below(o->rng, (uint32_t)n) : it;
        if (excl && excl[i])
            continue;
        const sched_host *h = &m->hosts[i];
        if (!sample && h->nvms == 0 && h->util_mips == 0 && r->planned[i] == 0 &&
            r->shape[i] >= 0) {
            unsigned bit = 1u << r->shape[i];
            if (seen & bit)
                continue; /* an identical empty host earlier in the scan wins the tie */
            seen |= bit;
        }
        /* cheap rejections and the score first: the full filter chain and the
         * overload forecast only run for a host that would win */
        if (h->state != SCHED_HOST_UP || v->req_mips / vcpus > h->core_mips ||
            sched_host_available_mips(h) < v->req_mips)
            continue;
        /* yun: measured use plus what this round planned in/out. CloudSim: the
         * current power from the last observation, but the power after and the
         * "is it empty" test from the allocations of the VMs listed on the host */
        double now = h->util_mips + (o->stale_util ? 0 : r->planned[i]);
        double base = o->stale_util ? listed_alloc(m, i) : now;
        bool ok;
        double d = pabfd_score(h, v, now, base, &ok);
        if (!ok || d >= best)
            continue;
        if (sched_filter_host(m, i, v, true) != SCHED_REJ_NONE)
            continue;
        if (base != 0 && overloaded_with(r, i, vm))
            continue;
        best = d;
        best_h = i;
    }
    return best_h;
}

int sched_pabfd_place_all(sched_model *m, const sched_consol_opts *o)
{
    cround r;
    int left = 0;
    if (round_init(&r, m, o)) {
        round_free(&r);
        return -1;
    }
    for (int v = 0; v < m->nvms; v++) {
        if (m->vms[v].host >= 0)
            continue;
        int h = pabfd(&r, v, NULL, NULL, 0);
        if (h < 0 || sched_model_attach(m, v, h)) {
            left++;
            continue;
        }
        r.sig_ok[h] = 0;
    }
    round_free(&r);
    return left;
}

int sched_pabfd_host(const sched_model *m, int vm, const unsigned char *excluded,
                     const sched_consol_opts *o)
{
    cround r;
    int h = -1;
    if (round_init(&r, (sched_model *)m, o) == 0)
        h = pabfd(&r, vm, excluded, NULL, 0);
    round_free(&r);
    return h;
}

static int plan_add(sched_plan *p, int vm, int from, int to)
{
    if (p->n == p->cap) {
        int nc = p->cap ? p->cap * 2 : 64;
        sched_migration *q = realloc(p->moves, (size_t)nc * sizeof(*q));
        if (!q)
            return -1;
        p->moves = q;
        p->cap = nc;
    }
    p->moves[p->n++] = (sched_migration){vm, from, to};
    return 0;
}

void sched_plan_free(sched_plan *p)
{
    free(p->moves);
    memset(p, 0, sizeof(*p));
}

typedef struct keyed {
    double req;
    int pos, vm;
} keyed;

/* decreasing CPU demand, ties by list position: the reference uses a stable sort */
static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->req != y->req)
        return x->req < y->req ? 1 : -1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static void sort_by_req(const sched_model *m, int *vms, int n)
{
    keyed buf[64], *k = n <= 64 ? buf : malloc((size_t)n * sizeof(keyed));
    if (!k)
        return; /* unsorted still yields a valid (if worse) plan */
    for (int i = 0; i < n; i++)
        k[i] = (keyed){m->vms[vms[i]].req_mips, i, vms[i]};
    qsort(k, (size_t)n, sizeof(keyed), cmp_keyed);
    for (int i = 0; i < n; i++)
        vms[i] = k[i].vm;
    if (k != buf)
        free(k);
}

static int cmp_util_asc(const void *a, const void *b, void *ctx)
{
    const sched_model *m = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    double ux = m->hosts[x].util_mips / sched_host_capacity(&m->hosts[x]);
    double uy = m->hosts[y].util_mips / sched_host_capacity(&m->hosts[y]);
    if (ux != uy)
        return ux < uy ? -1 : 1;
    return (x > y) - (x < y);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static double host_util(const sched_host *h)
{
    double u = h->util_mips / sched_host_capacity(h);
    if (u > 1 && u < 1.01)
        u = 1;
    return u;
}

int sched_consolidate(sched_model *m, const sched_consol_opts *o, sched_plan *plan)
{
    int H = m->nhosts;
    cround r;
    int rc = round_init(&r, m, o) ? -2 : -1;
    unsigned char *over = calloc((size_t)H + 1, 1), *excl_under = calloc((size_t)H + 1, 1);
    unsigned char *excl_place = calloc((size_t)H + 1, 1);
    int *vms = malloc(((size_t)m->nvms + 1) * sizeof(int));
    int *hosts = malloc(((size_t)H + 1) * sizeof(int));
    int *cand = malloc(((size_t)H + 1) * sizeof(int));
    if (rc == -2 || !cand || !over || !excl_under || !excl_place || !vms || !hosts) {
        rc = -1;
        goto out;
    }
    plan->overloaded = plan->underloaded_drained = 0;

    /* 1. overloaded hosts shed VMs until they are no longer overloaded */
    int nmig = 0;
    for (int h = 0; h < H; h++) {
        if (!sched_host_overloaded(m, h, o))
            continue;
        over[h] = 1;
        plan->overloaded++;
    }
    for (int h = 0; h < H; h++) {
        if (!over[h])
            continue;
        for (;;) {
            int v = sched_select_vm(m, h, o);
            if (v < 0)
                break;
            vms[nmig++] = v;
            r_remove(&r, h, v);
            if (!sched_host_overloaded(m, h, o))
                break;
        }
    }
    sort_by_req(m, vms, nmig);
    for (int i = 0; i < nmig; i++) {
        int t = pabfd(&r, vms[i], over, NULL, 0);
        if (t < 0)
            continue;
        r_add(&r, t, vms[i]);
        plan_add(plan, vms[i], m->vms[vms[i]].host, t);
        if (!o->leaky_exclusion)
            excl_under[t] = 1;
    }

    /* 2. drain the least-utilised hosts, most idle first, when everything fits */
    int nh = 0;
    for (int h = 0; h < H; h++) {
        double u = host_util(&m->hosts[h]);
        if (over[h] || u == 0) { /* overloaded or switched off */
            excl_under[h] = excl_place[h] = 1;
            continue;
        }
        if (u < 1 && u < o->underload_thr + 1e-12)
            hosts[nh++] = h;
    }
    qsort_r(hosts, (size_t)nh, sizeof(int), cmp_util_asc, m);
    /* drained VMs may only go to hosts that are neither off nor overloaded: list
     * them once (in index order, which PABFD's tie-break needs) */
    int ncand = 0;
    for (int h = 0; h < H; h++)
        if (!excl_place[h])
            cand[ncand++] = h;
    if (o->sample > 0 && ncand > o->sample && o->rng) {
        /* scale mode: a seeded sample, kept sorted for the tie-break */
        for (int i = 0; i < o->sample; i++) {
            int j = i + (int)sched_rng_below(o->rng, (uint32_t)(ncand - i));
            int t = cand[i];
            cand[i] = cand[j];
            cand[j] = t;
        }
        ncand = o->sample;
        qsort(cand, (size_t)ncand, sizeof(int), cmp_int);
    }
    int fails = 0;
    for (int k = 0; k < nh; k++) {
        int h = hosts[k];
        if (excl_under[h] || m->hosts[h].nvms == 0)
            continue;
        /* hosts come least-utilised first: once that many in a row cannot be
         * emptied, busier ones will not be either (scale mode only) */
        if (o->drain_fail_limit > 0 && fails >= o->drain_fail_limit)
            break;
        excl_under[h] = excl_place[h] = 1;
        int n = 0;
        for (int i = 0; i < m->hosts[h].nvms; i++)
            if (!m->vms[m->hosts[h].vms[i]].in_migration)
                vms[n++] = m->hosts[h].vms[i];
        if (n == 0)
            continue;
        sort_by_req(m, vms, n);
        int mark = r.nlog, pmark = plan->n;
        bool all = true;
        for (int i = 0; i < n; i++) {
            int t = pabfd(&r, vms[i], excl_place, cand, ncand);
            if (t < 0) {
                all = false;
                break;
            }
            r_add(&r, t, vms[i]);
            /* the VM stays on h's list while planned elsewhere (reference semantics) */
            r.planned[h] -= m->vms[vms[i]].req_mips;
            plan_add(plan, vms[i], h, t);
        }
        if (!all) {
            for (int i = pmark; i < plan->n; i++)
                r.planned[h] += m->vms[plan->moves[i].vm].req_mips;
            r_undo(&r, mark);
            plan->n = pmark;
            fails++;
            continue;
        }
        fails = 0;
        plan->underloaded_drained++;
        for (int i = pmark; i < plan->n; i++)
            excl_under[plan->moves[i].to] = 1;
    }
    rc = 0;
out:
    round_free(&r);
    free(over);
    free(excl_under);
    free(excl_place);
    free(vms);
    free(hosts);
    free(cand);
    return rc;
}
