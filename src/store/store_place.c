/*
 * store_place.c - placement's reads: the hosts in compact rows and each
 * host's allocation summed in SQL (store_place.h), so a decision never
 * loads every VM row.
 */
#include "store/store_internal.h"
#include "store/store_place.h"

#include <string.h>

static void row_host(struct db_stmt *s, void *e)
{
    struct place_host_row *h = e;
    store_col_text(s, 0, h->id, sizeof(h->id));
    store_col_text(s, 1, h->name, sizeof(h->name));
    h->cpus = db_col_int(s, 2);
    int64_t mem = db_col_int64(s, 3);
    h->memory = mem > 0 ? (uint64_t)mem : 0;
    store_col_text(s, 4, h->labels, sizeof(h->labels));
    store_col_text(s, 5, h->state, sizeof(h->state));
    h->cpu_load = db_col_double(s, 6);
    store_col_text(s, 7, h->cpu_models, sizeof(h->cpu_models));
}

int store_place_hosts(struct store *st, struct place_host_row **out, size_t *n)
{
    struct db_stmt *s = store_prep(
        st, "SELECT id,name,cpus,memory,labels,state,cpu_load,cpu_models FROM hosts ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), row_host, out, n, "list hosts for placement");
}

static void row_usage(struct db_stmt *s, void *e)
{
    struct place_usage_row *u = e;
    store_col_text(s, 0, u->host, sizeof(u->host));
    store_col_text(s, 1, u->group, sizeof(u->group));
    u->vms = db_col_int(s, 2);
    u->cpus = db_col_int(s, 3);
    int64_t mem = db_col_int64(s, 4);
    u->memory_mb = mem > 0 ? (uint64_t)mem : 0;
    int64_t floor = db_col_int64(s, 5);
    u->floor_mb = floor > 0 ? (uint64_t)floor : 0;
}

int store_place_usage(struct store *st, struct place_usage_row **out, size_t *n)
{
    /* charged: the states with a QEMU (vm_state_has_process), the rows
     * that want one, and creates in flight (the reservation). One row per
     * VM: a plain scan is several times cheaper on SQLite than its GROUP BY
     * (a sort); the caller sums. */
    struct db_stmt *s = store_prep(
        st, "SELECT host, grp, 1, CASE WHEN c THEN cpus ELSE 0 END, CASE WHEN c THEN memory_mb "
            "ELSE 0 END, CASE WHEN NOT c THEN 0 WHEN memory_min_mb > 0 AND memory_min_mb < "
            "memory_mb THEN memory_min_mb ELSE memory_mb END FROM (SELECT host, grp, cpus, "
            "memory_mb, memory_min_mb, (state IN ('creating','starting','running','paused',"
            "'stopping') OR desired IN ('running','paused')) AS c FROM vms) AS t");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), row_usage, out, n, "host allocations");
}
