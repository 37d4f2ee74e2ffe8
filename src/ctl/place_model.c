/*
 * place_model.c - the pure part of placement (ctl/place.h): the store's
 * compact rows become a sched_model (one sched host per row, its summed
 * allocation set as the host's aggregates, the asked-about group's members
 * as zero-size VMs attached where they are), sched_place() filters and
 * weighs, and every host's verdict becomes the explanation. No I/O.
 *
 * Units: one vCPU is 1000 MIPS; a host offers floor(cpus x cpu_overcommit)
 * vCPUs and (memory - reserved_memory) x memory_overcommit MiB, which is
 * the all-in-one's capacity rule (ctl/capacity.c).
 */
#include "ctl/place.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VCPU_MIPS 1000.0
/* our own verdicts, beyond sched's, for hosts passed to sched as excluded */
enum { PRE_NONE = 0, PRE_NOT_ASKED, PRE_MAX_VMS };

void place_state_init(struct place_state *ps, uint64_t seed)
{
    ps->rr_next = 0;
    sched_rng_seed(&ps->rng, seed);
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

static int usage_cmp(const void *a, const void *b)
{
    return strcmp(((const struct place_usage_row *)a)->host,
                  ((const struct place_usage_row *)b)->host);
}

static const struct place_usage_row *usage_find(const struct place_usage_row *u, size_t n,
                                                const char *host)
{
    struct place_usage_row key;
    snprintf(key.host, sizeof(key.host), "%s", host);
    return bsearch(&key, u, n, sizeof(*u), usage_cmp);
}

/* Everything one decision holds. */
struct pm {
    const struct place_host_row *hosts;
    size_t n;
    const struct place_want *w;
    const struct place_conf *conf;
    sched_model m;
    struct place_usage_row *use; /* per host, summed ("" rows folded into the local host) */
    unsigned char *excluded, *pre;
    sched_host_verdict *verdicts;
    int forced; /* index or -1 */
};

static int host_vcpus(const struct pm *p, size_t i)
{
    return (int)floor(p->hosts[i].cpus * p->conf->cpu_overcommit + 1e-9);
}

static uint64_t host_mem_mb(const struct pm *p, size_t i)
{
    uint64_t mem = p->hosts[i].memory, res = p->conf->reserved_memory;
    uint64_t usable = mem > res ? mem - res : 0;
    return (uint64_t)((double)(usable >> 20) * p->conf->mem_overcommit);
}

static sched_host_state host_state(const char *s)
{
    if (!strcmp(s, "up"))
        return SCHED_HOST_UP;
    if (!strcmp(s, "maintenance"))
        return SCHED_HOST_MAINT;
    return SCHED_HOST_DOWN;
}

static int build(struct pm *p, const struct place_usage_row *usage, size_t nusage,
                 const char *local_id, struct place_state *ps)
{
    const struct place_want *w = p->w;
    struct place_usage_row *sorted = NULL;
    if (nusage) {
        sorted = malloc(nusage * sizeof(*sorted));
        if (!sorted)
            return -1;
        memcpy(sorted, usage, nusage * sizeof(*sorted));
        qsort(sorted, nusage, sizeof(*sorted), usage_cmp);
    }
    p->use = calloc(p->n ? p->n : 1, sizeof(*p->use));
    p->excluded = calloc(p->n ? p->n : 1, 1);
    p->pre = calloc(p->n ? p->n : 1, 1);
    p->verdicts = calloc(p->n ? p->n : 1, sizeof(*p->verdicts));
    int gi = -1;
    if (!p->use || !p->excluded || !p->pre || !p->verdicts)
        goto oom;
    if (w->group) {
        sched_group g = {.kind = strcmp(w->group->policy, "affinity") == 0
                                     ? SCHED_GROUP_AFFINITY
                                     : SCHED_GROUP_ANTI_AFFINITY,
                         .hard = w->group->hard != 0,
                         .max_per_host = w->group->max_per_host};
        snprintf(g.name, sizeof(g.name), "%s", w->group->name);
        if ((gi = sched_model_add_group(&p->m, &g)) < 0)
            goto oom;
    }
    sched_vm member;
    sched_vm_defaults(&member);
    member.mips = member.ram_mb = 0;
    member.group = gi;
    for (size_t i = 0; i < p->n; i++) {
        const struct place_host_row *r = &p->hosts[i];
        struct place_usage_row *u = &p->use[i];
        const struct place_usage_row *f = usage_find(sorted, nusage, r->id);
        if (f)
            *u = *f;
        if (r->id[0] && local_id && !strcmp(r->id, local_id) &&
            (f = usage_find(sorted, nusage, ""))) {
            u->vms += f->vms;
            u->cpus += f->cpus;
            u->memory_mb += f->memory_mb;
            u->members += f->members;
        }
        sched_host h;
        sched_host_defaults(&h);
        snprintf(h.name, sizeof(h.name), "%s", r->name);
        h.cores = host_vcpus(p, i);
        h.core_mips = VCPU_MIPS;
        h.ram_mb = (double)host_mem_mb(p, i);
        h.cpu_ratio = h.ram_ratio = 1.0; /* the overcommit is in the capacity above */
        h.state = host_state(r->state);
        double load = r->cpu_load > 0 ? (r->cpu_load < 1 ? r->cpu_load : 1) : 0;
        h.util_mips = load * r->cpus * VCPU_MIPS;
        labels_each(r->labels, add_host_label, &h);
        int hi = sched_model_add_host(&p->m, &h);
        if (hi < 0)
            goto oom;
        sched_host *sh = &p->m.hosts[hi];
        double cap = sched_host_capacity(sh);
        sh->vcpu_mips = u->cpus * VCPU_MIPS;
        sh->ram_used = (double)u->memory_mb;
        if (!w->charge) {
            /* could it ever fit: weighers still see the allocation */
            if (sh->vcpu_mips > cap)
                sh->vcpu_mips = cap;
            sh->ram_used = 0;
        }
        for (int k = 0; gi >= 0 && k < u->members; k++) {
            int vi = sched_model_add_vm(&p->m, &member);
            if (vi < 0 || sched_model_attach(&p->m, vi, hi) < 0)
                goto oom;
        }
        if (p->forced >= 0 && (size_t)p->forced != i)
            p->pre[i] = PRE_NOT_ASKED;
        else if (h.state == SCHED_HOST_UP && p->conf->host_max_vms > 0 &&
                 u->vms >= p->conf->host_max_vms)
            p->pre[i] = PRE_MAX_VMS;
        p->excluded[i] = p->pre[i] != PRE_NONE;
    }
    p->m.rr_next = ps->rr_next;
    free(sorted);
    return 0;
oom:
    free(sorted);
    return -1;
}

/* ---- the explanation ---- */

static void fmt_mb(char *buf, size_t len, uint64_t mb)
{
    if (mb >= 1024 && mb % 1024 == 0)
        snprintf(buf, len, "%llu GiB", (unsigned long long)(mb >> 10));
    else
        snprintf(buf, len, "%llu MiB", (unsigned long long)mb);
}

static const char *filter_name(const struct pm *p, size_t i)
{
    sched_reject r = p->verdicts[i].rejected;
    if (r == SCHED_REJ_EXCLUDED)
        return p->pre[i] == PRE_MAX_VMS ? "host-max-vms" : "not-requested";
    return sched_reject_name(r);
}

/* labels of the VM the host lacks, "a=1,b=2" */
static void missing_labels(const struct pm *p, size_t i, char *out, size_t len)
{
    const sched_host *h = &p->m.hosts[i];
    const sched_vm *v = &p->m.vms[p->m.nvms - 1];
    size_t o = 0;
    out[0] = 0;
    for (int k = 0; k < v->nreq; k++) {
        bool has = false;
        for (int j = 0; j < h->nlabels && !has; j++)
            has = !strcmp(h->labels[j], v->req[k]);
        if (!has && o < len)
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", v->req[k]);
    }
}

/* One host's verdict in words, with the numbers. */
static void detail(const struct pm *p, size_t i, char *out, size_t len)
{
    const struct place_want *w = p->w;
    const struct place_usage_row *u = &p->use[i];
    const char *gname = w->group ? w->group->name : "";
    char a[32], b[32], c[32], miss[256];
    int vc = host_vcpus(p, i);
    uint64_t mem = host_mem_mb(p, i);
    switch (p->verdicts[i].rejected) {
    case SCHED_REJ_NONE:
        snprintf(out, len, "score %.4g; %d of %d vCPUs and %llu of %llu MiB allocated",
                 p->verdicts[i].score, u->cpus, vc, (unsigned long long)u->memory_mb,
                 (unsigned long long)mem);
        break;
    case SCHED_REJ_EXCLUDED:
        if (p->pre[i] == PRE_MAX_VMS)
            snprintf(out, len, "holds %d VMs, host_max_vms is %d", u->vms, p->conf->host_max_vms);
        else
            snprintf(out, len, "not the host asked for");
        break;
    case SCHED_REJ_STATE:
        snprintf(out, len, "host is %s", p->hosts[i].state);
        break;
    case SCHED_REJ_LABELS:
        missing_labels(p, i, miss, sizeof(miss));
        snprintf(out, len, "lacks label %s (has '%s')", miss, p->hosts[i].labels);
        break;
    case SCHED_REJ_CPU:
        if (w->charge)
            snprintf(out, len, "needs %d vCPUs, %d of %d free (%d cpus x cpu_overcommit %.1f)",
                     w->cpus, vc > u->cpus ? vc - u->cpus : 0, vc, p->hosts[i].cpus,
                     p->conf->cpu_overcommit);
        else
            snprintf(out, len, "needs %d vCPUs, allows at most %d (%d cpus x cpu_overcommit %.1f)",
                     w->cpus, vc, p->hosts[i].cpus, p->conf->cpu_overcommit);
        break;
    case SCHED_REJ_RAM:
        fmt_mb(a, sizeof(a), w->memory_mb);
        fmt_mb(b, sizeof(b),
               w->charge && mem > u->memory_mb ? mem - u->memory_mb
               : w->charge                     ? 0
                                               : mem);
        fmt_mb(c, sizeof(c), mem);
        snprintf(out, len, "needs %s memory, %s of %s %s", a, b, c, w->charge ? "free" : "allowed");
        break;
    case SCHED_REJ_ANTI_AFFINITY:
        snprintf(out, len, "group %s (hard anti-affinity) has %d member(s) here", gname,
                 u->members);
        break;
    case SCHED_REJ_AFFINITY:
        snprintf(out, len, "group %s (hard affinity) has its members on other hosts", gname);
        break;
    case SCHED_REJ_MAX_PER_HOST:
        snprintf(out, len, "group %s has %d member(s) here, at most %d per host", gname, u->members,
                 w->group ? w->group->max_per_host : 0);
        break;
    case SCHED_REJ__COUNT:
        snprintf(out, len, "not examined: %s takes the first host that passes",
                 sched_policy_name(p->conf->policy));
        break;
    default:
        snprintf(out, len, "%s", sched_reject_name(p->verdicts[i].rejected));
        break;
    }
}

/* "2 without 8 GiB free memory" for the hosts rejected for r */
static int phrase(const struct pm *p, const char *filter, int n, char *out, size_t len)
{
    const struct place_want *w = p->w;
    const char *g = w->group ? w->group->name : "";
    char m[32];
    fmt_mb(m, sizeof(m), w->memory_mb);
    if (!strcmp(filter, "cpu"))
        return snprintf(out, len, w->charge ? "%d without %d vCPUs free" : "%d below %d vCPUs", n,
                        w->cpus);
    if (!strcmp(filter, "ram"))
        return snprintf(out, len, w->charge ? "%d without %s free memory" : "%d below %s memory", n,
                        m);
    if (!strcmp(filter, "labels"))
        return snprintf(out, len, "%d without labels %s", n, w->requires);
    if (!strcmp(filter, "anti-affinity"))
        return snprintf(out, len, "%d with a member of group %s (hard anti-affinity)", n, g);
    if (!strcmp(filter, "affinity"))
        return snprintf(out, len, "%d without the members of group %s (hard affinity)", n, g);
    if (!strcmp(filter, "group-max-per-host"))
        return snprintf(out, len, "%d at group %s's %d per host", n, g,
                        w->group ? w->group->max_per_host : 0);
    if (!strcmp(filter, "host-max-vms"))
        return snprintf(out, len, "%d at host_max_vms %d", n, p->conf->host_max_vms);
    return snprintf(out, len, "%d %s", n, filter);
}

static json_t *host_json(const struct pm *p, size_t i, int chosen)
{
    char d[512];
    detail(p, i, d, sizeof(d));
    bool ok = p->verdicts[i].rejected == SCHED_REJ_NONE;
    bool skipped = p->verdicts[i].rejected == SCHED_REJ__COUNT;
    json_t *h = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", p->hosts[i].id, "name", p->hosts[i].name,
                          "state", p->hosts[i].state, "verdict",
                          (int)i == chosen ? "chosen"
                          : ok             ? "passed"
                          : skipped        ? "not-examined"
                                           : "rejected",
                          "detail", d);
    if (!h)
        return NULL;
    if (ok)
        json_object_set_new(h, "score", json_real(p->verdicts[i].score));
    else if (!skipped)
        json_object_set_new(h, "filter", json_string(filter_name(p, i)));
    return h;
}

/* The no-valid-host message: "no valid host: 3 hosts: 2 without 8 GiB free
 * memory, 1 in maintenance" (a forced host: its own verdict). */
static void no_host_message(const struct pm *p, struct yerr *err)
{
    char msg[480], d[400];
    if (p->forced >= 0) {
        detail(p, (size_t)p->forced, d, sizeof(d));
        yerr_set(err, YE_CONFLICT, "no valid host: host %s refused (%s): %s",
                 p->hosts[p->forced].name, filter_name(p, (size_t)p->forced), d);
        return;
    }
    if (p->n == 0) {
        yerr_set(err, YE_CONFLICT, "no valid host: no hosts");
        return;
    }
    /* counts per filter, host state split into its words */
    static const char *const states[] = {"maintenance", "down"};
    int len = snprintf(msg, sizeof(msg), "%zu host%s:", p->n, p->n == 1 ? "" : "s");
    const char *sep = " ";
    for (int s = 0; s < 2; s++) {
        int n = 0;
        for (size_t i = 0; i < p->n; i++)
            n += p->verdicts[i].rejected == SCHED_REJ_STATE &&
                 (s == 0) == !strcmp(p->hosts[i].state, "maintenance");
        if (n && len < (int)sizeof(msg))
            len += snprintf(msg + len, sizeof(msg) - (size_t)len, "%s%d %s%s", sep, n,
                            s == 0 ? "in " : "", states[s]);
        if (n)
            sep = ", ";
    }
    static const char *const order[] = {
        "host-max-vms",       "labels",        "cpu",     "ram", "disk", "bandwidth",
        "group-max-per-host", "anti-affinity", "affinity"};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        int n = 0;
        for (size_t i = 0; i < p->n; i++)
            n += p->verdicts[i].rejected != SCHED_REJ_STATE && !strcmp(filter_name(p, i), order[k]);
        if (!n || len >= (int)sizeof(msg))
            continue;
        len += snprintf(msg + len, sizeof(msg) - (size_t)len, "%s", sep);
        if (len < (int)sizeof(msg))
            len += phrase(p, order[k], n, msg + len, sizeof(msg) - (size_t)len);
        sep = ", ";
    }
    yerr_set(err, YE_CONFLICT, "no valid host: %s", msg);
}

static json_t *explain_json(const struct pm *p, int chosen, const sched_explain *ex)
{
    const struct place_want *w = p->w;
    json_t *e = json_pack("{s:s,s:s,s:i,s:I,s:s,s:b,s:i,s:i}", "vm", w->name, "policy",
                          sched_policy_name(p->conf->policy), "cpus", w->cpus, "memory_mb",
                          (json_int_t)w->memory_mb, "requires", w->requires, "charged", w->charge,
                          "hosts_total", (int)p->n, "passed", ex->passed);
    json_t *hosts = json_array();
    if (!e || !hosts) {
        json_decref(e);
        json_decref(hosts);
        return NULL;
    }
    json_object_set_new(e, "group", w->group ? json_string(w->group->name) : json_null());
    json_object_set_new(e, "forced_host", w->host[0] ? json_string(w->host) : json_null());
    size_t limit = p->conf->list_limit > 0 ? (size_t)p->conf->list_limit : p->n;
    if (chosen >= 0)
        json_array_append_new(hosts, host_json(p, (size_t)chosen, chosen));
    for (size_t i = 0; i < p->n && json_array_size(hosts) < limit; i++)
        if ((int)i != chosen)
            json_array_append_new(hosts, host_json(p, i, chosen));
    json_object_set_new(e, "hosts", hosts);
    json_object_set_new(e, "hosts_listed", json_integer((json_int_t)json_array_size(hosts)));
    json_object_set_new(e, "chosen",
                        chosen >= 0 ? json_pack("{s:s,s:s}", "id", p->hosts[chosen].id, "name",
                                                p->hosts[chosen].name)
                                    : json_null());
    return e;
}

int place_decide(const struct place_host_row *hosts, size_t nhosts,
                 const struct place_usage_row *usage, size_t nusage, const char *local_id,
                 const struct place_want *w, const struct place_conf *conf, struct place_state *ps,
                 int *chosen, json_t **explain, struct yerr *err)
{
    if (explain)
        *explain = NULL;
    *chosen = -1;
    if (w->cpus < 1)
        return yerr_set(err, YE_INVALID_ARGUMENT, "a VM needs at least 1 vCPU");
    if (place_labels_check(w->requires, "requires", err) < 0)
        return -1;
    if (nhosts > (size_t)INT32_MAX / 2)
        return yerr_set(err, YE_INTERNAL, "too many hosts");
    struct pm p = {.hosts = hosts, .n = nhosts, .w = w, .conf = conf, .forced = -1};
    if (w->host[0]) {
        for (size_t i = 0; i < nhosts && p.forced < 0; i++)
            if (!strcmp(hosts[i].id, w->host) || !strcmp(hosts[i].name, w->host))
                p.forced = (int)i;
        if (p.forced < 0)
            return yerr_set(err, YE_NOT_FOUND, "host '%s' not found", w->host);
    }
    sched_model_init(&p.m);
    int rc = -1;
    if (build(&p, usage, nusage, local_id, ps) < 0) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        goto out;
    }
    sched_vm v;
    sched_vm_defaults(&v);
    v.vcpus = w->cpus;
    v.mips = w->charge ? w->cpus * VCPU_MIPS : 0;
    v.ram_mb = (double)w->memory_mb;
    v.group = p.m.ngroups ? 0 : -1;
    snprintf(v.name, sizeof(v.name), "%s", w->name);
    labels_each(w->requires, add_vm_req, &v);
    int vi = sched_model_add_vm(&p.m, &v);
    if (vi < 0) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        goto out;
    }
    sched_place_opts o = {.policy = conf->policy, .rng = &ps->rng, .excluded = p.excluded};
    sched_explain ex = {.hosts = p.verdicts};
    int best = p.n ? sched_place(&p.m, vi, &o, &ex) : -1;
    for (size_t i = 0; i < p.n; i++)
        if (p.verdicts[i].score == 0)
            p.verdicts[i].score = 0; /* no "-0" in the explanation */
    if (!p.n)
        ex.chosen = -1;
    ps->rr_next = p.m.rr_next;
    if (explain) {
        *explain = explain_json(&p, best, &ex);
        if (*explain && best >= 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s: host %s (score %.4g; %d of %zu hosts passed)",
                     sched_policy_name(conf->policy), hosts[best].name, p.verdicts[best].score,
                     ex.passed, p.n);
            json_object_set_new(*explain, "reason", json_string(why));
        }
    }
    if (best < 0) {
        no_host_message(&p, err);
        if (explain && *explain)
            json_object_set_new(*explain, "reason", json_string(err->message));
        goto out;
    }
    *chosen = best;
    rc = 0;
out:
    sched_model_free(&p.m);
    free(p.use);
    free(p.excluded);
    free(p.pre);
    free(p.verdicts);
    return rc;
}
