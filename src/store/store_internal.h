/*
 * store_internal.h - what the SQLite store's files share (store_sqlite.c for
 * VMs, images and events; store_monitor.c for alerts and metric rollups).
 * Not for use outside src/store/.
 */
#ifndef YUN_STORE_INTERNAL_H
#define YUN_STORE_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store {
    sqlite3 *db;
    char err[256];
    uint64_t vm_gen; /* bumped by every write to the vms table */
};

/* Records sqlite's message prefixed by what; returns -1. */
int store_fail(struct store *st, const char *what);
sqlite3_stmt *store_prep(struct store *st, const char *sql);
/* Steps a write statement to completion and finalizes it: 0, STORE_CONFLICT,
 * STORE_NOTFOUND (no row changed, for non-inserts) or -1. */
int store_step_done(struct store *st, sqlite3_stmt *s, const char *what);
void store_col_text(sqlite3_stmt *s, int i, char *dst, size_t len);
/* Room for one more element in a malloc'd array; -1 when out of memory. */
int store_grow(void *arrp, size_t *cap, size_t n, size_t elem);

/* Steps a query to its end, reading each row into a new element of a
 * malloc'd array of elem-sized items (*outp, *n); finalizes the statement.
 * 0, or -1 (nothing allocated) with the error recorded under what. */
typedef void (*store_row_reader)(sqlite3_stmt *s, void *elem);
int store_collect(struct store *st, sqlite3_stmt *s, size_t elem, store_row_reader rd, void *outp,
                  size_t *n, const char *what);

#endif
