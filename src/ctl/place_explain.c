/*
 * place_explain.c - placement's verdicts in words (ctl/place.h): each
 * host's filter with the numbers or its score, the explanation object
 * `--explain` and `yun vm explain` print, and the no-valid-host message
 * counting the hosts per reason ("no valid host: 3 hosts: 1 in
 * maintenance, 2 without 8 GiB free memory (node1: needs ...)"; 409
 * conflict, or insufficient_capacity when room alone was missing). No I/O.
 */
#include "ctl/place_int.h"
#include "sched/cpu_models.h"

#include <stdio.h>
#include <string.h>

static void fmt_mb(char *buf, size_t len, uint64_t mb)
{
    if (mb >= 1024 && mb % 1024 == 0)
        snprintf(buf, len, "%llu GiB", (unsigned long long)(mb >> 10));
    else
        snprintf(buf, len, "%llu MiB", (unsigned long long)mb);
}

const char *place_filter_name(const struct place_model *p, size_t i)
{
    sched_reject r = p->verdicts[i].rejected;
    if (r == SCHED_REJ_EXCLUDED)
        return p->pre[i] == PRE_MAX_VMS     ? "host-max-vms"
               : p->pre[i] == PRE_RAM_EVER  ? "ram"
               : p->pre[i] == PRE_MEM_FLOOR ? "memory-floor"
               : p->pre[i] == PRE_CPU_MODEL ? "cpu-model"
               : p->pre[i] == PRE_SOURCE    ? "source"
                                            : "not-requested";
    return sched_reject_name(r);
}

/* labels of the VM the host lacks, "a=1,b=2" (the asked VM is the last) */
static void missing_labels(const struct place_model *p, size_t i, char *out, size_t len)
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
static void detail(const struct place_model *p, size_t i, char *out, size_t len)
{
    const struct place_want *w = p->w;
    const struct place_use *u = &p->use[i];
    const char *gname = w->group ? w->group->name : "";
    char miss[256];
    int vc = place_host_vcpus(p, i);
    uint64_t mem = place_host_mem_mb(p, i);
    switch (p->verdicts[i].rejected) {
    case SCHED_REJ_NONE:
        snprintf(out, len, "score %.4g; %d of %d vCPUs and %llu of %llu MiB allocated",
                 p->verdicts[i].score, u->cpus, vc, (unsigned long long)u->memory_mb,
                 (unsigned long long)mem);
        break;
    case SCHED_REJ_EXCLUDED:
        if (p->pre[i] == PRE_MAX_VMS) {
            snprintf(out, len, "holds %d VMs, host_max_vms is %d", u->vms, p->conf.host_max_vms);
        } else if (p->pre[i] == PRE_RAM_EVER) {
            snprintf(out, len, "needs %llu MiB memory, allows at most %llu MiB",
                     (unsigned long long)w->memory_mb, (unsigned long long)mem);
        } else if (p->pre[i] == PRE_MEM_FLOOR) {
            uint64_t cap = place_host_floor_cap_mb(p, i);
            snprintf(out, len,
                     "keeps at least %llu MiB (memory_min), %llu of %llu MiB free for floors "
                     "(usable memory less memory_margin, memory_overcommit %.1f)",
                     (unsigned long long)place_want_floor_mb(w),
                     (unsigned long long)(cap > u->floor_mb ? cap - u->floor_mb : 0),
                     (unsigned long long)cap, p->conf.mem_overcommit);
        } else if (p->pre[i] == PRE_CPU_MODEL) {
            char have[400];
            sched_cpu_models_list(p->cpumask[i], have, sizeof have);
            snprintf(out, len, "cannot run CPU model %s (its QEMU runs: %s)", w->cpu_model,
                     have[0] ? have : "none reported");
        } else if (p->pre[i] == PRE_SOURCE) {
            snprintf(out, len, "the vm's current host");
        } else {
            snprintf(out, len, "not the host asked for");
        }
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
                     p->conf.cpu_overcommit);
        else
            snprintf(out, len, "needs %d vCPUs, allows at most %d (%d cpus x cpu_overcommit %.1f)",
                     w->cpus, vc, p->hosts[i].cpus, p->conf.cpu_overcommit);
        break;
    case SCHED_REJ_RAM:
        snprintf(out, len, "needs %llu MiB memory, %llu of %llu MiB free",
                 (unsigned long long)w->memory_mb,
                 (unsigned long long)(mem > u->memory_mb ? mem - u->memory_mb : 0),
                 (unsigned long long)mem);
        break;
    case SCHED_REJ_ANTI_AFFINITY:
        snprintf(out, len, "group %s (hard anti-affinity) has %d member(s) here", gname,
                 place_members_here(p, i));
        break;
    case SCHED_REJ_AFFINITY:
        snprintf(out, len, "group %s (hard affinity) has its members on other hosts", gname);
        break;
    case SCHED_REJ_MAX_PER_HOST:
        snprintf(out, len, "group %s has %d member(s) here, at most %d per host", gname,
                 place_members_here(p, i), w->group ? w->group->max_per_host : 0);
        break;
    case SCHED_REJ__COUNT:
        snprintf(out, len, "not examined: %s takes the first host that passes",
                 sched_policy_name(p->pol));
        break;
    default:
        snprintf(out, len, "%s", sched_reject_name(p->verdicts[i].rejected));
        break;
    }
}

/* "2 without 8 GiB free memory" for the n hosts rejected by filter */
static int phrase(const struct place_model *p, const char *filter, int n, char *out, size_t len)
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
    if (!strcmp(filter, "memory-floor")) {
        fmt_mb(m, sizeof(m), place_want_floor_mb(w));
        return snprintf(out, len, "%d without %s free for its memory floor", n, m);
    }
    if (!strcmp(filter, "cpu-model"))
        return snprintf(out, len, "%d without CPU model %s", n, w->cpu_model);
    if (!strcmp(filter, "labels"))
        return snprintf(out, len, "%d without labels %s", n, w->requires);
    if (!strcmp(filter, "anti-affinity"))
        return snprintf(out, len, "%d with a member of group %s (hard anti-affinity)", n, g);
    if (!strcmp(filter, "affinity"))
        return snprintf(out, len, "%d without the members of group %s (hard affinity)", n, g);
    if (!strcmp(filter, "group-max-per-host"))
        return snprintf(out, len, "%d at group %s's %d per host", n, g,
                        w->group ? w->group->max_per_host : 0);
    if (!strcmp(filter, "source"))
        return snprintf(out, len, "%d the vm's current host", n);
    if (!strcmp(filter, "host-max-vms"))
        return snprintf(out, len, "%d at host_max_vms %d", n, p->conf.host_max_vms);
    return snprintf(out, len, "%d %s", n, filter);
}

static int order_index(const char *const *order, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (!strcmp(order[k], name))
            return k;
    return -1;
}

void place_no_host_message(const struct place_model *p, struct yerr *err)
{
    char msg[480], d[400];
    if (p->forced >= 0) {
        detail(p, (size_t)p->forced, d, sizeof(d));
        yerr_set(err, YE_CONFLICT, "no valid host: host %s refused (%s): %s",
                 p->hosts[p->forced].name, place_filter_name(p, (size_t)p->forced), d);
        return;
    }
    if (p->n == 0) {
        yerr_set(err, YE_CONFLICT, "no valid host: no hosts");
        return;
    }
    /* counts per filter; host state split into its words */
    int len = snprintf(msg, sizeof(msg), "%zu host%s:", p->n, p->n == 1 ? "" : "s");
    const char *sep = " ";
    for (int s = 0; s < 2; s++) {
        int n = 0;
        for (size_t i = 0; i < p->n; i++)
            n += p->verdicts[i].rejected == SCHED_REJ_STATE &&
                 (s == 0) == !strcmp(p->hosts[i].state, "maintenance");
        if (n && len < (int)sizeof(msg))
            len += snprintf(msg + len, sizeof(msg) - (size_t)len, "%s%d %s", sep, n,
                            s == 0 ? "in maintenance" : "down");
        if (n)
            sep = ", ";
    }
    static const char *const order[] = {"host-max-vms",  "labels",       "cpu",
                                        "ram",           "memory-floor", "cpu-model",
                                        "disk",          "bandwidth",    "group-max-per-host",
                                        "anti-affinity", "affinity",     "source"};
    enum { NORDER = sizeof(order) / sizeof(order[0]) };
    /* each verdict's place in order, found once (not by name per host: 10,000
     * hosts made this the costliest part of a refused placement) */
    int by_rej[SCHED_REJ__COUNT], by_pre[PRE__COUNT];
    for (int r = 0; r < SCHED_REJ__COUNT; r++)
        by_rej[r] = order_index(order, NORDER, sched_reject_name((sched_reject)r));
    for (int q = 0; q < PRE__COUNT; q++)
        by_pre[q] = q == PRE_MAX_VMS     ? order_index(order, NORDER, "host-max-vms")
                    : q == PRE_RAM_EVER  ? order_index(order, NORDER, "ram")
                    : q == PRE_MEM_FLOOR ? order_index(order, NORDER, "memory-floor")
                    : q == PRE_CPU_MODEL ? order_index(order, NORDER, "cpu-model")
                    : q == PRE_SOURCE    ? order_index(order, NORDER, "source")
                                         : -1;
    int count[NORDER] = {0};
    for (size_t i = 0; i < p->n; i++) {
        sched_reject r = p->verdicts[i].rejected;
        if (r == SCHED_REJ_STATE)
            continue;
        int k = r == SCHED_REJ_EXCLUDED          ? (p->pre[i] < PRE__COUNT ? by_pre[p->pre[i]] : -1)
                : r >= 0 && r < SCHED_REJ__COUNT ? by_rej[r]
                                                 : -1;
        if (k >= 0)
            count[k]++;
    }
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        if (!count[k] || len >= (int)sizeof(msg))
            continue;
        len += snprintf(msg + len, sizeof(msg) - (size_t)len, "%s", sep);
        if (len < (int)sizeof(msg))
            len += phrase(p, order[k], count[k], msg + len, sizeof(msg) - (size_t)len);
        sep = ", ";
    }
    /* refused for room alone: the capacity error (409 insufficient_capacity)
     * with the first host's numbers (the all-in-one's one host: the message
     * create always gave) */
    bool room = true;
    size_t first = p->n; /* the first host that counts (a move's source does not) */
    for (size_t i = 0; i < p->n && room; i++) {
        sched_reject r = p->verdicts[i].rejected;
        if (r == SCHED_REJ_EXCLUDED && p->pre[i] == PRE_SOURCE)
            continue;
        if (first == p->n)
            first = i;
        room =
            r == SCHED_REJ_CPU || r == SCHED_REJ_RAM || r == SCHED_REJ_DISK || r == SCHED_REJ_BW ||
            (r == SCHED_REJ_EXCLUDED && (p->pre[i] == PRE_RAM_EVER || p->pre[i] == PRE_MEM_FLOOR));
    }
    if (!room || first == p->n) {
        yerr_set(err, YE_CONFLICT, "no valid host: %s", msg);
        return;
    }
    detail(p, first, d, sizeof(d));
    yerr_set(err, YE_INSUFFICIENT_CAPACITY, "no valid host: %s (%s: %s)", msg, p->hosts[first].name,
             d);
}

static json_t *host_json(const struct place_model *p, size_t i, int chosen)
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
        json_object_set_new(h, "filter", json_string(place_filter_name(p, i)));
    return h;
}

json_t *place_explain_json(const struct place_model *p, int chosen, int passed)
{
    const struct place_want *w = p->w;
    json_t *e = json_pack("{s:s,s:s,s:i,s:I,s:s,s:b,s:i,s:i}", "vm", w->name, "policy",
                          sched_policy_name(p->pol), "cpus", w->cpus, "memory_mb",
                          (json_int_t)w->memory_mb, "requires", w->requires, "charged", w->charge,
                          "hosts_total", (int)p->n, "passed", passed);
    json_t *hosts = json_array();
    if (!e || !hosts) {
        json_decref(e);
        json_decref(hosts);
        return NULL;
    }
    json_object_set_new(e, "group", w->group ? json_string(w->group->name) : json_null());
    json_object_set_new(e, "forced_host", w->host[0] ? json_string(w->host) : json_null());
    size_t limit = w->list_limit > 0 ? (size_t)w->list_limit : p->n;
    if (chosen >= 0)
        json_array_append_new(hosts, host_json(p, (size_t)chosen, chosen));
    for (size_t i = 0; i < p->n && json_array_size(hosts) < limit; i++)
        if ((int)i != chosen)
            json_array_append_new(hosts, host_json(p, i, chosen));
    json_object_set_new(e, "hosts", hosts);
    json_object_set_new(e, "hosts_listed", json_integer((json_int_t)json_array_size(hosts)));
    char why[480];
    if (chosen >= 0) {
        json_object_set_new(
            e, "chosen",
            json_pack("{s:s,s:s}", "id", p->hosts[chosen].id, "name", p->hosts[chosen].name));
        snprintf(why, sizeof(why), "%s: host %s (score %.4g; %d of %zu hosts passed)",
                 sched_policy_name(p->pol), p->hosts[chosen].name, p->verdicts[chosen].score,
                 passed, p->n);
    } else {
        struct yerr err;
        place_no_host_message(p, &err);
        json_object_set_new(e, "chosen", json_null());
        snprintf(why, sizeof(why), "%s", err.message);
    }
    json_object_set_new(e, "reason", json_string(why));
    return e;
}
