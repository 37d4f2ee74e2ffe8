/* sim.h - yun's trace-driven data-centre simulator: traces, the datacentre
 * description, the simulation engine and its results. The decisions come from
 * src/sched; this layer owns time, the CPU-sharing physics and the metrics. */
#ifndef YUN_SIM_H
#define YUN_SIM_H

#include "sched/sched.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Utilisation traces: nvms rows of nsteps samples, each in units of 1/10000
 * (so integer CPU% is exact). sample i covers time i * interval. */
typedef struct sim_trace {
    int nvms, nsteps;
    double interval;
    uint16_t *u;  /* nvms * nsteps */
    char **names; /* per VM, may be NULL */
} sim_trace;

/* Bounds on what a trace may ask for, checked before anything is allocated:
 * a million samples per VM (nine years at 300 s), 2^28 samples in all
 * (512 MiB; the 200,000-VM day is 58 million). */
#define SIM_TRACE_MAX_STEPS 1000000
#define SIM_TRACE_MAX_CELLS (1LL << 28)

void sim_trace_free(sim_trace *t);
static inline double sim_trace_u(const sim_trace *t, int vm, int step)
{
    return t->u[(size_t)vm * (size_t)t->nsteps + (size_t)step] / 10000.0;
}
/* All loaders return 0 or -1 with a one-line message in err (file and line). */
int sim_trace_load_planetlab(const char *dir, sim_trace *t, char *err, size_t errlen);
/* VM i is the i-th file in this order: byte order of names (default), names
 * upper-cased (NTFS/HFS+ listing order), or raw readdir order */
typedef enum { SIM_ORDER_NAME, SIM_ORDER_UPPER, SIM_ORDER_DIR } sim_order;
int sim_trace_load_planetlab_order(const char *dir, sim_order order, sim_trace *t, char *err,
                                   size_t errlen);
int sim_trace_load_csv(const char *path, double interval, sim_trace *t, char *err, size_t errlen);
/* The parsers under the loaders, for tests and fuzzing: one PlanetLab file's
 * text (NUL-terminated, cut up in place) into out (capacity max), returning
 * the samples read or -1; and the CSV format from an open stream. path is
 * only what messages call the input. */
int sim_trace_parse_planetlab(const char *path, char *text, uint16_t *out, int max, char *err,
                              size_t errlen);
int sim_trace_read_csv(FILE *f, const char *path, double interval, sim_trace *t, char *err,
                       size_t errlen);
/* -1 when out of memory or beyond the bounds above. */
int sim_trace_synth(int nvms, int nsteps, double interval, uint64_t seed, sim_trace *t);

#define SIM_MAX_TYPES 16
typedef struct sim_host_type {
    char name[SCHED_NAME_MAX];
    int cores;
    double core_mips, ram_mb, bw_mbps;
    sched_power power;
    int count; /* hosts of this type (interleaved round-robin, as the reference) */
} sim_host_type;

typedef struct sim_vm_type {
    char name[SCHED_NAME_MAX];
    double mips, ram_mb, bw_mbps;
    int vcpus;
} sim_vm_type;

typedef struct sim_dc {
    int nhtypes, nvtypes;
    sim_host_type htypes[SIM_MAX_TYPES];
    sim_vm_type vtypes[SIM_MAX_TYPES];
    int nhosts; /* total; hosts take type i % nhtypes unless counts given */
} sim_dc;

void sim_dc_beloglazov(sim_dc *dc, int nhosts);
int sim_dc_load_json(const char *path, sim_dc *dc, char *err, size_t errlen);

typedef enum { SIM_ALG_NPA, SIM_ALG_DVFS, SIM_ALG_DYNAMIC } sim_alg;

typedef struct sim_opts {
    sim_alg alg;
    sched_consol_opts consol; /* for SIM_ALG_DYNAMIC */
    bool cloudsim;            /* reference-compatible semantics (see docs/sim.md) */
    bool vm_type_block;       /* VM type by blocks of n/4 instead of i % ntypes */
    bool initial_pabfd;       /* initial placement by PABFD instead of first fit */
    uint64_t seed;
    double duration;  /* seconds simulated (86400) */
    bool progress;    /* progress on stderr */
    bool keep_series; /* record active hosts / power per step */
} sim_opts;

/* parses "npa", "dvfs", "thr-mmt-0.8", "lr-mc-1.2", ... into o; -1 if unknown */
int sim_policy_parse(const char *s, sim_opts *o);

typedef struct sim_result {
    double energy_kwh;
    long migrations;
    double slatah, pdm, slav, esv;
    double overall_sla;
    int nhosts, nvms, steps;
    int vms_finished; /* VMs that ended (trace at zero) */
    double wall_s;    /* filled by the caller */
    int nseries;
    double *series_t, *series_power_w;
    int *series_active;
} sim_result;

void sim_result_free(sim_result *r);
int sim_run(const sim_dc *dc, const sim_trace *tr, const sim_opts *o, sim_result *res);

/* outputs */
void sim_print_table(FILE *f, const char *policy, const sim_result *r);
void sim_print_json(FILE *f, const char *policy, const sim_result *r);
void sim_print_csv(FILE *f, const char *policy, const sim_result *r, bool header);
int sim_write_svg(const char *path, const char *title, const sim_result *r);

#endif
