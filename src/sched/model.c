/* model.c - the scheduler's data model: hosts, VMs, groups, their resource
 * aggregates, the power model and the library's own seeded PRNG. No I/O. */
#include "sched/sched.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64 expands the seed so that nearby seeds give unrelated streams */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sched_rng_seed(sched_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sched_rng_next(sched_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

double sched_rng_unit(sched_rng *r)
{
    return (double)(sched_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t sched_rng_below(sched_rng *r, uint32_t n)
{
    if (n <= 1)
        return 0;
    /* rejection keeps the draw unbiased for any n */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = sched_rng_next(r);
    while (x >= lim);
    return (uint32_t)(x % n);
}

void sched_model_init(sched_model *m)
{
    memset(m, 0, sizeof(*m));
}

void sched_model_free(sched_model *m)
{
    for (int i = 0; i < m->nhosts; i++)
        free(m->hosts[i].vms);
    free(m->hosts);
    free(m->vms);
    free(m->groups);
    memset(m, 0, sizeof(*m));
}

/* grows an array of elements of size sz to hold at least need entries */
static int grow(void **arr, int *cap, int need, size_t sz)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *p = realloc(*arr, (size_t)nc * sz);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

void sched_host_defaults(sched_host *h)
{
    memset(h, 0, sizeof(*h));
    h->cores = 1;
    h->core_mips = 1000;
    h->ram_mb = 1024;
    h->cpu_ratio = h->ram_ratio = 1.0;
    h->state = SCHED_HOST_UP;
    for (int i = 0; i < SCHED_POWER_PTS; i++)
        h->power.watts[i] = 100 + 10 * i;
}

void sched_vm_defaults(sched_vm *v)
{
    memset(v, 0, sizeof(*v));
    v->vcpus = 1;
    v->mips = 1000;
    v->ram_mb = 512;
    v->ram_active_mb = v->bw_active_mbps = -1;
    v->group = -1;
    v->host = -1;
}

int sched_model_add_host(sched_model *m, const sched_host *tmpl)
{
    if (grow((void **)&m->hosts, &m->cap_hosts, m->nhosts + 1, sizeof(sched_host)))
        return -1;
    sched_host *h = &m->hosts[m->nhosts];
    *h = *tmpl;
    h->vms = NULL;
    h->nvms = h->cap_vms = 0;
    h->alloc_mips = h->vcpu_mips = h->ram_used = h->disk_used = h->bw_used = 0;
    return m->nhosts++;
}

int sched_model_add_vm(sched_model *m, const sched_vm *tmpl)
{
    if (grow((void **)&m->vms, &m->cap_vms, m->nvms + 1, sizeof(sched_vm)))
        return -1;
    sched_vm *v = &m->vms[m->nvms];
    *v = *tmpl;
    v->host = -1;
    return m->nvms++;
}

int sched_model_add_group(sched_model *m, const sched_group *tmpl)
{
    if (grow((void **)&m->groups, &m->cap_groups, m->ngroups + 1, sizeof(sched_group)))
        return -1;
    m->groups[m->ngroups] = *tmpl;
    return m->ngroups++;
}

static int add_kv(char (*arr)[SCHED_LABEL_MAX], int *n, const char *kv)
{
    if (*n >= SCHED_MAX_LABELS || strlen(kv) >= SCHED_LABEL_MAX)
        return -1;
    strcpy(arr[(*n)++], kv);
    return 0;
}

int sched_host_add_label(sched_host *h, const char *kv)
{
    return add_kv(h->labels, &h->nlabels, kv);
}

int sched_vm_add_req(sched_vm *v, const char *kv)
{
    return add_kv(v->req, &v->nreq, kv);
}

/* CloudSim's time-shared scheduler: once requests exceed capacity nothing is
 * left, otherwise capacity minus the sum of (capped) requests. */
double sched_host_available_mips(const sched_host *h)
{
    double cap = sched_host_capacity(h);
    return h->alloc_mips > cap ? 0 : cap - h->alloc_mips;
}

/* A VM's virtual core cannot get more than one physical core. */
double sched_vm_capped_req(const sched_host *h, const sched_vm *v)
{
    int n = v->vcpus > 0 ? v->vcpus : 1;
    double per = v->req_mips / n;
    if (per > h->core_mips)
        per = h->core_mips;
    return per * n;
}

static void host_account(sched_host *h, const sched_vm *v, double sign)
{
    h->alloc_mips += sign * sched_vm_capped_req(h, v);
    h->vcpu_mips += sign * v->mips;
    h->ram_used += sign * sched_vm_ram(v);
    h->disk_used += sign * v->disk_gb;
    h->bw_used += sign * sched_vm_bw(v);
}

int sched_model_attach(sched_model *m, int vm, int host)
{
    sched_host *h = &m->hosts[host];
    sched_vm *v = &m->vms[vm];
    if (grow((void **)&h->vms, &h->cap_vms, h->nvms + 1, sizeof(int)))
        return -1;
    h->vms[h->nvms++] = vm;
    v->host = host;
    host_account(h, v, 1);
    return 0;
}

void sched_model_detach(sched_model *m, int vm)
{
    sched_vm *v = &m->vms[vm];
    if (v->host < 0)
        return;
    sched_host *h = &m->hosts[v->host];
    for (int i = 0; i < h->nvms; i++) {
        if (h->vms[i] == vm) {
            /* keep order: selection policies break ties by position */
            memmove(&h->vms[i], &h->vms[i + 1], (size_t)(h->nvms - i - 1) * sizeof(int));
            h->nvms--;
            break;
        }
    }
    host_account(h, v, -1);
    if (h->nvms == 0) /* avoid drift from repeated float add/sub */
        h->alloc_mips = h->vcpu_mips = h->ram_used = h->disk_used = h->bw_used = 0;
    v->host = -1;
}

void sched_model_recompute_host(sched_model *m, int host)
{
    sched_host *h = &m->hosts[host];
    h->alloc_mips = h->vcpu_mips = h->ram_used = h->disk_used = h->bw_used = 0;
    for (int i = 0; i < h->nvms; i++)
        host_account(h, &m->vms[h->vms[i]], 1);
}

void sched_vm_push_hist(sched_vm *v, double util)
{
    int n = v->hist_len < SCHED_HIST ? v->hist_len : SCHED_HIST - 1;
    memmove(&v->hist[1], &v->hist[0], (size_t)n * sizeof(double));
    v->hist[0] = util;
    v->hist_len = n + 1;
    /* track the extent of non-zero data so detectors need not scan for it */
    if (v->hist_nz > 0 && v->hist_nz + 1 <= v->hist_len)
        v->hist_nz++;
    else if (v->hist_nz > 0) { /* the oldest non-zero sample fell off the end */
        int i = v->hist_len - 1;
        while (i >= 0 && v->hist[i] == 0)
            i--;
        v->hist_nz = i + 1;
    } else
        v->hist_nz = util != 0 ? 1 : 0;
}
