/* place.c - the placement pipeline: filters reject hosts for a named reason,
 * weighers score the survivors, and the explanation records both (per host and
 * counts per reason), like Nova's filter scheduler or kube-scheduler. */
#include "sched/sched.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const reject_names[SCHED_REJ__COUNT] = {
    [SCHED_REJ_NONE] = "ok",
    [SCHED_REJ_STATE] = "host-state",
    [SCHED_REJ_CPU] = "cpu",
    [SCHED_REJ_RAM] = "ram",
    [SCHED_REJ_DISK] = "disk",
    [SCHED_REJ_BW] = "bandwidth",
    [SCHED_REJ_LABELS] = "labels",
    [SCHED_REJ_AFFINITY] = "affinity",
    [SCHED_REJ_ANTI_AFFINITY] = "anti-affinity",
    [SCHED_REJ_MAX_PER_HOST] = "group-max-per-host",
    [SCHED_REJ_MAX_VMS] = "host-max-vms",
    [SCHED_REJ_EXCLUDED] = "excluded",
    [SCHED_REJ_OVERLOAD] = "would-overload",
};

const char *sched_reject_name(sched_reject r)
{
    return (r >= 0 && r < SCHED_REJ__COUNT) ? reject_names[r] : "?";
}

static const char *const policy_names[] = {
    [SCHED_POL_PACK] = "pack",
    [SCHED_POL_SPREAD] = "spread",
    [SCHED_POL_FIRST_FIT] = "first-fit",
    [SCHED_POL_ROUND_ROBIN] = "round-robin",
    [SCHED_POL_RANDOM] = "random",
    [SCHED_POL_LOAD_AWARE] = "load-aware",
    [SCHED_POL_POWER_AWARE] = "power-aware",
};

const char *sched_policy_name(sched_policy p)
{
    return (p >= 0 && p <= SCHED_POL_POWER_AWARE) ? policy_names[p] : "?";
}

int sched_policy_parse(const char *s, sched_policy *out)
{
    static const struct {
        const char *alias;
        sched_policy p;
    } aliases[] = {{"best-fit", SCHED_POL_PACK},     {"most-allocated", SCHED_POL_PACK},
                   {"worst-fit", SCHED_POL_SPREAD},  {"least-allocated", SCHED_POL_SPREAD},
                   {"pabfd", SCHED_POL_POWER_AWARE}, {"rr", SCHED_POL_ROUND_ROBIN}};
    for (int i = 0; i <= SCHED_POL_POWER_AWARE; i++) {
        if (strcmp(s, policy_names[i]) == 0) {
            *out = (sched_policy)i;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcmp(s, aliases[i].alias) == 0) {
            *out = aliases[i].p;
            return 0;
        }
    }
    return -1;
}

static bool host_has_label(const sched_host *h, const char *kv)
{
    for (int i = 0; i < h->nlabels; i++)
        if (strcmp(h->labels[i], kv) == 0)
            return true;
    return false;
}

/* members of group g currently on host h, not counting VM self */
static int group_on_host(const sched_model *m, const sched_host *h, int g, const sched_vm *self)
{
    int n = 0;
    for (int i = 0; i < h->nvms; i++) {
        const sched_vm *o = &m->vms[h->vms[i]];
        if (o != self && o->group == g)
            n++;
    }
    return n;
}

static bool group_placed_anywhere(const sched_model *m, int g, const sched_vm *self)
{
    for (int i = 0; i < m->nvms; i++)
        if (&m->vms[i] != self && m->vms[i].group == g && m->vms[i].host >= 0)
            return true;
    return false;
}

/* CPU demand the filters and weighers account for this VM */
static double vm_cpu(const sched_vm *v, bool use_requested)
{
    return use_requested ? v->req_mips : v->mips;
}

static sched_reject filter_resources(const sched_host *h, const sched_vm *v, bool use_requested)
{
    int n = v->vcpus > 0 ? v->vcpus : 1;
    if (use_requested) {
        /* measured-demand admission, as CloudSim's isSuitableForVm */
        if (v->req_mips / n > h->core_mips || sched_host_available_mips(h) < v->req_mips)
            return SCHED_REJ_CPU;
    } else {
        if (n > h->cores) /* a vCPU never spans physical cores */
            return SCHED_REJ_CPU;
        if (h->vcpu_mips + v->mips > sched_host_capacity(h) * h->cpu_ratio + 1e-9)
            return SCHED_REJ_CPU;
    }
    if (h->ram_used + sched_vm_ram(v) > h->ram_mb * h->ram_ratio + 1e-9)
        return SCHED_REJ_RAM;
    if (h->disk_gb > 0 && h->disk_used + v->disk_gb > h->disk_gb + 1e-9)
        return SCHED_REJ_DISK;
    if (h->bw_mbps > 0 && h->bw_used + sched_vm_bw(v) > h->bw_mbps + 1e-9)
        return SCHED_REJ_BW;
    return SCHED_REJ_NONE;
}

static sched_reject filter_all(const sched_model *m, int host, const sched_vm *v,
                               bool use_requested, int group_elsewhere)
{
    const sched_host *h = &m->hosts[host];
    if (h->state != SCHED_HOST_UP)
        return SCHED_REJ_STATE;
    if (h->max_vms > 0 && h->nvms >= h->max_vms)
        return SCHED_REJ_MAX_VMS;
    for (int i = 0; i < v->nreq; i++)
        if (!host_has_label(h, v->req[i]))
            return SCHED_REJ_LABELS;
    sched_reject r = filter_resources(h, v, use_requested);
    if (r != SCHED_REJ_NONE)
        return r;
    if (v->group >= 0 && v->group < m->ngroups) {
        const sched_group *g = &m->groups[v->group];
        int here = group_on_host(m, h, v->group, v);
        if (g->max_per_host > 0 && here >= g->max_per_host)
            return SCHED_REJ_MAX_PER_HOST;
        if (g->hard && g->kind == SCHED_GROUP_ANTI_AFFINITY && here > 0)
            return SCHED_REJ_ANTI_AFFINITY;
        if (g->hard && g->kind == SCHED_GROUP_AFFINITY && here == 0 && group_elsewhere)
            return SCHED_REJ_AFFINITY;
    }
    return SCHED_REJ_NONE;
}

sched_reject sched_filter_host(const sched_model *m, int host, const sched_vm *v,
                               bool use_requested)
{
    int elsewhere = 0;
    if (v->group >= 0 && v->group < m->ngroups && m->groups[v->group].kind == SCHED_GROUP_AFFINITY)
        elsewhere = group_placed_anywhere(m, v->group, v);
    return filter_all(m, host, v, use_requested, elsewhere);
}

double sched_weigh_host(const sched_model *m, int host, const sched_vm *v, sched_policy p,
                        bool use_requested)
{
    const sched_host *h = &m->hosts[host];
    double cap = sched_host_capacity(h);
    if (cap <= 0)
        cap = 1;
    double d = vm_cpu(v, use_requested);
    double used = use_requested ? h->alloc_mips : h->vcpu_mips;
    double s = 0;
    switch (p) {
    case SCHED_POL_PACK:
        s = (used + d) / cap;
        break;
    case SCHED_POL_SPREAD:
        s = -(used + d) / cap;
        break;
    case SCHED_POL_FIRST_FIT:
        s = -(double)host;
        break;
    case SCHED_POL_ROUND_ROBIN: {
        int n = m->nhosts;
        s = -(double)(((host - m->rr_next) % n + n) % n);
        break;
    }
    case SCHED_POL_RANDOM:
        s = 0; /* drawn by the caller so the stream does not depend on filters */
        break;
    case SCHED_POL_LOAD_AWARE: {
        /* the measured load after, and the vCPU wait the M/M/c (Erlang C)
         * model predicts at it: at the same load, more cores queue less */
        double a = h->core_mips > 0 ? (h->util_mips + d) / h->core_mips : 0;
        s = -(h->util_mips + d) / cap - sched_mmc_wait_ratio(h->cores, a);
        break;
    }
    case SCHED_POL_POWER_AWARE: {
        double now = h->util_mips / cap, after = (h->util_mips + d) / cap;
        s = -(sched_power_at(&h->power, after) - sched_power_at(&h->power, now));
        break;
    }
    }
    /* soft (anti-)affinity: a large bonus or penalty per group member on the host */
    if (v->group >= 0 && v->group < m->ngroups && !m->groups[v->group].hard) {
        const sched_group *g = &m->groups[v->group];
        int here = group_on_host(m, h, v->group, v);
        if (g->kind == SCHED_GROUP_ANTI_AFFINITY)
            s -= 1e6 * here;
        else if (g->kind == SCHED_GROUP_AFFINITY)
            s += 1e6 * here;
    }
    return s;
}

int sched_place(sched_model *m, int vm, const sched_place_opts *o, sched_explain *ex)
{
    const sched_vm *v = &m->vms[vm];
    int elsewhere = 0;
    if (v->group >= 0 && v->group < m->ngroups && m->groups[v->group].kind == SCHED_GROUP_AFFINITY)
        elsewhere = group_placed_anywhere(m, v->group, v);
    int best = -1;
    double best_s = -INFINITY;
    int counts[SCHED_REJ__COUNT] = {0};
    int passed = 0, n = m->nhosts;
    bool limited = o->score_limit > 0 && o->score_limit < n && o->policy != SCHED_POL_FIRST_FIT &&
                   o->policy != SCHED_POL_ROUND_ROBIN;
    bool rr = o->policy == SCHED_POL_ROUND_ROBIN;
    int start = limited ? m->scan_next % n : rr && n ? m->rr_next % n : 0, seen = 0;
    if (ex && ex->hosts)
        for (int i = 0; i < n; i++)
            ex->hosts[i] = (sched_host_verdict){SCHED_REJ__COUNT, 0}; /* not examined */
    for (; seen < n; seen++) {
        int i = start + seen < n ? start + seen : start + seen - n;
        sched_reject r = (o->excluded && o->excluded[i])
                             ? SCHED_REJ_EXCLUDED
                             : filter_all(m, i, v, o->use_requested, elsewhere);
        double s = 0;
        if (r == SCHED_REJ_NONE) {
            passed++;
            s = sched_weigh_host(m, i, v, o->policy, o->use_requested);
            if (o->policy == SCHED_POL_RANDOM && o->rng)
                s += sched_rng_unit(o->rng);
            if (s > best_s) {
                best_s = s;
                best = i;
            }
        }
        counts[r]++;
        if (ex && ex->hosts) {
            ex->hosts[i].rejected = r;
            ex->hosts[i].score = s;
        }
        /* first-fit and round-robin take the first host that passes, in their order */
        if (r == SCHED_REJ_NONE && (o->policy == SCHED_POL_FIRST_FIT || rr)) {
            seen++;
            break;
        }
        if (limited && passed >= o->score_limit) {
            seen++;
            break;
        }
    }
    if (limited)
        m->scan_next = (start + seen) % n;
    if (o->policy == SCHED_POL_ROUND_ROBIN && best >= 0)
        m->rr_next = best + 1;
    if (ex) {
        memcpy(ex->counts, counts, sizeof(counts));
        ex->passed = passed;
        ex->chosen = best;
        if (best >= 0) {
            snprintf(ex->reason, sizeof(ex->reason),
                     "%s: host %s (score %.4g; %d hosts passed of %d examined, %d total)",
                     sched_policy_name(o->policy), m->hosts[best].name, best_s, passed, seen,
                     m->nhosts);
        } else {
            int len =
                snprintf(ex->reason, sizeof(ex->reason), "no valid host among %d:", m->nhosts);
            const char *sep = " ";
            for (int r = 1; r < SCHED_REJ__COUNT && len < (int)sizeof(ex->reason); r++) {
                if (!counts[r])
                    continue;
                len += snprintf(ex->reason + len, sizeof(ex->reason) - (size_t)len, "%s%d %s", sep,
                                counts[r], sched_reject_name((sched_reject)r));
                sep = ", ";
            }
        }
    }
    return best;
}

/* First fit only: can host h take no VM at all, not even the smallest demand
 * still waiting? Such hosts stay useless while VMs are only added. */
static bool ff_dead(const sched_model *m, int h, const sched_place_opts *o, double cpu, double ram,
                    double bw)
{
    const sched_host *x = &m->hosts[h];
    if (x->state != SCHED_HOST_UP || (o->excluded && o->excluded[h]))
        return true;
    if (x->max_vms > 0 && x->nvms >= x->max_vms)
        return true;
    if (o->use_requested ? sched_host_available_mips(x) < cpu
                         : x->vcpu_mips + cpu > sched_host_capacity(x) * x->cpu_ratio + 1e-9)
        return true;
    if (x->ram_used + ram > x->ram_mb * x->ram_ratio + 1e-9)
        return true;
    return x->bw_mbps > 0 && x->bw_used + bw > x->bw_mbps + 1e-9;
}

int sched_place_all(sched_model *m, const sched_place_opts *o)
{
    int left = 0;
    if (o->policy == SCHED_POL_FIRST_FIT && m->nhosts > 0) {
        /* first fit rescans the same full hosts for every VM; skip the leading
         * run of hosts that cannot take even the smallest waiting VM (exact:
         * hosts only fill up here) */
        double cpu = INFINITY, ram = INFINITY, bw = INFINITY;
        for (int i = 0; i < m->nvms; i++) {
            const sched_vm *v = &m->vms[i];
            if (v->host >= 0)
                continue;
            cpu = fmin(cpu, o->use_requested ? v->req_mips : v->mips);
            ram = fmin(ram, sched_vm_ram(v));
            bw = fmin(bw, sched_vm_bw(v));
        }
        int lead = 0;
        for (int i = 0; i < m->nvms; i++) {
            if (m->vms[i].host >= 0)
                continue;
            while (lead < m->nhosts && ff_dead(m, lead, o, cpu, ram, bw))
                lead++;
            int h = -1;
            for (int k = lead; k < m->nhosts; k++) {
                if (o->excluded && o->excluded[k])
                    continue;
                if (sched_filter_host(m, k, &m->vms[i], o->use_requested) == SCHED_REJ_NONE) {
                    h = k;
                    break;
                }
            }
            if (h < 0 || sched_model_attach(m, i, h))
                left++;
        }
        return left;
    }
    for (int i = 0; i < m->nvms; i++) {
        if (m->vms[i].host >= 0)
            continue;
        int h = sched_place(m, i, o, NULL);
        if (h < 0 || sched_model_attach(m, i, h))
            left++;
    }
    return left;
}
