/*
 * db_sqlite.c - the SQLite backend of db.h: the embedded file, WAL journal
 * so readers never block the writer, synchronous=NORMAL (a crash of yund
 * loses nothing committed; only a power cut can lose the last
 * transactions), the schema version in PRAGMA user_version.
 */
#include "store/db_impl.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sq_db {
    struct db base;
    sqlite3 *h;
};

struct sq_stmt {
    struct db_stmt base;
    sqlite3_stmt *s;
};

static sqlite3 *H(struct db *db)
{
    return ((struct sq_db *)db)->h;
}

static sqlite3_stmt *S(struct db_stmt *s)
{
    return ((struct sq_stmt *)s)->s;
}

static void sq_close(struct db *db)
{
    sqlite3_close(H(db));
    free(db);
}

static int sq_exec(struct db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(H(db), sql, NULL, NULL, &msg) != SQLITE_OK) {
        db_seterr(db, "%s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Statements are prepared per call: at yun's rates (one or two statements
 * per API request) preparing costs microseconds and keeps the code simple;
 * bench/api.sh measures the list path. */
static struct db_stmt *sq_prepare(struct db *db, const char *sql)
{
    struct sq_stmt *st = calloc(1, sizeof(*st));
    if (!st) {
        db_seterr(db, "out of memory");
        return NULL;
    }
    st->base.db = db;
    if (sqlite3_prepare_v2(H(db), sql, -1, &st->s, NULL) != SQLITE_OK) {
        db_seterr(db, "%s", sqlite3_errmsg(H(db)));
        sqlite3_finalize(st->s);
        free(st);
        return NULL;
    }
    return &st->base;
}

static void sq_bind(struct db_stmt *s, int i, enum db_bind_type t, int64_t iv, double dv,
                    const char *tv)
{
    switch (t) {
    case DB_T_NULL:
        sqlite3_bind_null(S(s), i);
        break;
    case DB_T_INT:
        sqlite3_bind_int(S(s), i, (int)iv);
        break;
    case DB_T_INT64:
        sqlite3_bind_int64(S(s), i, (sqlite3_int64)iv);
        break;
    case DB_T_DOUBLE:
        sqlite3_bind_double(S(s), i, dv);
        break;
    case DB_T_TEXT:
        sqlite3_bind_text(S(s), i, tv, -1, SQLITE_TRANSIENT);
        break;
    }
}

static int sq_step(struct db_stmt *s)
{
    struct db *db = s->db;
    int rc = sqlite3_step(S(s));
    if (rc == SQLITE_ROW)
        return DB_ROW;
    if (rc == SQLITE_DONE) {
        db->changes = sqlite3_changes(H(db));
        return DB_DONE;
    }
    db_seterr(db, "%s", sqlite3_errmsg(H(db)));
    int ext = sqlite3_extended_errcode(H(db));
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        return DB_CONFLICT;
    return DB_ERROR;
}

static int64_t sq_col_int64(struct db_stmt *s, int i)
{
    return sqlite3_column_int64(S(s), i);
}

static double sq_col_double(struct db_stmt *s, int i)
{
    return sqlite3_column_double(S(s), i);
}

static const char *sq_col_text(struct db_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(S(s), i);
}

static size_t sq_col_bytes(struct db_stmt *s, int i)
{
    return (size_t)sqlite3_column_bytes(S(s), i);
}

static void sq_finish(struct db_stmt *s)
{
    sqlite3_finalize(S(s));
    free(s);
}

static int sq_schema_version(struct db *db)
{
    sqlite3_stmt *s;
    int v = -1;
    if (sqlite3_prepare_v2(H(db), "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    if (v < 0)
        db_seterr(db, "%s", sqlite3_errmsg(H(db)));
    return v;
}

static int sq_schema_lock(struct db *db, int *version)
{
    /* BEGIN IMMEDIATE (db_begin) holds the write lock already */
    *version = sq_schema_version(db);
    return *version < 0 ? -1 : 0;
}

static int sq_schema_set(struct db *db, int version)
{
    char pragma[64];
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version);
    return sq_exec(db, pragma);
}

static const struct db_ops sq_ops = {
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .bind = sq_bind,
    .step = sq_step,
    .col_int64 = sq_col_int64,
    .col_double = sq_col_double,
    .col_text = sq_col_text,
    .col_bytes = sq_col_bytes,
    .finish = sq_finish,
    .schema_lock = sq_schema_lock,
    .schema_set = sq_schema_set,
    .schema_version = sq_schema_version,
};

int db_sqlite_open(const char *path, struct db **out, char *err, size_t errlen)
{
    struct sq_db *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->base.dialect = DB_SQLITE;
    d->base.ops = &sq_ops;
    if (sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 d->h ? sqlite3_errmsg(d->h) : "out of memory");
        sqlite3_close(d->h);
        free(d);
        return -1;
    }
    sqlite3_busy_timeout(d->h, 5000);
    if (sq_exec(&d->base, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                          "PRAGMA foreign_keys=ON") < 0) {
        snprintf(err, errlen, "database %s: %s", path, d->base.err);
        sq_close(&d->base);
        return -1;
    }
    *out = &d->base;
    return 0;
}
