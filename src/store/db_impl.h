/*
 * db_impl.h - what db.c shares with its two backends (db_sqlite.c,
 * db_pg.c): the handle layouts and the backend operations table.
 */
#ifndef YUN_STORE_DB_IMPL_H
#define YUN_STORE_DB_IMPL_H

#include "store/db.h"

struct db_ops;

struct db {
    enum db_dialect dialect;
    const struct db_ops *ops;
    char err[512];
    int64_t changes;
};

struct db_stmt {
    struct db *db;
};

enum db_bind_type { DB_T_NULL, DB_T_INT, DB_T_INT64, DB_T_DOUBLE, DB_T_TEXT };

struct db_ops {
    void (*close)(struct db *db);
    int (*exec)(struct db *db, const char *sql);
    struct db_stmt *(*prepare)(struct db *db, const char *sql);
    void (*bind)(struct db_stmt *s, int i, enum db_bind_type t, int64_t iv, double dv,
                 const char *tv);
    int (*step)(struct db_stmt *s);
    int64_t (*col_int64)(struct db_stmt *s, int i);
    double (*col_double)(struct db_stmt *s, int i);
    const char *(*col_text)(struct db_stmt *s, int i);
    size_t (*col_bytes)(struct db_stmt *s, int i);
    void (*finish)(struct db_stmt *s);
    int (*schema_lock)(struct db *db, int *version);
    int (*schema_set)(struct db *db, int version);
    int (*schema_version)(struct db *db);
    int (*session)(struct db *db, const char *sql); /* NULL: nothing to keep */
};

int db_sqlite_open(const char *path, struct db **out, char *err, size_t errlen);
int db_pg_open(const char *url, struct db **out, char *err, size_t errlen);

/* Records a message (printf-style) as the db's error; returns -1. */
int db_seterr(struct db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
