/*
 * db_pg.c - the PostgreSQL backend of db.h over libpq. Synchronous
 * (PQprepare/PQexecPrepared on one connection, a local socket in practice):
 * each statement is one round trip on the caller's thread. Statements are
 * prepared once per connection (named y1, y2, ...) the first time they run,
 * with the parameter types of that first binding, and cached by their text;
 * a lost connection is reset once and its statements prepared again. The
 * schema version is a one-row table, migrated under an advisory lock.
 */
#include "store/db_impl.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS   128
#define MAX_PARAMS 64
/* the advisory lock migrations take ("yun" in ASCII) */
#define MIGRATE_LOCK "7959918" /* 0x79756e */

/* built-in type oids (catalog/pg_type_d.h, stable) */
#define OID_INT4   23
#define OID_INT8   20
#define OID_FLOAT8 701
#define OID_TEXT   25

struct pg_stmt {
    struct db_stmt base;
    struct pg_stmt *next; /* bucket chain */
    char *sql;            /* the text as written (the cache key) */
    char *pgsql;          /* with $n placeholders */
    char name[16];
    int nparams;
    bool prepared, busy;
    Oid types[MAX_PARAMS];
    char *vals[MAX_PARAMS];
    PGresult *res;
    int row, nrows;
};

struct pg_db {
    struct db base;
    PGconn *conn;
    struct pg_stmt *cache[NBUCKETS];
    int nstmts;
    char *session; /* db_session's sql, run again after a reset */
};

#define SESSION_INIT "SET client_min_messages=warning; SET TIME ZONE 'UTC'"

static PGconn *C(struct db *db)
{
    return ((struct pg_db *)db)->conn;
}

static int conn_err(struct db *db)
{
    return db_seterr(db, "%s", PQerrorMessage(C(db)));
}

/* A connection found broken is reset once; its prepared statements are
 * gone with it, and its session settings are made again (one that fails
 * is safe: a session without the leader's epoch is fenced off). A
 * transaction in flight is lost: the caller's next statement fails, it
 * rolls back. */
static void check_conn(struct db *db)
{
    struct pg_db *d = (struct pg_db *)db;
    if (PQstatus(d->conn) != CONNECTION_BAD)
        return;
    PQreset(d->conn);
    for (int b = 0; b < NBUCKETS; b++)
        for (struct pg_stmt *s = d->cache[b]; s; s = s->next)
            s->prepared = false;
    if (PQstatus(d->conn) != CONNECTION_OK)
        return;
    PQclear(PQexec(d->conn, SESSION_INIT));
    if (d->session)
        PQclear(PQexec(d->conn, d->session));
}

/* 0 when res is a success (PQclear'd unless keep), else the error recorded
 * and DB_CONFLICT (a unique violation, SQLSTATE 23505) or DB_ERROR. */
static int res_check(struct db *db, PGresult *res)
{
    ExecStatusType t = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK)
        return 0;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    db_seterr(db, "%s", res ? PQresultErrorMessage(res) : PQerrorMessage(C(db)));
    if (!db->err[0])
        conn_err(db);
    return state && !strcmp(state, "23505") ? DB_CONFLICT : DB_ERROR;
}

static void pg_close(struct db *db)
{
    struct pg_db *d = (struct pg_db *)db;
    for (int b = 0; b < NBUCKETS; b++) {
        struct pg_stmt *s = d->cache[b];
        while (s) {
            struct pg_stmt *nx = s->next;
            PQclear(s->res);
            for (int i = 0; i < s->nparams; i++)
                free(s->vals[i]);
            free(s->sql);
            free(s->pgsql);
            free(s);
            s = nx;
        }
    }
    PQfinish(d->conn);
    free(d->session);
    free(d);
}

static int pg_exec(struct db *db, const char *sql)
{
    check_conn(db);
    PGresult *res = PQexec(C(db), sql);
    int rc = res_check(db, res);
    PQclear(res);
    return rc < 0 ? -1 : 0;
}

/* Copies sql turning ?N into $N and a bare ? into $k (k counting up),
 * outside quoted strings; the highest parameter number in *np. */
static char *placeholders(const char *sql, int *np)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 3 + 1); /* "?" -> "$64" at most triples */
    if (!out)
        return NULL;
    char *o = out;
    int k = 0, max = 0;
    bool quoted = false;
    for (const char *p = sql; *p; p++) {
        if (*p == '\'')
            quoted = !quoted;
        if (quoted || *p != '?') {
            *o++ = *p;
            continue;
        }
        int num;
        if (p[1] >= '0' && p[1] <= '9') {
            char *end;
            num = (int)strtol(p + 1, &end, 10);
            p = end - 1;
        } else {
            num = ++k;
        }
        if (num > max)
            max = num;
        o += sprintf(o, "$%d", num);
    }
    *o = 0;
    *np = max;
    return out;
}

static unsigned hash(const char *s)
{
    unsigned h = 5381;
    while (*s)
        h = h * 33 + (unsigned char)*s++;
    return h % NBUCKETS;
}

static struct db_stmt *pg_prepare(struct db *db, const char *sql)
{
    struct pg_db *d = (struct pg_db *)db;
    unsigned b = hash(sql);
    for (struct pg_stmt *s = d->cache[b]; s; s = s->next)
        if (!s->busy && !strcmp(s->sql, sql)) {
            s->busy = true;
            return &s->base;
        }
    struct pg_stmt *s = calloc(1, sizeof(*s));
    if (!s || !(s->sql = strdup(sql)) || !(s->pgsql = placeholders(sql, &s->nparams))) {
        if (s) {
            free(s->sql);
            free(s);
        }
        db_seterr(db, "out of memory");
        return NULL;
    }
    if (s->nparams > MAX_PARAMS) {
        db_seterr(db, "statement has %d parameters (at most %d)", s->nparams, MAX_PARAMS);
        free(s->sql);
        free(s->pgsql);
        free(s);
        return NULL;
    }
    s->base.db = db;
    snprintf(s->name, sizeof(s->name), "y%d", ++d->nstmts);
    s->busy = true;
    s->next = d->cache[b];
    d->cache[b] = s;
    return &s->base;
}

static void pg_bind(struct db_stmt *st, int i, enum db_bind_type t, int64_t iv, double dv,
                    const char *tv)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    if (i < 1 || i > s->nparams)
        return;
    char buf[40];
    const char *v = buf;
    /* text, and NULL (the store binds NULL only where text goes): "?2 IS
     * NULL OR object=?2" leaves the server nothing to infer a type from */
    Oid type = OID_TEXT;
    switch (t) {
    case DB_T_NULL:
        v = NULL;
        break;
    case DB_T_INT:
        snprintf(buf, sizeof(buf), "%d", (int)iv);
        type = OID_INT4;
        break;
    case DB_T_INT64:
        snprintf(buf, sizeof(buf), "%lld", (long long)iv);
        type = OID_INT8;
        break;
    case DB_T_DOUBLE:
        snprintf(buf, sizeof(buf), "%.17g", dv);
        type = OID_FLOAT8;
        break;
    case DB_T_TEXT:
        v = tv;
        break;
    }
    free(s->vals[i - 1]);
    s->vals[i - 1] = v ? strdup(v) : NULL;
    if (!s->prepared)
        s->types[i - 1] = type;
}

static int pg_step(struct db_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    struct db *db = st->db;
    if (s->res) {
        if (++s->row < s->nrows)
            return DB_ROW;
        return DB_DONE;
    }
    check_conn(db);
    if (!s->prepared) {
        PGresult *r = PQprepare(C(db), s->name, s->pgsql, s->nparams, s->types);
        int rc = res_check(db, r);
        PQclear(r);
        if (rc < 0)
            return rc;
        s->prepared = true;
    }
    PGresult *r =
        PQexecPrepared(C(db), s->name, s->nparams, (const char *const *)s->vals, NULL, NULL, 0);
    int rc = res_check(db, r);
    if (rc < 0) {
        PQclear(r);
        return rc;
    }
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        db->changes = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        return DB_DONE;
    }
    s->res = r;
    s->nrows = PQntuples(r);
    s->row = 0;
    /* a statement with RETURNING counts its rows as changed */
    db->changes = s->nrows;
    return s->nrows ? DB_ROW : DB_DONE;
}

static const char *pg_col_text(struct db_stmt *st, int i)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    if (!s->res || s->row >= s->nrows || i >= PQnfields(s->res) || PQgetisnull(s->res, s->row, i))
        return NULL;
    return PQgetvalue(s->res, s->row, i);
}

static size_t pg_col_bytes(struct db_stmt *st, int i)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    return pg_col_text(st, i) ? (size_t)PQgetlength(s->res, s->row, i) : 0;
}

static int64_t pg_col_int64(struct db_stmt *st, int i)
{
    const char *v = pg_col_text(st, i);
    return v ? strtoll(v, NULL, 10) : 0;
}

static double pg_col_double(struct db_stmt *st, int i)
{
    const char *v = pg_col_text(st, i);
    return v ? strtod(v, NULL) : 0;
}

static void pg_finish(struct db_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    PQclear(s->res);
    s->res = NULL;
    for (int i = 0; i < s->nparams; i++) {
        free(s->vals[i]);
        s->vals[i] = NULL;
    }
    s->busy = false;
}

/* One integer from a one-row query, or -1 (error recorded). */
static int query_int(struct db *db, const char *sql)
{
    check_conn(db);
    PGresult *r = PQexec(C(db), sql);
    int v = -1;
    if (res_check(db, r) == 0) { /* else the server's error is recorded */
        if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            v = atoi(PQgetvalue(r, 0, 0));
        else
            db_seterr(db, "no schema version row");
    }
    PQclear(r);
    return v;
}

static int pg_schema_lock(struct db *db, int *version)
{
    if (pg_exec(db, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")") < 0 ||
        pg_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)") < 0)
        return -1;
    *version = query_int(db, "SELECT coalesce(max(version),0) FROM schema_version");
    return *version < 0 ? -1 : 0;
}

static int pg_schema_set(struct db *db, int version)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "DELETE FROM schema_version; INSERT INTO schema_version VALUES(%d)",
             version);
    return pg_exec(db, sql);
}

static int pg_schema_version(struct db *db)
{
    return query_int(db, "SELECT coalesce(max(version),0) FROM schema_version");
}

static int pg_session(struct db *db, const char *sql)
{
    struct pg_db *d = (struct pg_db *)db;
    char *copy = strdup(sql);
    if (!copy)
        return db_seterr(db, "out of memory");
    if (pg_exec(db, sql) < 0) {
        free(copy);
        return -1;
    }
    free(d->session);
    d->session = copy;
    return 0;
}

static const struct db_ops pg_ops = {
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .bind = pg_bind,
    .step = pg_step,
    .col_int64 = pg_col_int64,
    .col_double = pg_col_double,
    .col_text = pg_col_text,
    .col_bytes = pg_col_bytes,
    .finish = pg_finish,
    .schema_lock = pg_schema_lock,
    .schema_set = pg_schema_set,
    .schema_version = pg_schema_version,
    .session = pg_session,
};

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* NOTICEs ("already exists, skipping") are not errors */
}

int db_pg_open(const char *url, struct db **out, char *err, size_t errlen)
{
    struct pg_db *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->base.dialect = DB_PG;
    d->base.ops = &pg_ops;
    /* A cut network must not hold a statement (and the loop making it) for
     * TCP's minutes: unacknowledged data gives up after tcp_user_timeout, a
     * silent peer is noticed by keepalives, a connect (also PQreset's) waits
     * at most connect_timeout. Defaults: the URL's own settings, processed
     * after them, win. A leader that is cut off then sees its lease end and
     * steps down while still cut off (tests/e2e/test_leader_netcut.py). */
    const char *keys[] = {
        "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *vals[] = {"5", "1", "5", "2", "3", "5000", url, NULL};
    d->conn = PQconnectdbParams(keys, vals, 1);
    if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
        /* the message, not the URL: it may carry a password */
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
                 d->conn ? PQerrorMessage(d->conn) : "out of memory");
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = 0;
        PQfinish(d->conn);
        free(d);
        return -1;
    }
    PQsetNoticeProcessor(d->conn, quiet, NULL);
    if (pg_exec(&d->base, SESSION_INIT) < 0) {
        snprintf(err, errlen, "PostgreSQL: %s", d->base.err);
        pg_close(&d->base);
        return -1;
    }
    *out = &d->base;
    return 0;
}
