/*
 * db.c - the SQL layer's front: picks the backend from the spec and
 * forwards each call to it; the schema-text dialect hook.
 */
#include "store/db_impl.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int db_open(const char *spec, struct db **out, char *err, size_t errlen)
{
    if (!strncmp(spec, "postgres://", 11) || !strncmp(spec, "postgresql://", 13))
        return db_pg_open(spec, out, err, errlen);
    return db_sqlite_open(spec, out, err, errlen);
}

void db_close(struct db *db)
{
    if (db)
        db->ops->close(db);
}

enum db_dialect db_dialect(struct db *db)
{
    return db->dialect;
}

const char *db_errmsg(struct db *db)
{
    return db->err;
}

int db_seterr(struct db *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->err, sizeof(db->err), fmt, ap);
    va_end(ap);
    size_t n = strlen(db->err);
    while (n && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
        db->err[--n] = 0;
    return -1;
}

int db_exec(struct db *db, const char *sql)
{
    return db->ops->exec(db, sql);
}

int db_begin(struct db *db)
{
    return db->ops->exec(db, db->dialect == DB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN");
}

int db_commit(struct db *db)
{
    return db->ops->exec(db, "COMMIT");
}

void db_rollback(struct db *db)
{
    char keep[sizeof(db->err)];
    memcpy(keep, db->err, sizeof(keep)); /* the error that caused the rollback */
    db->ops->exec(db, "ROLLBACK");
    memcpy(db->err, keep, sizeof(keep));
}

struct db_stmt *db_prepare(struct db *db, const char *sql)
{
    return db->ops->prepare(db, sql);
}

void db_bind_int(struct db_stmt *s, int i, int v)
{
    s->db->ops->bind(s, i, DB_T_INT, v, 0, NULL);
}

void db_bind_int64(struct db_stmt *s, int i, int64_t v)
{
    s->db->ops->bind(s, i, DB_T_INT64, v, 0, NULL);
}

void db_bind_double(struct db_stmt *s, int i, double v)
{
    s->db->ops->bind(s, i, DB_T_DOUBLE, 0, v, NULL);
}

void db_bind_text(struct db_stmt *s, int i, const char *v)
{
    s->db->ops->bind(s, i, v ? DB_T_TEXT : DB_T_NULL, 0, 0, v);
}

void db_bind_null(struct db_stmt *s, int i)
{
    s->db->ops->bind(s, i, DB_T_NULL, 0, 0, NULL);
}

int db_step(struct db_stmt *s)
{
    return s->db->ops->step(s);
}

int64_t db_col_int64(struct db_stmt *s, int i)
{
    return s->db->ops->col_int64(s, i);
}

int db_col_int(struct db_stmt *s, int i)
{
    return (int)s->db->ops->col_int64(s, i);
}

double db_col_double(struct db_stmt *s, int i)
{
    return s->db->ops->col_double(s, i);
}

const char *db_col_text(struct db_stmt *s, int i)
{
    return s->db->ops->col_text(s, i);
}

size_t db_col_bytes(struct db_stmt *s, int i)
{
    return s->db->ops->col_bytes(s, i);
}

void db_finish(struct db_stmt *s)
{
    if (s)
        s->db->ops->finish(s);
}

int64_t db_changes(struct db *db)
{
    return db->changes;
}

int db_schema_lock(struct db *db, int *version)
{
    return db->ops->schema_lock(db, version);
}

int db_schema_set(struct db *db, int version)
{
    return db->ops->schema_set(db, version);
}

int db_session(struct db *db, const char *sql)
{
    return db->ops->session ? db->ops->session(db, sql) : 0;
}

int db_schema_version(struct db *db)
{
    return db->ops->schema_version(db);
}

/* Appends to a growing buffer; -1 when out of memory. */
static int put(char **b, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *nb = realloc(*b, nc);
        if (!nb)
            return -1;
        *b = nb;
        *cap = nc;
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = 0;
    return 0;
}

/* SQLite type words mapped for PostgreSQL, matched as whole words outside
 * quoted strings, longest first. */
static const struct {
    const char *from, *to;
} pg_words[] = {
    {"INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"},
    {"WITHOUT ROWID", ""},
    {"INTEGER", "BIGINT"},
    {"REAL", "DOUBLE PRECISION"},
};

char *db_schema_sql(struct db *db, const char *sql, const char *pg_extra)
{
    if (db->dialect == DB_SQLITE)
        return strdup(sql);
    char *b = NULL;
    size_t len = 0, cap = 0;
    int quoted = 0;
    for (const char *p = sql; *p;) {
        if (*p == '\'')
            quoted = !quoted;
        if (!quoted && (p == sql || !(isalnum((unsigned char)p[-1]) || p[-1] == '_'))) {
            size_t i, k = sizeof(pg_words) / sizeof(pg_words[0]);
            for (i = 0; i < k; i++) {
                size_t n = strlen(pg_words[i].from);
                if (!strncmp(p, pg_words[i].from, n) &&
                    !(isalnum((unsigned char)p[n]) || p[n] == '_'))
                    break;
            }
            if (i < k) {
                if (put(&b, &len, &cap, pg_words[i].to, strlen(pg_words[i].to)) < 0)
                    goto oom;
                p += strlen(pg_words[i].from);
                continue;
            }
        }
        if (put(&b, &len, &cap, p, 1) < 0)
            goto oom;
        p++;
    }
    if (pg_extra && put(&b, &len, &cap, pg_extra, strlen(pg_extra)) < 0)
        goto oom;
    if (!b)
        b = strdup("");
    return b;
oom:
    free(b);
    return NULL;
}
