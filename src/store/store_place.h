/*
 * store_place.h - what placement reads from the store, in compact rows so a
 * decision over 10,000 hosts stays in milliseconds: the hosts' capacity,
 * state and labels, and each host's allocation summed by the database (the
 * VM rows that hold resources there, every VM row placed there, per
 * placement group). Also the placement groups' table
 * (vm_groups). Implemented in store_place.c and store_groups.c.
 */
#ifndef YUN_STORE_PLACE_H
#define YUN_STORE_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* A host as placement sees it (a row of `hosts`). */
struct place_host_row {
    char id[37];
    char name[64];
    int cpus;
    uint64_t memory;      /* bytes */
    char labels[512];     /* "k=v,k=v" */
    char state[16];       /* "up", "maintenance", "down" */
    double cpu_load;      /* last heartbeat: fraction of the host's CPUs in use */
    char cpu_models[512]; /* the QEMU CPU models it runs, ','-separated */
};

/* The VM rows of one group on one host (host "" = the all-in-one's own,
 * group "" = none). Charged rows are those that hold resources: a QEMU
 * (starting, running, paused, stopping), desired running or paused, or
 * being created (the reservation). */
struct place_usage_row {
    char host[37];
    char group[64];
    int vms;            /* every row */
    int cpus;           /* vCPUs of the charged rows */
    uint64_t memory_mb; /* memory of the charged rows */
    /* the charged rows' floors: what ballooning cannot take back, each
     * row's memory_min_mb where set below its memory_mb, else memory_mb */
    uint64_t floor_mb;
};

/* Every host, ordered by name. */
int store_place_hosts(struct store *st, struct place_host_row **out, size_t *n);
/* The allocation, in one scan of vms: rows in any order, a (host, group)
 * may come in several rows (today one per VM); the caller sums them. */
int store_place_usage(struct store *st, struct place_usage_row **out, size_t *n);

/* ---- placement groups (store_groups.c) ---- */
struct group_rec {
    char name[64];
    char policy[16];  /* "affinity" or "anti-affinity" */
    int hard;         /* 1: a filter; 0: a weigher's preference */
    int max_per_host; /* 0 = unlimited */
    int64_t created_at;
};
/* STORE_CONFLICT when the name is taken. */
int store_group_insert(struct store *st, const struct group_rec *g);
/* STORE_NOTFOUND when absent. */
int store_group_get(struct store *st, const char *name, struct group_rec *out);
int store_group_list(struct store *st, struct group_rec **out, size_t *n);
int store_group_delete(struct store *st, const char *name);
/* VM rows in the group. */
int store_group_members(struct store *st, const char *name, int *count);

#endif
