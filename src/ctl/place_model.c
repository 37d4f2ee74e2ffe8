/*
 * place_model.c - the pure part of placement (ctl/place.h): the store's
 * compact rows become a sched_model kept between decisions (one sched host
 * per row, its summed allocation set as the host's aggregates, every
 * group's members as zero-size VMs attached where they are), sched_place()
 * filters and weighs, and each choice is reserved in the model. No I/O.
 *
 * Units: one vCPU is 1000 MIPS; a host offers floor(cpus x cpu_overcommit)
 * vCPUs and (memory - reserved_memory) x memory_overcommit MiB, which is
 * the all-in-one's capacity rule (ctl/capacity.c). A VM that does not
 * start at create is only checked to fit ever (its vCPUs against the
 * host's, its memory by our own pre-filter); start admits it later.
 *
 * With memory_overcommit above 1 a host's committed memory may pass what it
 * has; what must fit is what ballooning cannot take back: the floors
 * (memory_min, else all the memory) of its charged VMs and of the wanted
 * one, within its usable memory less memory_margin. That pre-filter
 * ("memory-floor") is ctl_capacity_admit's rule, so a host placement picks
 * is one whose start admits the VM.
 */
#include "ctl/place_int.h"
#include "sched/cpu_models.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void place_state_init(struct place_state *ps, uint64_t seed)
{
    ps->rr_next = 0;
    sched_rng_seed(&ps->rng, seed);
}

int place_strategy_parse(const char *s, sched_policy *out, struct yerr *err)
{
    static const struct {
        const char *name;
        sched_policy pol;
    } map[] = {{"least-loaded", SCHED_POL_LOAD_AWARE},
               {"round-robin", SCHED_POL_ROUND_ROBIN},
               {"random", SCHED_POL_RANDOM},
               {"pack", SCHED_POL_PACK},
               {"spread", SCHED_POL_SPREAD}};
    if (!s || !s[0])
        s = "least-loaded";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(s, map[i].name)) {
            *out = map[i].pol;
            return 0;
        }
    return yerr_set(err, YE_INVALID_ARGUMENT,
                    "unknown strategy '%.32s' (least-loaded, round-robin, random, pack, spread)",
                    s);
}

static bool label_char(int ch)
{
    return isalnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '/';
}

int place_labels_check(const char *labels, const char *what, struct yerr *err)
{
    int n = 0;
    const char *p = labels;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || eq == p + len - 1)
            return yerr_set(err, YE_INVALID_ARGUMENT, "%s: '%.*s' is not key=value", what, (int)len,
                            p);
        if (len >= SCHED_LABEL_MAX)
            return yerr_set(err, YE_INVALID_ARGUMENT, "%s: '%.*s' is longer than %d characters",
                            what, (int)len, p, SCHED_LABEL_MAX - 1);
        for (size_t i = 0; i < len; i++)
            if (p + i != eq && !label_char((unsigned char)p[i]))
                return yerr_set(err, YE_INVALID_ARGUMENT,
                                "%s: '%.*s' has a character other than A-Z a-z 0-9 . _ / -", what,
                                (int)len, p);
        if (++n > SCHED_MAX_LABELS)
            return yerr_set(err, YE_INVALID_ARGUMENT, "%s: more than %d labels", what,
                            SCHED_MAX_LABELS);
        p += len;
        if (*p == ',' && !*++p)
            return yerr_set(err, YE_INVALID_ARGUMENT, "%s: ends with ','", what);
    }
    return 0;
}

/* Calls fn for each "k=v" of a list (bad entries skipped: rows from another
 * host are checked when they are written). */
static void labels_each(const char *labels, void (*fn)(void *, const char *), void *arg)
{
    char one[SCHED_LABEL_MAX];
    const char *p = labels;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > 0 && len < sizeof(one)) {
            memcpy(one, p, len);
            one[len] = 0;
            fn(arg, one);
        }
        p += len;
        if (*p == ',')
            p++;
    }
}

static void add_host_label(void *h, const char *kv)
{
    sched_host_add_label(h, kv);
}

static void add_vm_req(void *v, const char *kv)
{
    sched_vm_add_req(v, kv);
}

int place_host_vcpus(const struct place_model *p, size_t i)
{
    return (int)floor(p->hosts[i].cpus * p->conf.cpu_overcommit + 1e-9);
}

uint64_t place_host_mem_mb(const struct place_model *p, size_t i)
{
    uint64_t mem = p->hosts[i].memory, res = p->conf.reserved_memory;
    uint64_t usable = mem > res ? mem - res : 0;
    return (uint64_t)((double)(usable >> 20) * p->conf.mem_overcommit);
}

uint64_t place_host_floor_cap_mb(const struct place_model *p, size_t i)
{
    uint64_t mem = p->hosts[i].memory, res = p->conf.reserved_memory;
    uint64_t usable = mem > res ? mem - res : 0;
    uint64_t margin = p->conf.memory_margin ? p->conf.memory_margin : usable / 20;
    return usable > margin ? (usable - margin) >> 20 : 0;
}

uint64_t place_want_floor_mb(const struct place_want *w)
{
    return w->memory_min_mb && w->memory_min_mb < w->memory_mb ? w->memory_min_mb : w->memory_mb;
}

int place_members_here(const struct place_model *p, size_t i)
{
    const sched_host *h = &p->m.hosts[i];
    int n = 0;
    for (int k = 0; p->gi >= 0 && k < h->nvms; k++)
        n += p->m.vms[h->vms[k]].group == p->gi;
    return n;
}

static sched_host_state host_state(const char *s)
{
    if (!strcmp(s, "up"))
        return SCHED_HOST_UP;
    if (!strcmp(s, "maintenance"))
        return SCHED_HOST_MAINT;
    return SCHED_HOST_DOWN;
}

/* ---- host ids -> indices: a sorted index, built once per model ---- */

struct idx {
    const char *id;
    int i;
};

static int idx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct idx *)a)->id, ((const struct idx *)b)->id);
}

/* index of host id (local_id's rows are those with host "") or -1 */
static int host_index(const struct idx *ix, size_t n, const char *id, const char *local_id)
{
    if (!id[0] && local_id)
        id = local_id;
    struct idx key = {.id = id};
    const struct idx *f = bsearch(&key, ix, n, sizeof(*ix), idx_cmp);
    return f ? f->i : -1;
}

static int group_index(struct place_model *p, const char *name)
{
    for (int g = 0; g < p->m.ngroups; g++)
        if (!strcmp(p->gnames[g], name))
            return g;
    sched_group g = {.kind = SCHED_GROUP_ANTI_AFFINITY};
    snprintf(g.name, sizeof(g.name), "%s", name);
    int gi = sched_model_add_group(&p->m, &g);
    if (gi < 0)
        return -1;
    if (gi >= p->gcap) {
        void *ng = realloc(p->gnames, (size_t)p->m.cap_groups * sizeof(*p->gnames));
        if (!ng) {
            p->m.ngroups--;
            return -1;
        }
        p->gnames = ng;
        p->gcap = p->m.cap_groups;
    }
    snprintf(p->gnames[gi], sizeof(p->gnames[gi]), "%s", name);
    return gi;
}

static int add_members(struct place_model *p, int host, int gi, int n)
{
    sched_vm member;
    sched_vm_defaults(&member);
    member.mips = member.ram_mb = 0;
    member.group = gi;
    for (int k = 0; k < n; k++) {
        int vi = sched_model_add_vm(&p->m, &member);
        if (vi < 0 || sched_model_attach(&p->m, vi, host) < 0)
            return -1;
    }
    return 0;
}

struct place_model *place_model_new(const struct place_host_row *hosts, size_t nhosts,
                                    const struct place_usage_row *usage, size_t nusage,
                                    const char *local_id, const struct place_conf *conf)
{
    struct place_model *p = calloc(1, sizeof(*p));
    if (!p || nhosts > (size_t)INT32_MAX / 2)
        goto oom0;
    size_t n1 = nhosts ? nhosts : 1;
    p->n = nhosts;
    p->conf = *conf;
    p->gi = p->forced = -1;
    sched_model_init(&p->m);
    p->hosts = malloc(n1 * sizeof(*p->hosts));
    p->use = calloc(n1, sizeof(*p->use));
    p->cpumask = calloc(n1, sizeof(*p->cpumask));
    p->excluded = calloc(n1, 1);
    p->pre = calloc(n1, 1);
    p->verdicts = calloc(n1, sizeof(*p->verdicts));
    struct idx *ix = malloc(n1 * sizeof(*ix));
    p->m.hosts = calloc(n1, sizeof(*p->m.hosts)); /* room for all at once */
    p->m.cap_hosts = (int)n1;
    if (!p->hosts || !p->use || !p->cpumask || !p->excluded || !p->pre || !p->verdicts || !ix ||
        !p->m.hosts)
        goto oom;
    memcpy(p->hosts, hosts, nhosts * sizeof(*hosts));
    sched_host h;
    sched_host_defaults(&h);
    uint32_t shared = ~0u; /* the models every up host that reported some runs */
    size_t reporting = 0;
    for (size_t i = 0; i < nhosts; i++) {
        const struct place_host_row *r = &hosts[i];
        ix[i] = (struct idx){r->id, (int)i};
        p->cpumask[i] = sched_cpu_models_mask(r->cpu_models);
        h.nlabels = 0;
        snprintf(h.name, sizeof(h.name), "%s", r->name);
        h.cores = place_host_vcpus(p, i);
        h.core_mips = PLACE_VCPU_MIPS;
        h.ram_mb = (double)place_host_mem_mb(p, i);
        h.cpu_ratio = h.ram_ratio = 1.0; /* the overcommit is in the capacity above */
        h.state = host_state(r->state);
        if (h.state == SCHED_HOST_UP && p->cpumask[i]) {
            shared &= p->cpumask[i];
            reporting++;
        }
        double load = r->cpu_load > 0 ? (r->cpu_load < 1 ? r->cpu_load : 1) : 0;
        h.util_mips = load * r->cpus * PLACE_VCPU_MIPS;
        labels_each(r->labels, add_host_label, &h);
        if (sched_model_add_host(&p->m, &h) < 0)
            goto oom;
    }
    /* the hosts and their states change only with a new model */
    p->baseline = sched_cpu_baseline(&shared, reporting ? 1 : 0);
    qsort(ix, nhosts, sizeof(*ix), idx_cmp);
    for (size_t k = 0; k < nusage; k++) {
        int i = host_index(ix, nhosts, usage[k].host, local_id);
        if (i < 0)
            continue; /* rows of a host without a row: no capacity to take */
        p->use[i].vms += usage[k].vms;
        p->use[i].cpus += usage[k].cpus;
        p->use[i].memory_mb += usage[k].memory_mb;
        p->use[i].floor_mb += usage[k].floor_mb;
        p->m.hosts[i].vcpu_mips += usage[k].cpus * PLACE_VCPU_MIPS;
        p->m.hosts[i].ram_used += (double)usage[k].memory_mb;
        if (usage[k].group[0]) {
            int gi = group_index(p, usage[k].group);
            if (gi < 0 || add_members(p, i, gi, usage[k].vms) < 0)
                goto oom;
        }
    }
    free(ix);
    return p;
oom:
    free(ix);
oom0:
    place_model_free(p);
    return NULL;
}

void place_model_free(struct place_model *p)
{
    if (!p)
        return;
    sched_model_free(&p->m);
    free(p->hosts);
    free(p->use);
    free(p->cpumask);
    free(p->excluded);
    free(p->pre);
    free(p->verdicts);
    free(p->gnames);
    free(p);
}

size_t place_model_hosts(const struct place_model *p)
{
    return p->n;
}

const struct place_host_row *place_model_host(const struct place_model *p, int i)
{
    return i >= 0 && (size_t)i < p->n ? &p->hosts[i] : NULL;
}

/* our pre-filters, in sched's order (after host state) */
static void pre_filter(struct place_model *p, const struct place_want *w)
{
    int model = w->cpu_model && w->cpu_model[0] ? sched_cpu_model_index(w->cpu_model) : -2;
    for (size_t i = 0; i < p->n; i++) {
        unsigned char r = PRE_NONE;
        if (p->forced >= 0 && (size_t)p->forced != i)
            r = PRE_NOT_ASKED;
        else if (w->exclude && !strcmp(p->hosts[i].id, w->exclude))
            r = PRE_SOURCE;
        else if (p->m.hosts[i].state != SCHED_HOST_UP)
            r = PRE_NONE; /* sched names it */
        else if (p->conf.host_max_vms > 0 && p->use[i].vms >= p->conf.host_max_vms)
            r = PRE_MAX_VMS;
        else if (!w->charge && (double)w->memory_mb > p->m.hosts[i].ram_mb + 1e-9)
            r = PRE_RAM_EVER;
        else if (w->charge && p->conf.mem_overcommit > 1.0 &&
                 p->use[i].floor_mb + place_want_floor_mb(w) > place_host_floor_cap_mb(p, i))
            r = PRE_MEM_FLOOR;
        else if (model != -2 && (model < 0 || !(p->cpumask[i] & (1u << model))))
            r = PRE_CPU_MODEL;
        p->pre[i] = r;
        p->excluded[i] = r != PRE_NONE;
    }
}

int place_model_decide(struct place_model *p, const struct place_want *w, struct place_state *ps,
                       int *chosen, json_t **explain, struct yerr *err)
{
    if (explain)
        *explain = NULL;
    *chosen = -1;
    if (w->cpus < 1)
        return yerr_set(err, YE_INVALID_ARGUMENT, "a VM needs at least 1 vCPU");
    if (place_labels_check(w->requires, "requires", err) < 0)
        return -1;
    p->w = w;
    p->forced = -1;
    p->pol = w->policy ? *w->policy : p->conf.policy;
    if (w->host[0]) {
        for (size_t i = 0; i < p->n && p->forced < 0; i++)
            if (!strcmp(p->hosts[i].id, w->host) || !strcmp(p->hosts[i].name, w->host))
                p->forced = (int)i;
        if (p->forced < 0)
            return yerr_set(err, YE_NOT_FOUND, "host '%s' not found", w->host);
    }
    p->gi = -1;
    if (w->group) {
        if ((p->gi = group_index(p, w->group->name)) < 0)
            return yerr_set(err, YE_INTERNAL, "out of memory");
        sched_group *g = &p->m.groups[p->gi];
        g->kind = strcmp(w->group->policy, "affinity") == 0 ? SCHED_GROUP_AFFINITY
                                                            : SCHED_GROUP_ANTI_AFFINITY;
        g->hard = w->group->hard != 0;
        g->max_per_host = w->group->max_per_host;
    }
    pre_filter(p, w);
    sched_vm v;
    sched_vm_defaults(&v);
    v.vcpus = w->cpus;
    v.mips = w->charge ? w->cpus * PLACE_VCPU_MIPS : 0;
    v.ram_mb = w->charge ? (double)w->memory_mb : 0;
    v.group = p->gi;
    snprintf(v.name, sizeof(v.name), "%s", w->name);
    labels_each(w->requires, add_vm_req, &v);
    int vi = sched_model_add_vm(&p->m, &v);
    if (vi < 0)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    sched_place_opts o = {.policy = p->pol, .rng = &ps->rng, .excluded = p->excluded};
    sched_explain ex = {.hosts = p->verdicts};
    p->m.rr_next = ps->rr_next;
    int best = p->n ? sched_place(&p->m, vi, &o, &ex) : -1;
    ps->rr_next = p->m.rr_next;
    for (size_t i = 0; i < p->n; i++)
        if (p->verdicts[i].score == 0)
            p->verdicts[i].score = 0; /* no "-0" in the explanation */
    if (best < 0)
        place_no_host_message(p, err);
    if (explain)
        *explain = place_explain_json(p, best, p->n ? ex.passed : 0);
    p->m.nvms--; /* the asked VM is never attached: the model is as it was */
    if (best < 0)
        return -1;
    *chosen = best;
    return 0;
}

int place_model_baseline(const struct place_model *p)
{
    return p->baseline;
}

int place_model_reserve(struct place_model *p, int i, const struct place_want *w)
{
    if (i < 0 || (size_t)i >= p->n)
        return -1;
    p->use[i].vms++;
    if (w->charge) {
        p->use[i].cpus += w->cpus;
        p->use[i].memory_mb += w->memory_mb;
        p->use[i].floor_mb += place_want_floor_mb(w);
        p->m.hosts[i].vcpu_mips += w->cpus * PLACE_VCPU_MIPS;
        p->m.hosts[i].ram_used += (double)w->memory_mb;
    }
    if (w->group) {
        int gi = group_index(p, w->group->name);
        if (gi < 0 || add_members(p, i, gi, 1) < 0)
            return -1;
    }
    return 0;
}

int place_decide(const struct place_host_row *hosts, size_t nhosts,
                 const struct place_usage_row *usage, size_t nusage, const char *local_id,
                 const struct place_want *w, const struct place_conf *conf, struct place_state *ps,
                 int *chosen, json_t **explain, struct yerr *err)
{
    struct place_model *pm = place_model_new(hosts, nhosts, usage, nusage, local_id, conf);
    if (!pm)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    int rc = place_model_decide(pm, w, ps, chosen, explain, err);
    place_model_free(pm);
    return rc;
}
