/*
 * store_backend.h - which database a store test runs on: a SQLite file
 * under /tmp (always), or the PostgreSQL database YUN_TEST_PG_URL names
 * (scripts/pg-test-server.sh) for a second run of the same test bodies.
 * Header-only, for the tests on a real store (test_store*.c, test_tasks.c,
 * test_ctl_*.c).
 */
#ifndef YUN_TEST_STORE_BACKEND_H
#define YUN_TEST_STORE_BACKEND_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/db.h"
#include "store/store.h"

static char tb_path[64];
static const char *tb_pg_url; /* non-NULL: the run on PostgreSQL */

/* The spec store_open gets. */
static inline const char *tb_spec(void)
{
    return tb_pg_url ? tb_pg_url : tb_path;
}

static inline void tb_unlink_sqlite(void)
{
    char p[80];
    unlink(tb_path);
    snprintf(p, sizeof(p), "%s-wal", tb_path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", tb_path);
    unlink(p);
}

/* An empty database: the SQLite file removed, or the PostgreSQL public
 * schema dropped with every table and made again. 0 or -1. */
static inline int tb_fresh(const char *name)
{
    if (!tb_pg_url) {
        snprintf(tb_path, sizeof(tb_path), "/tmp/yun-unit-%s-%d.db", name, (int)getpid());
        tb_unlink_sqlite();
        return 0;
    }
    struct db *db;
    char err[256];
    if (db_open(tb_pg_url, &db, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int rc = db_exec(db, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
    if (rc < 0)
        fprintf(stderr, "%s\n", db_errmsg(db));
    db_close(db);
    return rc;
}

static inline void tb_cleanup(void)
{
    if (!tb_pg_url)
        tb_unlink_sqlite();
}

/* A store on a fresh database (tb_fresh(name)), for a setup: 0, or -1
 * with the reason on stderr. tb_close is its teardown. */
static inline int tb_open(const char *name, struct store **out)
{
    char err[256];
    if (tb_fresh(name) < 0)
        return -1;
    if (store_open(tb_spec(), out, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static inline void tb_close(struct store *st)
{
    store_close(st);
    tb_cleanup();
}

/* Runs the group on SQLite, then on PostgreSQL when YUN_TEST_PG_URL is set. */
#define TB_RUN_GROUPS(tests)                                                                       \
    ({                                                                                             \
        int failed_ = cmocka_run_group_tests_name("SQLite", tests, NULL, NULL);                    \
        const char *u_ = getenv("YUN_TEST_PG_URL");                                                \
        if (u_ && *u_) {                                                                           \
            tb_pg_url = u_;                                                                        \
            failed_ += cmocka_run_group_tests_name("PostgreSQL", tests, NULL, NULL);               \
            tb_pg_url = NULL;                                                                      \
        }                                                                                          \
        failed_;                                                                                   \
    })

#endif
