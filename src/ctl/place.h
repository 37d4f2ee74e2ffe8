/*
 * place.h - where a new VM goes: placement through src/sched, the library
 * `yun sim` runs. The pure part (place_model.c) builds a sched_model from
 * the store's compact rows (store/store_place.h: hosts, their summed
 * allocation, one group's members), runs the filter -> weigh pipeline and
 * explains every host's verdict; it does no I/O and is unit-tested with
 * synthetic rows. The controller's part (place.c) reads the rows, keeps
 * the round-robin cursor and the seeded PRNG, and remembers the last
 * explanation per VM name (bounded) for `yun vm explain`.
 */
#ifndef YUN_CTL_PLACE_H
#define YUN_CTL_PLACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/yerr.h"
#include "sched/sched.h"
#include "store/store_place.h"

struct ctl;
struct vm_spec;
struct vm_rec;

/* The cluster's settings a model is built with. */
struct place_conf {
    sched_policy policy;
    double cpu_overcommit, mem_overcommit;
    uint64_t reserved_memory; /* bytes kept on every host */
    /* with mem_overcommit above 1: the floors (memory_min, else all the
     * memory) of a host's charged VMs must fit in its usable memory less
     * this (bytes; 0 = 5 % of usable), as ctl_capacity_admit has it */
    uint64_t memory_margin;
    int host_max_vms; /* 0 = unlimited */
};

/* The VM to place. */
struct place_want {
    const char *name;
    int cpus;
    uint64_t memory_mb;
    uint64_t memory_min_mb;        /* the balloon's floor; 0 = none (all its memory) */
    const char *cpu_model;         /* the host must run it (sched/cpu_models.h); NULL/"" = any */
    const char *requires;          /* required labels "k=v,k=v" ("" = none) */
    const struct group_rec *group; /* NULL = none */
    const char *host;              /* forced host, id or name ("" = any) */
    /* the VM starts now: capacity counts what each host holds; else only
     * whether it could ever fit (start admits it later) */
    bool charge;
    int list_limit; /* the explanation lists at most this many hosts; 0 = all */
    /* a move: this host (id; the VM's current one) is refused as "source";
     * NULL = none */
    const char *exclude;
    const sched_policy *policy; /* NULL = the cluster's (conf) */
};

/* What persists between decisions: the round-robin cursor, the PRNG. */
struct place_state {
    int rr_next;
    sched_rng rng;
};
void place_state_init(struct place_state *ps, uint64_t seed);

/* A move's strategy: "" or "least-loaded" (load-aware: least measured
 * CPU use), "round-robin", "random", "pack", "spread", as sched policies.
 * 0, or -1 with err (YE_INVALID_ARGUMENT naming the choices). */
int place_strategy_parse(const char *s, sched_policy *out, struct yerr *err);

/* Checks "k=v,k=v": at most SCHED_MAX_LABELS labels, each k=v shorter than
 * SCHED_LABEL_MAX, keys and values [A-Za-z0-9._/-]. 0, or -1 with err. */
int place_labels_check(const char *labels, const char *what, struct yerr *err);

/* A model of the hosts, kept between decisions: built from the rows as the
 * store returns them (any order; usage rows with host "" belong to
 * local_id), then each decision's choice reserved in it, so a burst of
 * creates needs no store read per create. NULL when out of memory. */
struct place_model;
struct place_model *place_model_new(const struct place_host_row *hosts, size_t nhosts,
                                    const struct place_usage_row *usage, size_t nusage,
                                    const char *local_id, const struct place_conf *conf);
void place_model_free(struct place_model *pm);
size_t place_model_hosts(const struct place_model *pm);
const struct place_host_row *place_model_host(const struct place_model *pm, int i);
/* Decides: 0 with *chosen (a host index), or -1 with err: YE_NOT_FOUND
 * (forced host unknown), YE_CONFLICT ("no valid host: ..." with counts per
 * reason), YE_INVALID_ARGUMENT, YE_INTERNAL. *explain (may be NULL) gets a
 * new object whenever the decision ran. */
int place_model_decide(struct place_model *pm, const struct place_want *w, struct place_state *ps,
                       int *chosen, json_t **explain, struct yerr *err);
/* The cluster's CPU baseline (sched_cpu_baseline over the up hosts that
 * reported models) as an index into sched's table, or -1. */
int place_model_baseline(const struct place_model *pm);
/* Host i now holds w (its row is being written). */
int place_model_reserve(struct place_model *pm, int i, const struct place_want *w);

/* One decision on rows (builds, decides, frees). */
int place_decide(const struct place_host_row *hosts, size_t nhosts,
                 const struct place_usage_row *usage, size_t nusage, const char *local_id,
                 const struct place_want *w, const struct place_conf *conf, struct place_state *ps,
                 int *chosen, json_t **explain, struct yerr *err);

/* ---- the controller's (place.c) ---- */
/* Picks the host of a new VM (spec: size, group, requires, start) and
 * writes its id into host_id ("" = the all-in-one's own host before it has
 * a row); force_host "" = any. The explanation is kept for
 * ctl_place_explain; *explain (may be NULL) gets a new reference too. */
int ctl_place(struct ctl *c, const struct vm_spec *spec, const char *force_host, char host_id[37],
              json_t **explain, struct yerr *err);
/* A dry run: where a VM of spec would go now (spec->host forces a host),
 * decided on the same model as ctl_place, but nothing is reserved or kept
 * and the round-robin cursor and PRNG do not move. *out gets {"host":
 * {"id", "name"}, "score", "passed", "hosts_total", "reason"}; *explain
 * (NULL: not wanted) every host's verdict, also when no host is valid.
 * Errors as ctl_place's. */
int ctl_place_dry(struct ctl *c, const struct vm_spec *spec, json_t **out, json_t **explain,
                  struct yerr *err);
/* A move: the host running VM vm goes to, by strategy (place_strategy_parse),
 * its current host refused ("source"), every other filter as at a create
 * (capacity charged for its size, labels, groups, max VMs, host state).
 * Nothing is reserved: the move's target check (ctl_place forced to it)
 * charges the VM there. dry: the round-robin cursor and the PRNG do not
 * move and the explanation is not kept. 0 with host_id, or -1 with err as
 * ctl_place's (409 "no valid host: ..."). */
int ctl_place_move(struct ctl *c, const struct vm_rec *vm, const char *strategy, bool dry,
                   char host_id[37], json_t **explain, struct yerr *err);
/* The CPU model a VM of spec gets (fixed at its create): spec's own, else
 * the cpu_model setting, whose "auto" is the cluster baseline on the
 * placement model (the newest model every up host runs; "" when none is
 * shared or reported: QEMU's host/max as before). 0, or -1 with err. */
int ctl_cpu_model_for(struct ctl *c, const struct vm_spec *spec, char out[64], struct yerr *err);
/* How long decisions took (creates' ctl_place, dry runs): a histogram,
 * cumulative buckets as Prometheus has them (bucket[b] counts decisions
 * of at most place_bucket_le[b] seconds). */
#define PLACE_BUCKETS 12
enum { PLACE_T_CREATE, PLACE_T_DRY, PLACE_T__COUNT };
struct place_timing {
    uint64_t bucket[PLACE_BUCKETS];
    uint64_t count;
    double sum; /* seconds */
};
extern const double place_bucket_le[PLACE_BUCKETS];
/* 0 with *out (zeros when no decision was made yet), -1 for a bad kind. */
int ctl_place_timing(struct ctl *c, int kind, struct place_timing *out);
/* The last placement's explanation of VM name (borrowed), or NULL. */
json_t *ctl_place_explain(struct ctl *c, const char *name);
/* Hosts changed (joined, state, labels, removed): the next placement reads
 * them again. Without it a model over many hosts is at most
 * PLACE_REFRESH_MS old (VM rows this controller writes are reserved in it
 * at once). */
void ctl_place_invalidate(struct ctl *c);
void ctl_place_shutdown(struct ctl *c);

/* ---- placement groups (groups.c) ---- */
/* Checks and writes a group: name [a-z0-9][a-z0-9.-]{0,62}, policy
 * "affinity" or "anti-affinity", max_per_host 0..100000. YE_CONFLICT when
 * the name is taken. */
int ctl_group_create(struct ctl *c, const struct group_rec *g, struct yerr *err);
int ctl_group_get(struct ctl *c, const char *name, struct group_rec *out, struct yerr *err);
int ctl_group_list(struct ctl *c, struct group_rec **out, size_t *n, struct yerr *err);
/* Refused (YE_CONFLICT) while VMs are in the group. */
int ctl_group_delete(struct ctl *c, const char *name, struct yerr *err);
/* The VMs in a group, -1 unknown. */
int ctl_group_members(struct ctl *c, const char *name);

#endif
