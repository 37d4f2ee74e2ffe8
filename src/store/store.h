/*
 * store.h - the state of record. One interface; the embedded SQLite backend
 * (store_sqlite.c) is the default. A PostgreSQL backend for clustered
 * controllers implements the same calls.
 *
 * Return convention: 0 success, STORE_NOTFOUND when the object does not
 * exist, STORE_CONFLICT on a uniqueness violation, -1 on a database error
 * (store_errmsg says which).
 */
#ifndef YUN_STORE_H
#define YUN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/records.h"

#define STORE_NOTFOUND 1
#define STORE_CONFLICT 2

struct store;

int store_open(const char *path, struct store **out, char *err, size_t errlen);
void store_close(struct store *st);
/* A second connection to st's database (its own libpq connection, or its
 * own SQLite connection: WAL lets it read while st writes), e.g. for a
 * reader thread: a store is used by one thread at a time. */
int store_open_again(const struct store *st, struct store **out, char *err, size_t errlen);
const char *store_errmsg(struct store *st);
int store_schema_version(struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);

int store_vm_insert(struct store *st, const struct vm_rec *vm);
int store_vm_update(struct store *st, const struct vm_rec *vm);
int store_vm_delete(struct store *st, const char *id);
/* Looks up by name first, then by id (or unique id prefix of 8+ chars). */
int store_vm_get(struct store *st, const char *name_or_id, struct vm_rec *out);
/* All VMs ordered by name; *out is malloc'd (free it). */
int store_vm_list(struct store *st, struct vm_rec **out, size_t *n);
/* At most limit VMs whose name sorts after `after` ("" or NULL: from the
 * first), ordered by name; *out is malloc'd (free it). Paging with the
 * last name of one page as the next's `after` sees every row that stays. */
int store_vm_list_page(struct store *st, const char *after, size_t limit, struct vm_rec **out,
                       size_t *n);
/* The VMs whose host column is host, by name. */
int store_vm_list_host(struct store *st, const char *host, struct vm_rec **out, size_t *n);
/* Every VM's key columns, ordered by name (cheaper than the whole rows). */
struct vm_key {
    char id[37];
    char host[37];
    enum vm_state state;
};
int store_vm_keys(struct store *st, struct vm_key **out, size_t *n);
int store_vm_count_using_image(struct store *st, const char *image, int *count);
/* Changes whenever any VM row may have changed (for caches of VM lists). */
uint64_t store_vm_generation(struct store *st);
/* Totals for capacity checks without loading every row: all VMs, and the
 * vCPUs/MiB of those whose state has a QEMU process. */
struct vm_totals {
    int vms, running, cpus;
    uint64_t memory_mb;
    uint64_t memory_min_mb; /* the balloon floors (memory_min_mb, else memory_mb) */
};
int store_vm_totals(struct store *st, struct vm_totals *t);
/* The same over the VMs on host (and those with host "" when
 * with_unplaced: the all-in-one's own rows from before the cluster). */
int store_vm_totals_host(struct store *st, const char *host, bool with_unplaced,
                         struct vm_totals *t);

int store_image_insert(struct store *st, const struct image_rec *img);
int store_image_delete(struct store *st, const char *name);
int store_image_get(struct store *st, const char *name, struct image_rec *out);
int store_image_list(struct store *st, struct image_rec **out, size_t *n);

/* HA VMs whose restart elsewhere was decided and not yet answered
 * (ha_from set; ctl/ha.c). */
int store_vm_list_ha_pending(struct store *st, struct vm_rec **out, size_t *n);

/* ---- storage pools declared by name (store_pools.c) ---- */

/* STORE_CONFLICT when the name or the path is taken. */
int store_pool_insert(struct store *st, const struct pool_rec *p);
int store_pool_get(struct store *st, const char *name, struct pool_rec *out);
int store_pool_list(struct store *st, struct pool_rec **out, size_t *n);
int store_pool_delete(struct store *st, const char *name);
/* How many VM rows have their disk in the pool. */
int store_pool_users(struct store *st, const char *name, int *count);

/* ---- images' checksums and host copies (store_himages.c) ---- */
int store_image_set_sha256(struct store *st, const char *id, const char *sha256);
/* Insert or replace the host's copy. */
int store_host_image_put(struct store *st, const struct host_image_rec *r);
/* 0 with *out, STORE_NOTFOUND, or -1. */
int store_host_image_get(struct store *st, const char *host, const char *image,
                         struct host_image_rec *out);
/* Every host's copy of image (its id); *out malloc'd. */
int store_host_image_list(struct store *st, const char *image, struct host_image_rec **out,
                          size_t *n);
int store_host_image_delete(struct store *st, const char *host, const char *image);

/* Appends an event; sets ev->id and ev->ts (if 0). */
int store_event_add(struct store *st, struct event_rec *ev);
/* Events with id > after_id, oldest first, at most limit; object filters when non-NULL. */
int store_event_list(struct store *st, int64_t after_id, int limit, const char *object,
                     struct event_rec **out, size_t *n);
int64_t store_event_last_id(struct store *st);
/* Retention: deletes at most `batch` of the oldest events, those beyond the
 * newest `keep` ids (0 = no count limit) or with ts < older_than (ms since
 * epoch, 0 = no age limit). Looks at no more than `batch` rows, so one call
 * is bounded whatever the table holds. Returns the number deleted, or -1.
 * Ids are never reused: `after=ID` readers just see fewer old rows. */
int store_event_prune(struct store *st, int64_t keep, int64_t older_than, int batch);

/* ---- volumes (store_storage.c) ---- */
int store_volume_insert(struct store *st, const struct volume_rec *v);
int store_volume_update(struct store *st, const struct volume_rec *v);
int store_volume_delete(struct store *st, const char *id);
int store_volume_get(struct store *st, const char *name, struct volume_rec *out);
int store_volume_list(struct store *st, struct volume_rec **out, size_t *n);
/* Volumes attached to a VM, in the order they were created. */
int store_volume_list_attached(struct store *st, const char *vm_id, struct volume_rec **out,
                               size_t *n);
/* How many volumes are linked clones of `name`. */
int store_volume_dependents(struct store *st, const char *name, int *count);

/* ---- snapshots (store_storage.c) ---- */
int store_snapshot_insert(struct store *st, const struct snapshot_rec *v);
int store_snapshot_update(struct store *st, const struct snapshot_rec *v);
int store_snapshot_delete(struct store *st, const char *id);
/* A VM's snapshots, oldest first; *out is malloc'd. */
int store_snapshot_list(struct store *st, const char *vm_id, struct snapshot_rec **out, size_t *n);

/* ---- hosts (store_hosts.c) ---- */
int store_host_insert(struct store *st, const struct host_rec *h);
int store_host_update(struct store *st, const struct host_rec *h);
int store_host_delete(struct store *st, const char *id);
/* By name, else by id. */
int store_host_get(struct store *st, const char *name_or_id, struct host_rec *out);
/* All hosts ordered by name; *out is malloc'd. */
int store_host_list(struct store *st, struct host_rec **out, size_t *n);
/* The database's clock, ms since the epoch. */
int store_now_ms(struct store *st, int64_t *now);
/* A heartbeat: lease_until = database now + lease_ms, the usage and run
 * kept, the state up (maintenance when maintenance is set). *lease_until
 * (may be NULL) gets the new lease. STORE_NOTFOUND for an unknown id. */
int store_host_renew(struct store *st, const char *id, const char *run, double cpu_load,
                     uint64_t mem_used, int64_t lease_ms, int64_t *lease_until);
int store_host_set_state(struct store *st, const char *id, const char *state, int maintenance);
/* Hosts not down whose lease (lease_until > 0) is past on the database's
 * clock; a host that never had a lease (the all-in-one's) never lapses. */
int store_hosts_lapsed(struct store *st, struct host_rec **out, size_t *n);
/* How many VM rows name the host. */
int store_host_vm_count(struct store *st, const char *id, int *count);
/* ---- tasks (store_tasks.c) ---- */
int store_task_insert(struct store *st, const struct task_rec *t);
int store_task_update(struct store *st, const struct task_rec *t);
/* By id (or unique id prefix of 8+ chars); *out owns result/params. */
int store_task_get(struct store *st, const char *id, struct task_rec *out);
/* The unfinished (queued/running) task on object_id: 0, STORE_NOTFOUND, -1. */
int store_task_active(struct store *st, const char *object_id, struct task_rec *out);
struct task_filter {
    int state;          /* enum task_state, or -1 for any */
    bool unfinished;    /* only queued and running */
    const char *object; /* object name or id, NULL for any */
    int limit;          /* 0: 100 */
};
/* Newest first; free with store_task_rows_free. */
int store_task_list(struct store *st, const struct task_filter *f, struct task_rec **out,
                    size_t *n);
void store_task_rows_free(struct task_rec *rows, size_t n);
/* Retention: deletes finished tasks beyond the newest keep. Returns how many, or -1. */
int store_task_prune(struct store *st, int keep);

/* ---- monitor (store_monitor.c) ---- */

/* Alert rules are kept as their JSON spec (alert_rule_to_json). */
struct rule_row {
    char id[37];
    char name[64];
    char *spec; /* malloc'd JSON text */
    int64_t silenced_until;
    int64_t created_at;
};
int store_rule_insert(struct store *st, const char *id, const char *name, const char *spec,
                      int64_t created_at);
int store_rule_delete(struct store *st, const char *name);
int store_rule_silence(struct store *st, const char *name, int64_t until);
int store_rule_list(struct store *st, struct rule_row **out,
                    size_t *n); /* free with store_rule_rows_free */
void store_rule_rows_free(struct rule_row *rows, size_t n);

struct alert_row {
    int64_t id;
    char rule[64];
    char object[72];
    char state[16];
    char severity[16];
    double value;
    int64_t started_at, fired_at, resolved_at, notified_at;
    int notifications;
};
/* Inserts when a->id == 0 (sets it), else updates. */
int store_alert_save(struct store *st, struct alert_row *a);
/* Newest first; state filters when non-NULL. */
int store_alert_list(struct store *st, const char *state, int limit, struct alert_row **out,
                     size_t *n);

struct rollup_row {
    int64_t ts;
    double avg, min, max;
};
int store_rollup_add(struct store *st, const char *object, const char *metric, int step, int64_t ts,
                     double avg, double min, double max);
int store_rollup_query(struct store *st, const char *object, const char *metric, int step,
                       int64_t since, struct rollup_row **out, size_t *n);
/* Rolls `from_step` rows of [start, start+to_step) into one `to_step` row per series. */
int store_rollup_compact(struct store *st, int from_step, int to_step, int64_t start);
int store_rollup_prune(struct store *st, int step, int64_t older_than);

#endif
