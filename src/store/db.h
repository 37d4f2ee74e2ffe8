/*
 * db.h - the thin SQL layer under the store: one small interface, two
 * backends (db_sqlite.c for the embedded SQLite file, db_pg.c for
 * PostgreSQL over libpq). Statements are written once with `?` or `?N`
 * placeholders (turned into $1..$n for PostgreSQL); the few dialect
 * differences live in the schema text hook (db_schema_sql) and in the
 * few queries that pick a text by db_dialect(), never scattered. Not for use outside
 * src/store/.
 */
#ifndef YUN_STORE_DB_H
#define YUN_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

struct db;
struct db_stmt;

enum db_dialect { DB_SQLITE, DB_PG };

/* db_step results */
#define DB_ROW      1
#define DB_DONE     0
#define DB_ERROR    (-1)
#define DB_CONFLICT (-2) /* a uniqueness/constraint violation */

/* A spec starting with postgres:// or postgresql:// is a libpq conninfo
 * URL; anything else is a SQLite file path. 0, or -1 with err filled. */
int db_open(const char *spec, struct db **out, char *err, size_t errlen);
void db_close(struct db *db);
enum db_dialect db_dialect(struct db *db);
/* The last error's text (the backend's message). */
const char *db_errmsg(struct db *db);
/* Runs one or more statements without parameters: 0, or -1. */
int db_exec(struct db *db, const char *sql);
int db_begin(struct db *db); /* a write transaction (SQLite: BEGIN IMMEDIATE) */
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* A statement ready for binding; NULL on error (db_errmsg says why).
 * PostgreSQL statements are prepared once per connection and cached. */
struct db_stmt *db_prepare(struct db *db, const char *sql);
/* Parameters are numbered from 1. Text is copied; NULL binds SQL NULL. */
void db_bind_int(struct db_stmt *s, int i, int v);
void db_bind_int64(struct db_stmt *s, int i, int64_t v);
void db_bind_double(struct db_stmt *s, int i, double v);
void db_bind_text(struct db_stmt *s, int i, const char *v);
void db_bind_null(struct db_stmt *s, int i);
/* DB_ROW, DB_DONE, DB_CONFLICT or DB_ERROR. */
int db_step(struct db_stmt *s);
/* Columns of the current row, numbered from 0. Text is NULL for SQL NULL
 * and valid until the next step or finish. */
int64_t db_col_int64(struct db_stmt *s, int i);
int db_col_int(struct db_stmt *s, int i);
double db_col_double(struct db_stmt *s, int i);
const char *db_col_text(struct db_stmt *s, int i);
size_t db_col_bytes(struct db_stmt *s, int i);
/* Done with the statement (always call it, whatever step returned). */
void db_finish(struct db_stmt *s);
/* Rows the last completed INSERT/UPDATE/DELETE changed. */
int64_t db_changes(struct db *db);

/* PostgreSQL: runs sql (settings of the session, e.g. the leader's epoch)
 * now and again after every reconnect, replacing the sql given before.
 * SQLite: nothing (0). 0, or -1 (db_errmsg says why). */
int db_session(struct db *db, const char *sql);

/* Schema versions (migrations, store.c). Inside a db_begin transaction:
 * db_schema_lock takes the migration lock (PostgreSQL: an advisory
 * transaction lock, so two processes never both migrate; SQLite: BEGIN
 * IMMEDIATE already is one) and reads the version; db_schema_set writes it
 * (SQLite: PRAGMA user_version; PostgreSQL: the schema_version table). */
int db_schema_lock(struct db *db, int *version);
int db_schema_set(struct db *db, int version);
/* The version outside a transaction, or -1. */
int db_schema_version(struct db *db);
/* The migration text for this dialect (malloc'd): SQLite's is used as
 * written; PostgreSQL's maps types (INTEGER -> BIGINT, REAL -> DOUBLE
 * PRECISION, AUTOINCREMENT keys -> BIGSERIAL, no WITHOUT ROWID) and adds
 * `extra` (PostgreSQL-only statements of that version, may be NULL). */
char *db_schema_sql(struct db *db, const char *sqlite_sql, const char *pg_extra);

#endif
