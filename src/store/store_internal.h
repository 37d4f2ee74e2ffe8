/*
 * store_internal.h - what the store's files share (store.c for opening,
 * migrations, VMs, images and events; store_storage.c, store_tasks.c and
 * store_monitor.c for their tables), all written over db.h. Not for use
 * outside src/store/.
 */
#ifndef YUN_STORE_INTERNAL_H
#define YUN_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/db.h"
#include "store/store.h"

struct store {
    struct db *db;
    char err[512];
    uint64_t vm_gen; /* bumped by every write to the vms table */
    char *spec;      /* what it was opened with (store_open_again) */
};

/* Records the db's message prefixed by what; returns -1. */
int store_fail(struct store *st, const char *what);
/* Brings the schema to this yund's version (store_schema.c): 0, or -1 with
 * the store's error (a step failed, or the database is newer). */
int store_schema_migrate(struct store *st);
struct db_stmt *store_prep(struct store *st, const char *sql);
/* Steps a write statement to completion and finishes it: 0, STORE_CONFLICT,
 * STORE_NOTFOUND (no row changed, for non-inserts) or -1. */
int store_step_done(struct store *st, struct db_stmt *s, const char *what);
void store_col_text(struct db_stmt *s, int i, char *dst, size_t len);
/* *count from a "SELECT count(*) ... WHERE col=?" query with arg bound: 0,
 * or -1 with the error recorded under what. */
int store_count(struct store *st, const char *sql, const char *arg, int *count, const char *what);
/* Room for one more element in a malloc'd array; -1 when out of memory. */
int store_grow(void *arrp, size_t *cap, size_t n, size_t elem);

/* Steps a query to its end, reading each row into a new element of a
 * malloc'd array of elem-sized items (*outp, *n); finishes the statement.
 * 0, or -1 (nothing allocated) with the error recorded under what. */
typedef void (*store_row_reader)(struct db_stmt *s, void *elem);
int store_collect(struct store *st, struct db_stmt *s, size_t elem, store_row_reader rd, void *outp,
                  size_t *n, const char *what);
/* The first row of sql (key bound to ?1) read into out (elem bytes,
 * cleared first): 0, STORE_NOTFOUND, or -1 with the error under what. */
int store_get_one(struct store *st, const char *sql, const char *key, size_t elem,
                  store_row_reader rd, void *out, const char *what);

/* The vms table's columns, in the order store_read_vm reads them. */
#define VM_COLS                                                                                    \
    "id,name,image,cpus,memory_mb,disk_bytes,cmdline,machine,accel,accel_used,restart,"            \
    "cpu_weight,cpu_quota_us,cpu_period_us,cpuset,desired,state,pid,started_at,created_at,"        \
    "updated_at,restarts,last_error,hostname,seed,disk,disk_parent,stop_deadline,uid,host,grp,"    \
    "requires,pool,ha,ha_from,cpu_pin,emulator_pin,memory_min_mb,memory_swap_mb,memory_high_mb,"   \
    "memory_lock,no_merge,cpu_model"
/* One row of SELECT VM_COLS into v. */
void store_read_vm(struct db_stmt *s, struct vm_rec *v);

#endif
