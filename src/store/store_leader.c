/*
 * store_leader.c - leadership among controllers sharing one PostgreSQL
 * database (store_leader.h): the session advisory lock LEADER_KEY held on a
 * dedicated libpq connection, and the `leader` row (schema 9) whose epoch
 * fences every write of the state tables. Blocking calls, for one worker
 * thread; nothing here logs (the thread reports to the loop, which does).
 * Also store_set_epoch, which gives the main store connection its epoch.
 */
#include "store/store_leader.h"
#include "store/store_internal.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The advisory lock of leadership ("yunL"); a bigint key k shows in
 * pg_locks as classid k >> 32, objid k & 0xffffffff, objsubid 1. */
#define LEADER_KEY "2037739084"
/* The database clock in ms. */
#define DB_NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

struct store_leader {
    PGconn *conn;
    int lease_ms;
    bool locked; /* this session holds LEADER_KEY (a lock taken twice counts twice) */
};

static int fail(struct store_leader *sl, PGresult *r, char *err, size_t errlen, const char *what)
{
    const char *m = r ? PQresultErrorMessage(r) : "";
    if (!m || !*m)
        m = PQerrorMessage(sl->conn);
    snprintf(err, errlen, "%s: %s", what, m);
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = 0;
    PQclear(r);
    return -1;
}

/* Runs sql with text parameters; the result (caller clears) or NULL after
 * recording the error. */
static PGresult *run(struct store_leader *sl, const char *sql, int n, const char *const *vals,
                     char *err, size_t errlen, const char *what)
{
    PGresult *r =
        n ? PQexecParams(sl->conn, sql, n, NULL, vals, NULL, NULL, 0) : PQexec(sl->conn, sql);
    ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
        fail(sl, r, err, errlen, what);
        return NULL;
    }
    return r;
}

int store_leader_open(const char *spec, int lease_ms, struct store_leader **out, char *err,
                      size_t errlen)
{
    if (strncmp(spec, "postgres://", 11) && strncmp(spec, "postgresql://", 13)) {
        snprintf(err, errlen, "leadership needs a PostgreSQL store (postgres://...)");
        return -1;
    }
    if (lease_ms < 200) {
        snprintf(err, errlen, "leader lease %d ms is too short (at least 200)", lease_ms);
        return -1;
    }
    struct store_leader *sl = calloc(1, sizeof(*sl));
    if (!sl) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    sl->lease_ms = lease_ms;
    /* A cut network must not hang a call past the lease: TCP gives up
     * sending after tcp_user_timeout, keepalives notice a silent peer. */
    char tut[24], ct[24];
    snprintf(tut, sizeof(tut), "%d", lease_ms / 2);
    snprintf(ct, sizeof(ct), "%d", lease_ms / 1000 > 2 ? lease_ms / 1000 : 2);
    const char *keys[] = {"dbname",           "connect_timeout",     "keepalives",
                          "keepalives_idle",  "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "application_name",    NULL};
    const char *vals[] = {spec, ct, "1", "1", "1", "2", tut, "yund-leader", NULL};
    sl->conn = PQconnectdbParams(keys, vals, 1);
    if (!sl->conn || PQstatus(sl->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "leader connection to PostgreSQL: %s",
                 sl->conn ? PQerrorMessage(sl->conn) : "out of memory");
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = 0;
        PQfinish(sl->conn);
        free(sl);
        return -1;
    }
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SET client_min_messages=warning; SET statement_timeout=%d; SET lock_timeout=%d",
             lease_ms / 2, lease_ms / 3);
    PGresult *r = run(sl, sql, 0, NULL, err, errlen, "leader connection");
    if (!r) {
        PQfinish(sl->conn);
        free(sl);
        return -1;
    }
    PQclear(r);
    *out = sl;
    return 0;
}

void store_leader_close(struct store_leader *sl)
{
    if (!sl)
        return;
    PQfinish(sl->conn); /* the session's end releases the lock */
    free(sl);
}

static void copy_col(PGresult *r, int c, char *dst, size_t len)
{
    snprintf(dst, len, "%s", PQgetisnull(r, 0, c) ? "" : PQgetvalue(r, 0, c));
}

int store_leader_read(struct store_leader *sl, struct leader_row *row, char *err, size_t errlen)
{
    PGresult *r = run(sl,
                      "SELECT holder, url, epoch, lease_until, " DB_NOW_MS
                      ", pid, store_pid FROM leader WHERE id = 1",
                      0, NULL, err, errlen, "reading the leader row");
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        snprintf(err, errlen, "the leader row is missing (schema 9)");
        return -1;
    }
    memset(row, 0, sizeof(*row));
    copy_col(r, 0, row->holder, sizeof(row->holder));
    copy_col(r, 1, row->url, sizeof(row->url));
    row->epoch = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    row->lease_until = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    row->db_now = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
    row->pid = atoi(PQgetvalue(r, 0, 5));
    row->store_pid = atoi(PQgetvalue(r, 0, 6));
    PQclear(r);
    return 0;
}

/* 1 when the lock is now this session's, 0 when another holds it, -1. */
static int try_lock(struct store_leader *sl, char *err, size_t errlen)
{
    if (sl->locked)
        return 1;
    PGresult *r =
        run(sl, "SELECT pg_try_advisory_lock(" LEADER_KEY ")", 0, NULL, err, errlen, "leader lock");
    if (!r)
        return -1;
    sl->locked = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return sl->locked;
}

/* Ends the sessions of a lapsed leader: the one holding the lock (found in
 * pg_locks, whatever the row says) and the row's store connection, if it
 * is a session of this database. */
static int terminate_holder(struct store_leader *sl, const struct leader_row *row, char *err,
                            size_t errlen)
{
    char spid[16];
    snprintf(spid, sizeof(spid), "%d", row->store_pid);
    const char *v[] = {spid};
    PGresult *r = run(sl,
                      "SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a"
                      " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
                      " AND (a.pid = $1::int OR a.pid IN (SELECT l.pid FROM pg_locks l"
                      "  WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0"
                      "  AND l.objid = " LEADER_KEY " AND l.objsubid = 1"
                      "  AND l.database = (SELECT oid FROM pg_database"
                      "   WHERE datname = current_database())))",
                      1, v, err, errlen, "ending the lapsed leader's sessions");
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Holding the lock: the row becomes this session's with the next epoch.
 * FOR UPDATE waits for writes in flight under the old epoch (they hold the
 * row KEY SHARE, the fence), at most lock_timeout. */
static int claim(struct store_leader *sl, const char *holder, const char *url, int64_t *epoch,
                 char *err, size_t errlen)
{
    char lease[24];
    snprintf(lease, sizeof(lease), "%d", sl->lease_ms);
    const char *v[] = {holder, url, lease};
    PGresult *r = run(sl, "BEGIN", 0, NULL, err, errlen, "claiming the leader row");
    if (!r)
        return -1;
    PQclear(r);
    r = run(sl, "SELECT epoch FROM leader WHERE id = 1 FOR UPDATE", 0, NULL, err, errlen,
            "claiming the leader row");
    if (r) {
        PQclear(r);
        r = run(sl,
                "UPDATE leader SET epoch = epoch + 1, holder = $1, url = $2,"
                " lease_until = " DB_NOW_MS " + $3::bigint, pid = pg_backend_pid(), store_pid = 0"
                " WHERE id = 1 RETURNING epoch",
                3, v, err, errlen, "claiming the leader row");
    }
    if (!r || PQntuples(r) != 1) {
        if (r) {
            PQclear(r);
            snprintf(err, errlen, "the leader row is missing (schema 9)");
        }
        PQclear(PQexec(sl->conn, "ROLLBACK"));
        return -1;
    }
    *epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = run(sl, "COMMIT", 0, NULL, err, errlen, "claiming the leader row");
    if (!r)
        return -1;
    PQclear(r);
    return 1;
}

int store_leader_try(struct store_leader *sl, const char *holder, const char *url, int64_t *epoch,
                     struct leader_row *row, char *err, size_t errlen)
{
    memset(row, 0, sizeof(*row));
    if (PQstatus(sl->conn) == CONNECTION_BAD) {
        sl->locked = false;
        PQreset(sl->conn);
        if (PQstatus(sl->conn) != CONNECTION_OK)
            return fail(sl, NULL, err, errlen, "leader connection");
        PQclear(PQexec(sl->conn, "SET client_min_messages=warning"));
    }
    int got = try_lock(sl, err, errlen);
    if (got < 0)
        return -1;
    if (!got) {
        if (store_leader_read(sl, row, err, errlen) < 0)
            return -1;
        if (row->lease_until > row->db_now || !row->holder[0])
            return 0; /* a live leader, or one between its lock and its claim */
        /* The lease lapsed yet the lock is held: the holder's session
         * lingers (a hang, a cut network). Its sessions end; the lock is
         * free once the backend has exited. */
        if (terminate_holder(sl, row, err, errlen) < 0)
            return -1;
        for (int i = 0; i < 40 && !got; i++) {
            sleep_ms(50);
            if ((got = try_lock(sl, err, errlen)) < 0)
                return -1;
        }
        if (!got)
            return 0;
    }
    int rc = claim(sl, holder, url, epoch, err, errlen);
    if (rc < 0 && strstr(err, "lock timeout")) {
        /* a write of the old epoch hangs in a transaction: end it too */
        struct leader_row old;
        char e2[128];
        if (store_leader_read(sl, &old, e2, sizeof(e2)) == 0)
            terminate_holder(sl, &old, e2, sizeof(e2));
    }
    if (rc == 1 && store_leader_read(sl, row, err, errlen) < 0)
        memset(row, 0, sizeof(*row));
    return rc;
}

int store_leader_renew(struct store_leader *sl, int64_t epoch, char *err, size_t errlen)
{
    char e[24], lease[24];
    snprintf(e, sizeof(e), "%lld", (long long)epoch);
    snprintf(lease, sizeof(lease), "%d", sl->lease_ms);
    const char *v[] = {e, lease};
    PGresult *r = run(sl,
                      "UPDATE leader SET lease_until = " DB_NOW_MS " + $2::bigint"
                      " WHERE id = 1 AND epoch = $1::bigint AND pid = pg_backend_pid()"
                      " RETURNING 1",
                      2, v, err, errlen, "renewing the leader lease");
    if (!r) {
        /* a session that is gone took the lock with it */
        if (PQstatus(sl->conn) == CONNECTION_BAD) {
            sl->locked = false;
            return 1;
        }
        return -1;
    }
    int n = PQntuples(r);
    PQclear(r);
    if (n != 1) {
        snprintf(err, errlen, "the leader row has another epoch or holder");
        return 1;
    }
    return 0;
}

void store_leader_release(struct store_leader *sl, int64_t epoch)
{
    char e[24];
    snprintf(e, sizeof(e), "%lld", (long long)epoch);
    const char *v[] = {e};
    PQclear(PQexecParams(sl->conn,
                         "UPDATE leader SET lease_until = 0 WHERE id = 1 AND epoch = $1::bigint"
                         " AND pid = pg_backend_pid()",
                         1, NULL, v, NULL, NULL, 0));
    if (sl->locked)
        PQclear(PQexec(sl->conn, "SELECT pg_advisory_unlock(" LEADER_KEY ")"));
    sl->locked = false;
}

int store_set_epoch(struct store *st, int64_t epoch)
{
    if (db_dialect(st->db) != DB_PG)
        return 0;
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT set_config('yun.epoch', '%lld', false);"
             "UPDATE leader SET store_pid = pg_backend_pid() WHERE id = 1 AND epoch = %lld",
             (long long)epoch, (long long)epoch);
    return db_session(st->db, sql) < 0 ? store_fail(st, "setting the leader epoch") : 0;
}
