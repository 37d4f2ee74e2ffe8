/*
 * place_int.h - what placement's pure files share (place_model.c builds
 * and decides, place_explain.c puts verdicts into words): the model kept
 * between decisions. Not for use outside src/ctl/place*.c.
 */
#ifndef YUN_CTL_PLACE_INT_H
#define YUN_CTL_PLACE_INT_H

#include "ctl/place.h"

#define PLACE_VCPU_MIPS 1000.0

/* our own verdicts, beyond sched's, for hosts passed to sched as excluded */
enum {
    PRE_NONE = 0,
    PRE_NOT_ASKED,
    PRE_MAX_VMS,
    PRE_RAM_EVER,
    PRE_MEM_FLOOR,
    PRE_CPU_MODEL,
    PRE_SOURCE,
    PRE__COUNT
};

struct place_use {
    int vms, cpus;
    uint64_t memory_mb;
    uint64_t floor_mb; /* the charged VMs' floors */
};

struct place_model {
    struct place_host_row *hosts; /* copies, in the rows' order */
    size_t n;
    struct place_conf conf;
    sched_model m;         /* one sched host per row; group members as zero-size VMs */
    struct place_use *use; /* per host ("" rows folded into the local host) */
    uint32_t *cpumask;     /* per host: the CPU models it runs (sched/cpu_models.h) */
    int baseline;          /* sched_cpu_baseline of the up hosts' masks, at build */
    char (*gnames)[64];    /* m.groups[i]'s full name */
    int gcap;              /* room in gnames */
    /* one decision's */
    unsigned char *excluded, *pre;
    sched_host_verdict *verdicts;
    const struct place_want *w;
    int forced;       /* index or -1 */
    int gi;           /* the wanted group's index or -1 */
    sched_policy pol; /* the decision's policy (w->policy or conf's) */
};

int place_host_vcpus(const struct place_model *p, size_t i);
uint64_t place_host_mem_mb(const struct place_model *p, size_t i);
/* what host i's floors may sum to: usable memory less memory_margin (MiB) */
uint64_t place_host_floor_cap_mb(const struct place_model *p, size_t i);
/* the wanted VM's floor (MiB) */
uint64_t place_want_floor_mb(const struct place_want *w);
/* members of the wanted group on host i */
int place_members_here(const struct place_model *p, size_t i);

/* place_explain.c */
const char *place_filter_name(const struct place_model *p, size_t i);
void place_no_host_message(const struct place_model *p, struct yerr *err);
json_t *place_explain_json(const struct place_model *p, int chosen, int passed);

#endif
