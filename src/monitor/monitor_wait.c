/*
 * monitor_wait.c - the vCPU wait a queueing model predicts for the VMs of
 * one host, from what their vCPUs demanded over the last interval: the
 * model itself (mon_wait_predict) is pure, mon_predict_waits feeds it the
 * monitor's figures and writes series "cpu_wait_model". For each VM, the CPUs it may run on (its
 * cpuset, or all the host's) are its servers; the vCPUs of every VM whose CPUs overlap its own are
 * the sources contending for them; the closed M/M/c//N model (src/sched/erlang.c) turns their mean
 * runnable fraction into a wait ratio, scaled by the VM's own runnable fraction (idle vCPUs, below
 * 1 %, are left out of the pool). VMs with different but overlapping cpusets are an approximation:
 * the pool is this VM's view.
 */
#include "monitor/monitor_int.h"
#include "ctl/ctl.h"
#include "monitor/series.h"
#include "sched/sched.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MAX_CPUS 1024
/* vCPUs runnable less than this share of the time do not contend: the one
 * mean runnable fraction of the model would otherwise let idle VMs dilute
 * the busy ones' demand */
#define IDLE 0.01

struct cpu_mask {
    uint64_t w[WAIT_MAX_CPUS / 64];
};

/* "0-1,3" (as the cpuset was validated when the VM was made); "" or an
 * unreadable list = every CPU of the host. */
static void mask_of(const char *s, int ncpus, struct cpu_mask *m)
{
    memset(m, 0, sizeof *m);
    int any = 0;
    while (s && *s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s)
            break;
        if (*end == '-') {
            const char *q = end + 1;
            b = strtol(q, &end, 10);
            if (end == q)
                break;
        }
        for (long c = a; c <= b && c < ncpus && c < WAIT_MAX_CPUS; c++)
            if (c >= 0) {
                m->w[c / 64] |= UINT64_C(1) << (c % 64);
                any = 1;
            }
        s = *end == ',' ? end + 1 : end;
        if (*end != ',')
            break;
    }
    if (!any)
        for (int c = 0; c < ncpus && c < WAIT_MAX_CPUS; c++)
            m->w[c / 64] |= UINT64_C(1) << (c % 64);
}

static int mask_count(const struct cpu_mask *m)
{
    int n = 0;
    for (size_t i = 0; i < WAIT_MAX_CPUS / 64; i++)
        n += __builtin_popcountll(m->w[i]);
    return n;
}

static int mask_overlap(const struct cpu_mask *a, const struct cpu_mask *b)
{
    for (size_t i = 0; i < WAIT_MAX_CPUS / 64; i++)
        if (a->w[i] & b->w[i])
            return 1;
    return 0;
}

void mon_wait_predict(struct wait_vm *w, size_t n, int ncpus)
{
    if (n == 0)
        return;
    struct cpu_mask *m = calloc(n, sizeof *m);
    if (!m)
        return;
    for (size_t i = 0; i < n; i++)
        mask_of(w[i].cpuset, ncpus, &m[i]);
    for (size_t i = 0; i < n; i++) {
        int sources = 0;
        double runnable = 0;
        for (size_t k = 0; k < n; k++)
            if (w[k].nvcpu > 0 && w[k].runnable >= IDLE * w[k].nvcpu &&
                mask_overlap(&m[i], &m[k])) {
                sources += w[k].nvcpu;
                runnable += w[k].runnable;
            }
        w[i].predicted = 0;
        if (sources < 1 || w[i].nvcpu < 1)
            continue;
        double f = runnable / sources, own = w[i].runnable / w[i].nvcpu;
        if (f > 1)
            f = 1;
        if (own > 1)
            own = 1;
        w[i].predicted = 100.0 * sched_mmcn_wait_ratio(mask_count(&m[i]), sources, f) * own;
    }
    free(m);
}

void mon_predict_waits(struct monitor *m, const struct vm_rec *vms, size_t n, const char *host,
                       int ncpus, int64_t at, int64_t now)
{
    if (ncpus < 1 || n == 0)
        return;
    struct wait_vm *w = calloc(n, sizeof *w);
    struct vm_mon **of = calloc(n, sizeof *of);
    size_t k = 0;
    for (size_t i = 0; w && of && i < n; i++) {
        if (!vm_state_has_process(vms[i].state) || vms[i].pid <= 0 ||
            (m->ctl && !ctl_host_same(m->ctl, vms[i].host, host)))
            continue;
        struct vm_mon *v = NULL;
        for (struct vm_mon *x = m->vms; x && !v; x = x->next)
            if (!strcmp(x->id, vms[i].id) && x->pid == vms[i].pid)
                v = x;
        if (!v || v->runnable_at != at)
            continue;
        w[k] = (struct wait_vm){.cpuset = vms[i].cpuset, .nvcpu = v->nv, .runnable = v->runnable};
        of[k++] = v;
    }
    mon_wait_predict(w, k, ncpus);
    for (size_t i = 0; i < k; i++)
        series_add(&m->ss, of[i]->object, "cpu_wait_model", now, w[i].predicted);
    free(w);
    free(of);
}
