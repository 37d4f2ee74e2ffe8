/*
 * test_leader.c - leadership among controllers on PostgreSQL (store_leader.c,
 * ctl/leader.c) and the epoch fence of schema 9: of two contenders one
 * wins; a write with an old epoch fails; a lease that lapsed while its lock
 * is held (the holder hangs) is taken over by ending the holder's sessions;
 * two loop-side leader objects, the second following the first's URL and
 * taking over when it stands down. Needs YUN_TEST_PG_URL (skipped without);
 * each run makes a database of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/leader.h"
#include "lib/util.h"
#include "store/db.h"
#include "store/store.h"
#include "store/store_leader.h"

static char db_url[512];
static char db_name[64];

/* The URL of database `name` on the server of url (postgresql://[auth@host]/db?opts). */
static void with_db(const char *url, const char *name, char *out, size_t len)
{
    const char *rest = strstr(url, "://");
    rest = rest ? rest + 3 : url;
    const char *slash = strchr(rest, '/');
    const char *q = strchr(rest, '?');
    size_t head = (size_t)((slash ? slash : (q ? q : rest + strlen(rest))) - url);
    snprintf(out, len, "%.*s/%s%s", (int)head, url, name, q ? q : "");
}

static int admin(const char *sql)
{
    struct db *db;
    char err[256];
    if (db_open(getenv("YUN_TEST_PG_URL"), &db, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int rc = db_exec(db, sql);
    if (rc < 0)
        fprintf(stderr, "%s\n", db_errmsg(db));
    db_close(db);
    return rc;
}

static int setup(void **state)
{
    snprintf(db_name, sizeof(db_name), "yun_unit_leader_%d", (int)getpid());
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", db_name);
    admin(sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db_name);
    if (admin(sql) < 0)
        return -1;
    with_db(getenv("YUN_TEST_PG_URL"), db_name, db_url, sizeof(db_url));
    return 0;
}

static int teardown(void **state)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name);
    return admin(sql) < 0 ? -1 : 0;
}

static struct store *open_store(void)
{
    struct store *st;
    char err[256];
    if (store_open(db_url, &st, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    return st;
}

static struct store_leader *open_leader(int lease_ms)
{
    struct store_leader *sl;
    char err[256];
    if (store_leader_open(db_url, lease_ms, &sl, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    return sl;
}

static int add_event(struct store *st, const char *what)
{
    struct event_rec ev = {0};
    snprintf(ev.object_type, sizeof(ev.object_type), "vm");
    snprintf(ev.object, sizeof(ev.object), "%s", what);
    snprintf(ev.action, sizeof(ev.action), "test");
    snprintf(ev.result, sizeof(ev.result), "ok");
    return store_event_add(st, &ev);
}

static void test_one_wins(void **state)
{
    struct store *st = open_store(); /* migrates */
    struct store_leader *a = open_leader(5000), *b = open_leader(5000);
    struct leader_row row;
    int64_t ea = 0, eb = 0;
    char err[256];
    assert_int_equal(store_leader_try(a, "A", "http://a:1", &ea, &row, err, sizeof(err)), 1);
    assert_true(ea >= 1);
    assert_int_equal(store_leader_try(b, "B", "http://b:1", &eb, &row, err, sizeof(err)), 0);
    assert_string_equal(row.holder, "A");
    assert_string_equal(row.url, "http://a:1");
    assert_int_equal(row.epoch, ea);
    assert_true(row.lease_until > row.db_now);
    assert_int_equal(store_leader_renew(a, ea, err, sizeof(err)), 0);
    /* b may not renew a lease it does not hold */
    assert_int_equal(store_leader_renew(b, ea, err, sizeof(err)), 1);
    /* a stands down: b takes over at once, with the next epoch */
    store_leader_release(a, ea);
    assert_int_equal(store_leader_try(b, "B", "http://b:1", &eb, &row, err, sizeof(err)), 1);
    assert_int_equal(eb, ea + 1);
    assert_int_equal(store_leader_renew(a, ea, err, sizeof(err)), 1);
    store_leader_close(a);
    store_leader_close(b);
    store_close(st);
}

static void test_fence(void **state)
{
    struct store *old = open_store(), *cur = open_store(), *none = open_store();
    /* no leader ever: writes pass (the unit tests' stores, a fresh database) */
    assert_int_equal(add_event(none, "before"), 0);
    struct store_leader *a = open_leader(5000), *b = open_leader(5000);
    struct leader_row row;
    int64_t ea, eb;
    char err[256];
    assert_int_equal(store_leader_try(a, "A", "", &ea, &row, err, sizeof(err)), 1);
    assert_int_equal(store_set_epoch(old, ea), 0);
    assert_int_equal(add_event(old, "a-leads"), 0);
    /* a session without the epoch is fenced off */
    assert_int_not_equal(add_event(none, "no-epoch"), 0);
    assert_non_null(strstr(store_errmsg(none), "not the leader"));
    struct store_leader *probe = open_leader(5000);
    assert_int_equal(store_leader_read(probe, &row, err, sizeof(err)), 0);
    assert_true(row.store_pid > 0); /* recorded by store_set_epoch */
    store_leader_close(probe);
    /* b is elected: a's store, still on the old epoch, cannot write */
    store_leader_release(a, ea);
    assert_int_equal(store_leader_try(b, "B", "", &eb, &row, err, sizeof(err)), 1);
    assert_int_equal(store_set_epoch(cur, eb), 0);
    assert_int_not_equal(add_event(old, "a-deposed"), 0);
    assert_non_null(strstr(store_errmsg(old), "not the leader"));
    assert_int_equal(add_event(cur, "b-leads"), 0);
    /* and nothing of a's after the election is there */
    struct event_rec *evs;
    size_t n;
    assert_int_equal(store_event_list(cur, 0, 100, "a-deposed", &evs, &n), 0);
    assert_int_equal(n, 0);
    free(evs);
    store_leader_close(a);
    store_leader_close(b);
    store_close(old);
    store_close(cur);
    store_close(none);
}

static void test_lapsed_lease_taken_over(void **state)
{
    struct store *st = open_store(), *ast = open_store();
    struct store_leader *a = open_leader(600), *b = open_leader(600);
    struct leader_row row;
    int64_t ea, eb;
    char err[256];
    assert_int_equal(store_leader_try(a, "A", "http://a:1", &ea, &row, err, sizeof(err)), 1);
    assert_int_equal(store_set_epoch(ast, ea), 0);
    /* a hangs: its sessions linger but it renews no more */
    assert_int_equal(store_leader_try(b, "B", "http://b:1", &eb, &row, err, sizeof(err)), 0);
    usleep(800 * 1000);
    int64_t t0 = monotonic_ms();
    assert_int_equal(store_leader_try(b, "B", "http://b:1", &eb, &row, err, sizeof(err)), 1);
    assert_true(monotonic_ms() - t0 < 2000);
    assert_int_equal(eb, ea + 1);
    assert_string_equal(row.holder, "B");
    /* a's lock session was ended: it learns it lost */
    assert_int_equal(store_leader_renew(a, ea, err, sizeof(err)), 1);
    /* its store connection (ended too, then reconnected with its old
     * epoch) cannot write */
    assert_int_not_equal(add_event(ast, "a-late"), 0);
    assert_int_not_equal(add_event(ast, "a-late"), 0);
    assert_non_null(strstr(store_errmsg(ast), "not the leader"));
    store_leader_close(a);
    store_leader_close(b);
    store_close(ast);
    store_close(st);
}

static void test_sqlite_has_no_leader(void **state)
{
    struct store_leader *sl;
    char err[256];
    assert_int_equal(store_leader_open("/tmp/x.db", 5000, &sl, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "PostgreSQL"));
}

static void test_loop_objects(void **state)
{
    struct store *s1 = open_store(), *s2 = open_store();
    struct event_base *b1 = event_base_new(), *b2 = event_base_new();
    char err[256];
    struct leader_opts o1 = {.store_spec = db_url, .url = "http://127.0.0.1:1", .lease_ms = 1500};
    struct leader_opts o2 = {.store_spec = db_url, .url = "http://127.0.0.1:2", .lease_ms = 1500};
    struct leader *l1 = leader_start(b1, s1, &o1, err, sizeof(err));
    assert_non_null(l1);
    assert_int_equal(leader_wait(l1, 5000), 1);
    assert_true(leader_serving(l1));
    assert_true(leader_epoch(l1) > 0);
    struct leader *l2 = leader_start(b2, s2, &o2, err, sizeof(err));
    assert_non_null(l2);
    assert_int_equal(leader_wait(l2, 1500), 0);
    assert_false(leader_serving(l2));
    assert_string_equal(leader_url(l2), "http://127.0.0.1:1");
    assert_int_equal(add_event(s2, "standby"), -1); /* a standby's store is fenced */
    assert_int_equal(add_event(s1, "leader"), 0);
    int64_t e1 = leader_epoch(l1);
    leader_stop(l1); /* released: the standby takes over within its next try */
    int64_t t0 = monotonic_ms();
    assert_int_equal(leader_wait(l2, 3000), 1);
    assert_true(monotonic_ms() - t0 < 2500);
    assert_int_equal(leader_epoch(l2), e1 + 1);
    assert_string_equal(leader_url(l2), "http://127.0.0.1:2");
    assert_int_equal(add_event(s2, "new-leader"), 0);
    assert_int_not_equal(add_event(s1, "old-leader"), 0);
    leader_stop(l2);
    event_base_free(b1);
    event_base_free(b2);
    store_close(s1);
    store_close(s2);
}

int main(void)
{
    const char *u = getenv("YUN_TEST_PG_URL");
    if (!u || !*u) {
        printf("test_leader: YUN_TEST_PG_URL is not set, skipped\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lapsed_lease_taken_over, setup, teardown),
        cmocka_unit_test(test_sqlite_has_no_leader),
        cmocka_unit_test_setup_teardown(test_loop_objects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
