/* sched.h - public API of yun's scheduler library: the host/VM model, the
 * filter -> weigh placement pipeline with explanations, overload/underload
 * detection, VM selection, dynamic consolidation and ILP placement.
 *
 * The library does no I/O, reads no clock and uses no global random state, so
 * the daemon and the simulator (src/sim) run exactly the same decisions. */
#ifndef YUN_SCHED_H
#define YUN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_NAME_MAX   48
#define SCHED_MAX_LABELS 8
#define SCHED_LABEL_MAX  48
#define SCHED_HIST       30 /* utilisation samples kept per VM (as CloudSim) */
#define SCHED_POWER_PTS  11 /* SPECpower points at 0,10,..,100 % load */

/* ---- deterministic PRNG (splitmix64 seeded xoshiro256**) ---- */
typedef struct sched_rng {
    uint64_t s[4];
} sched_rng;
void sched_rng_seed(sched_rng *r, uint64_t seed);
uint64_t sched_rng_next(sched_rng *r);
double sched_rng_unit(sched_rng *r);                /* [0,1) */
uint32_t sched_rng_below(sched_rng *r, uint32_t n); /* [0,n), unbiased */

/* ---- power model: watts at 0..100 % CPU, linear between points ---- */
typedef struct sched_power {
    double watts[SCHED_POWER_PTS];
} sched_power;
/* watts at util (clamped to [0,1]), linear between the SPECpower points */
static inline double sched_power_at(const sched_power *p, double util)
{
    if (!(util > 0))
        return p->watts[0];
    if (util >= 1)
        return p->watts[SCHED_POWER_PTS - 1];
    double x = util * (SCHED_POWER_PTS - 1);
    int i = (int)x;
    return p->watts[i] + (p->watts[i + 1] - p->watts[i]) * (x - i);
}

typedef enum { SCHED_HOST_UP, SCHED_HOST_MAINT, SCHED_HOST_DOWN, SCHED_HOST_OFF } sched_host_state;

typedef struct sched_host {
    /* hot fields first: the simulator walks every host many times a step */
    int cores;
    double core_mips; /* capacity of one core ("PE") */
    double ram_mb, disk_gb, bw_mbps;
    double cpu_ratio, ram_ratio; /* overcommit ratios applied to capacity filters */
    int max_vms;                 /* 0 = unlimited */
    sched_host_state state;
    /* dynamic state, maintained by sched_model_* helpers */
    double util_mips;  /* measured CPU use at the last observation */
    double alloc_mips; /* sum of (per-core capped) CPU requests of resident VMs */
    double vcpu_mips;  /* sum of the nominal MIPS of resident VMs (for overcommit) */
    double ram_used, disk_used, bw_used;
    int nvms, cap_vms;
    int *vms; /* indices into model->vms */
    sched_power power;
    int nlabels;
    char labels[SCHED_MAX_LABELS][SCHED_LABEL_MAX]; /* "key=value" */
    char name[SCHED_NAME_MAX];
} sched_host;

typedef struct sched_vm {
    /* hot fields first */
    int vcpus;
    int host;        /* index or -1 */
    double mips;     /* nominal MIPS of the whole VM (vcpus * per-vcpu) */
    double req_mips; /* current CPU demand in MIPS (utilisation * mips) */
    double ram_mb, disk_gb, bw_mbps;
    /* what admission control charges for RAM and network; < 0 means the nominal
     * size. CloudSim's reference workload charges 0 once a VM runs. */
    double ram_active_mb, bw_active_mbps;
    int group; /* index into model->groups or -1 */
    bool in_migration;
    int hist_len;            /* valid samples in hist (append with sched_vm_push_hist) */
    int hist_nz;             /* 1 + index of the oldest non-zero sample, 0 if none */
    double hist[SCHED_HIST]; /* utilisation fraction, hist[0] newest */
    int nreq;                /* required host labels "key=value" */
    char req[SCHED_MAX_LABELS][SCHED_LABEL_MAX];
    char name[SCHED_NAME_MAX];
} sched_vm;

typedef enum { SCHED_GROUP_NONE, SCHED_GROUP_AFFINITY, SCHED_GROUP_ANTI_AFFINITY } sched_group_kind;

typedef struct sched_group {
    char name[SCHED_NAME_MAX];
    sched_group_kind kind;
    bool hard;        /* hard: filter; soft: weigher penalty */
    int max_per_host; /* 0 = unlimited */
} sched_group;

typedef struct sched_model {
    sched_host *hosts;
    int nhosts, cap_hosts;
    sched_vm *vms;
    int nvms, cap_vms;
    sched_group *groups;
    int ngroups, cap_groups;
    int rr_next;   /* round-robin cursor */
    int scan_next; /* where a limited scan starts next time */
} sched_model;

void sched_model_init(sched_model *m);
void sched_model_free(sched_model *m);
/* Adds a host/VM/group copied from the template; returns its index or -1 (ENOMEM). */
int sched_model_add_host(sched_model *m, const sched_host *tmpl);
int sched_model_add_vm(sched_model *m, const sched_vm *tmpl);
int sched_model_add_group(sched_model *m, const sched_group *tmpl);
int sched_host_add_label(sched_host *h, const char *kv);
int sched_vm_add_req(sched_vm *v, const char *kv);
/* Defaults: 1 core, ratios 1.0, state up, no labels; VM: 1 vcpu, no group, unplaced. */
void sched_host_defaults(sched_host *h);
void sched_vm_defaults(sched_vm *v);

static inline double sched_host_capacity(const sched_host *h) /* cores * core_mips */
{
    return h->cores * h->core_mips;
}
static inline double sched_vm_ram(const sched_vm *v)
{
    return v->ram_active_mb >= 0 ? v->ram_active_mb : v->ram_mb;
}
static inline double sched_vm_bw(const sched_vm *v)
{
    return v->bw_active_mbps >= 0 ? v->bw_active_mbps : v->bw_mbps;
}
double sched_host_available_mips(const sched_host *h);
double sched_vm_capped_req(const sched_host *h, const sched_vm *v); /* per-core cap */
/* Bind/unbind VM <-> host, updating every aggregate. Return 0 / -1. */
int sched_model_attach(sched_model *m, int vm, int host);
void sched_model_detach(sched_model *m, int vm);
void sched_vm_push_hist(sched_vm *v, double util);
void sched_model_recompute_host(sched_model *m, int host); /* rebuild aggregates */

/* ---- placement pipeline ---- */
typedef enum {
    SCHED_POL_PACK,      /* best fit: most allocated CPU after placement */
    SCHED_POL_SPREAD,    /* worst fit: least allocated */
    SCHED_POL_FIRST_FIT, /* lowest index that passes */
    SCHED_POL_ROUND_ROBIN,
    SCHED_POL_RANDOM,     /* seeded */
    SCHED_POL_LOAD_AWARE, /* least measured use */
    SCHED_POL_POWER_AWARE /* PABFD: least power increase */
} sched_policy;

typedef enum {
    SCHED_REJ_NONE = 0,
    SCHED_REJ_STATE, /* host not up */
    SCHED_REJ_CPU,   /* CPU capacity (with overcommit / per-core limit) */
    SCHED_REJ_RAM,
    SCHED_REJ_DISK,
    SCHED_REJ_BW,
    SCHED_REJ_LABELS,
    SCHED_REJ_AFFINITY,
    SCHED_REJ_ANTI_AFFINITY,
    SCHED_REJ_MAX_PER_HOST, /* group max-per-host */
    SCHED_REJ_MAX_VMS,      /* host max VMs */
    SCHED_REJ_EXCLUDED,     /* caller excluded it (e.g. the source of a migration) */
    SCHED_REJ_OVERLOAD,     /* would be overloaded after placement (consolidation) */
    SCHED_REJ__COUNT
} sched_reject;

const char *sched_reject_name(sched_reject r);
const char *sched_policy_name(sched_policy p);
int sched_policy_parse(const char *s, sched_policy *out); /* 0 ok, -1 unknown */

typedef struct sched_place_opts {
    sched_policy policy;
    sched_rng *rng;     /* for SCHED_POL_RANDOM; may be NULL otherwise */
    bool use_requested; /* CPU filter uses current demand (req_mips) instead of nominal mips */
    const unsigned char *excluded; /* optional per-host flag array */
    /* >0: stop after this many hosts passed the filters, scanning from a rotating
     * start (kube-scheduler's percentageOfNodesToScore); 0 scores every host */
    int score_limit;
} sched_place_opts;

typedef struct sched_host_verdict {
    /* SCHED_REJ_NONE if the host passed every filter; SCHED_REJ__COUNT if the scan
     * stopped before reaching it (first-fit, round-robin, score_limit) */
    sched_reject rejected;
    double score; /* higher is better; valid when not rejected */
} sched_host_verdict;

typedef struct sched_explain {
    sched_host_verdict *hosts; /* optional, caller-provided array of nhosts, or NULL */
    int counts[SCHED_REJ__COUNT];
    int passed;
    int chosen;
    char reason[256]; /* "no valid host: 3 cpu, 2 anti-affinity" or "chosen host X score .." */
} sched_explain;

/* Runs the filters on one host for VM v. */
sched_reject sched_filter_host(const sched_model *m, int host, const sched_vm *v,
                               bool use_requested);
/* Weigher score for placing v on host (higher is better). */
double sched_weigh_host(const sched_model *m, int host, const sched_vm *v, sched_policy p,
                        bool use_requested);
/* Chooses a host for VM index vm (not attached). Returns host index or -1; fills ex if given. */
int sched_place(sched_model *m, int vm, const sched_place_opts *o, sched_explain *ex);
/* Places every unplaced VM in order and attaches them; returns number left unplaced. */
int sched_place_all(sched_model *m, const sched_place_opts *o);

/* ---- statistics used by the detectors (exposed for tests) ---- */
double sched_median(double *x, int n); /* sorts x */
double sched_mad(const double *x, int n);
double sched_iqr(double *x, int n); /* sorts x; CloudSim quartile positions */
/* Local regression over y[0..n-1] (oldest first) at x=1..n; weighted with tricube
 * weights when weighted, otherwise OLS. Returns 0 and a,b of y = a + b x, -1 if singular. */
int sched_loess(const double *y, int n, bool weighted, bool robust, double *a, double *b);
/* R^2 of y regressed on k columns x[j][0..m-1] plus intercept; NAN if undefined, -2 if m <= k+1. */
double sched_r2(const double *y, const double *const *x, int k, int m);

/* ---- overload detection and VM selection ---- */
typedef enum {
    SCHED_DET_THR,
    SCHED_DET_IQR,
    SCHED_DET_MAD,
    SCHED_DET_LR,
    SCHED_DET_LRR
} sched_detector;
typedef enum { SCHED_SEL_MMT, SCHED_SEL_RS, SCHED_SEL_MC, SCHED_SEL_MU } sched_selector;

typedef struct sched_consol_opts {
    sched_detector det;
    double param;        /* THR threshold, IQR/MAD/LR safety parameter */
    double fallback_thr; /* static threshold used while history is short (0.7) */
    int lr_len;          /* samples used by LR (10) */
    int min_hist;        /* samples needed by IQR/MAD (12) */
    double interval;     /* control interval, s (300) */
    double mig_bw_share; /* fraction of host bandwidth used by migration (0.5) */
    bool lr_weighted;    /* tricube-weighted LR (CloudSim 3.0.3) vs plain OLS */
    sched_selector sel;
    /* CloudSim quirks (all true in --compat cloudsim):
     * stale_util: PABFD prices "power now" from the last observation
     *   (util_mips) but "power after" and the empty-host test from the CPU
     *   allocated to the VMs listed on the host now (planned moves included);
     *   false: both from the observation plus this round's planned moves;
     * leaky_exclusion: hosts receiving VMs from overloaded hosts may still be
     *   drained as underloaded in the same round (VMs then move twice). */
    bool stale_util, leaky_exclusion;
    double underload_thr; /* drain only hosts below this utilisation (1.0 = any, CloudSim) */
    int sample;           /* >0: PABFD scores a seeded sample of this many hosts (scale mode) */
    int drain_fail_limit; /* >0: stop draining after this many failed drains in a row */
    sched_rng *rng;       /* RS selection and sampling */
} sched_consol_opts;

void sched_consol_defaults(sched_consol_opts *o);

/* Host overload verdict with the current VM set (uses VM histories for IQR/MAD/LR). */
bool sched_host_overloaded(const sched_model *m, int host, const sched_consol_opts *o);
/* Picks a VM to migrate from host (not in migration) or -1. */
int sched_select_vm(const sched_model *m, int host, const sched_consol_opts *o);

typedef struct sched_migration {
    int vm, from, to;
} sched_migration;

typedef struct sched_plan {
    sched_migration *moves;
    int n, cap;
    int overloaded, underloaded_drained; /* statistics of the round */
} sched_plan;
void sched_plan_free(sched_plan *p);

/* One consolidation round (Beloglazov & Buyya): overloaded hosts shed VMs, the
 * least-utilised hosts are drained when every VM fits elsewhere; all re-placement is
 * PABFD. The model is left unchanged; the plan lists the moves in execution order. */
int sched_consolidate(sched_model *m, const sched_consol_opts *o, sched_plan *plan);
/* Power-aware best-fit decreasing (PABFD) for one VM with the consolidation rules. */
int sched_pabfd_host(const sched_model *m, int vm, const unsigned char *excluded,
                     const sched_consol_opts *o);

/* Places every unplaced VM in index order with PABFD and attaches it (initial
 * placement); returns how many VMs found no host, -1 on allocation failure. */
int sched_pabfd_place_all(sched_model *m, const sched_consol_opts *o);

/* ---- integer programming (GLPK) ---- */
typedef struct sched_ilp_result {
    int status;          /* 0 optimal, 1 feasible (time limit), -1 infeasible/failed */
    int hosts_used;      /* objective of the solution returned */
    int heuristic_hosts; /* hosts used by the first-fit-decreasing fallback */
    bool used_fallback;
    int *assign; /* per VM host index (caller frees) */
} sched_ilp_result;
/* Minimises the number of used hosts for all VMs (CPU nominal, RAM), respecting
 * host capacity and anti-affinity groups; time limit in ms. */
int sched_ilp_pack(const sched_model *m, int time_limit_ms, sched_ilp_result *r);

/* ---- queueing models of contention for CPUs (erlang.c) ----
 * Erlang C: the probability that a burst of work waits, for c CPUs at
 * offered load a Erlangs (1 when a >= c). sched_mmc_wait_ratio: the share
 * of a runnable vCPU's time spent waiting under that open M/M/c model (1
 * when a >= c: no steady state). sched_mmcn_wait_ratio: the same under the
 * closed M/M/c//N model, N vCPUs each runnable a fraction f (0..1) of the
 * time, as measured; defined at saturation (f = 1 gives 1 - c/N). */
#define SCHED_ERLANG_MAX_N 4096
double sched_erlang_c(int c, double a);
double sched_mmc_wait_ratio(int c, double a);
double sched_mmcn_wait_ratio(int c, int n, double f);

#endif
