/* detect.c - host overload detectors (THR, IQR, MAD, LR, LRR) and the VM
 * selection policies (MMT, RS, MC, MU) of Beloglazov & Buyya (2012). They look
 * only at the model: the host's current VM list and each VM's history. */
#include "sched/internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

void sched_consol_defaults(sched_consol_opts *o)
{
    o->det = SCHED_DET_LR;
    o->param = 1.2;
    o->fallback_thr = 0.7;
    o->lr_len = 10;
    o->min_hist = 12;
    o->interval = 300;
    o->mig_bw_share = 0.5;
    o->lr_weighted = true;
    o->sel = SCHED_SEL_MMT;
    o->stale_util = false;
    o->leaky_exclusion = false;
    o->underload_thr = 1.0;
    o->sample = 0;
    o->drain_fail_limit = 0;
    o->rng = NULL;
}

int sched_sig_depth(const sched_consol_opts *o)
{
    if (o->det == SCHED_DET_THR)
        return 0;
    if ((o->det == SCHED_DET_LR || o->det == SCHED_DET_LRR) && o->lr_len > 0 &&
        o->lr_len < SCHED_HIST)
        return o->lr_len;
    return SCHED_HIST;
}

void sched_sig_build(const sched_model *m, int host, int depth, sched_host_sig *s)
{
    const sched_host *h = &m->hosts[host];
    s->req_mips = 0;
    s->max_ram = 0;
    s->n = 0;
    s->depth = depth;
    for (int i = 0; i < depth; i++)
        s->hist[i] = 0;
    for (int k = 0; k < h->nvms; k++)
        sched_sig_add(m, host, &m->vms[h->vms[k]], s);
}

/* Host history is the sum of its VMs' histories scaled to host capacity;
 * utilisation is never negative, so the sum's non-zero extent is the largest
 * of the VMs'. */
void sched_sig_add(const sched_model *m, int host, const sched_vm *v, sched_host_sig *s)
{
    double scale = v->mips / sched_host_capacity(&m->hosts[host]);
    s->req_mips += v->req_mips;
    int d = v->hist_len < s->depth ? v->hist_len : s->depth;
    for (int i = 0; i < d; i++)
        s->hist[i] += v->hist[i] * scale;
    if (v->hist_nz > s->n)
        s->n = v->hist_nz;
    if (v->ram_mb > s->max_ram)
        s->max_ram = v->ram_mb;
}

/* tricube-weighted regressions use the same weights every time; LR's window is
 * short, so the estimate is cheap once the weights are known */
bool sched_sig_overloaded(const sched_host *h, const sched_host_sig *s, const sched_consol_opts *o)
{
    double cap = sched_host_capacity(h);
    double thr_util = s->req_mips / cap;
    if (o->det == SCHED_DET_THR)
        return thr_util > o->param;
    double hist[SCHED_HIST];
    int n = s->n;
    for (int i = 0; i < n && i < s->depth; i++)
        hist[i] = s->hist[i];
    switch (o->det) {
    case SCHED_DET_IQR:
    case SCHED_DET_MAD: {
        if (n < o->min_hist)
            return thr_util > o->fallback_thr;
        double spread = o->det == SCHED_DET_IQR ? sched_iqr(hist, n) : sched_mad(hist, n);
        return thr_util > 1 - o->param * spread;
    }
    case SCHED_DET_LR:
    case SCHED_DET_LRR: {
        int len = o->lr_len;
        if (n < len || len < 3)
            return thr_util > o->fallback_thr;
        double y[SCHED_HIST], a, b;
        for (int i = 0; i < len; i++)
            y[i] = hist[len - 1 - i]; /* oldest first */
        if (sched_loess(y, len, o->lr_weighted, o->det == SCHED_DET_LRR, &a, &b))
            return thr_util > o->fallback_thr;
        double mbps = h->bw_mbps * o->mig_bw_share / 8.0; /* MB/s */
        double mig = mbps > 0 ? s->max_ram / mbps : 0;
        double pred = (a + b * (len + ceil(mig / o->interval))) * o->param;
        return pred >= 1;
    }
    default:
        return thr_util > o->param;
    }
}

bool sched_host_overloaded(const sched_model *m, int host, const sched_consol_opts *o)
{
    sched_host_sig s;
    sched_sig_build(m, host, sched_sig_depth(o), &s);
    return sched_sig_overloaded(&m->hosts[host], &s, o);
}

static int select_mmt(const sched_model *m, const sched_host *h)
{
    int best = -1;
    double min = DBL_MAX;
    for (int k = 0; k < h->nvms; k++) {
        const sched_vm *v = &m->vms[h->vms[k]];
        if (!v->in_migration && v->ram_mb < min) {
            min = v->ram_mb;
            best = h->vms[k];
        }
    }
    return best;
}

static int select_mu(const sched_model *m, const sched_host *h)
{
    int best = -1;
    double min = DBL_MAX;
    for (int k = 0; k < h->nvms; k++) {
        const sched_vm *v = &m->vms[h->vms[k]];
        double u = v->mips > 0 ? v->req_mips / v->mips : 0;
        if (!v->in_migration && u < min) {
            min = u;
            best = h->vms[k];
        }
    }
    return best;
}

/* Maximum correlation: the VM whose history is best explained (highest R^2)
 * by the other VMs' histories; needs more samples than VMs, else MMT. */
static int select_mc(const sched_model *m, const sched_host *h)
{
    int n = 0, minlen = SCHED_HIST;
    int idx[256];
    for (int k = 0; k < h->nvms && n < 256; k++) {
        const sched_vm *v = &m->vms[h->vms[k]];
        if (v->in_migration)
            continue;
        idx[n++] = h->vms[k];
        if (v->hist_len < minlen)
            minlen = v->hist_len;
    }
    if (n == 0)
        return -1;
    if (n == 1)
        return idx[0];
    if (minlen - n <= 0)
        return select_mmt(m, h);
    const double *cols[256];
    int best = 0;
    double bestr = DBL_MIN;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < n; j++)
            if (j != i)
                cols[k++] = m->vms[idx[j]].hist;
        double r2 = sched_r2(m->vms[idx[i]].hist, cols, n - 1, minlen);
        if (r2 > bestr) {
            bestr = r2;
            best = i;
        }
    }
    return idx[best];
}

int sched_select_vm(const sched_model *m, int host, const sched_consol_opts *o)
{
    const sched_host *h = &m->hosts[host];
    switch (o->sel) {
    case SCHED_SEL_MMT:
        return select_mmt(m, h);
    case SCHED_SEL_MU:
        return select_mu(m, h);
    case SCHED_SEL_MC:
        return select_mc(m, h);
    case SCHED_SEL_RS: {
        int n = 0;
        for (int k = 0; k < h->nvms; k++)
            n += !m->vms[h->vms[k]].in_migration;
        if (n == 0)
            return -1;
        uint32_t pick = o->rng ? sched_rng_below(o->rng, (uint32_t)n) : 0;
        for (int k = 0; k < h->nvms; k++) {
            if (m->vms[h->vms[k]].in_migration)
                continue;
            if (pick-- == 0)
                return h->vms[k];
        }
        return -1;
    }
    }
    return -1;
}
