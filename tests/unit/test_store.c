/*
 * test_store.c - unit tests for the store: schema migrations, VM and
 * image rows, uniqueness, lookups by name/id/prefix, events, snapshots and
 * volume attachment. The same bodies run on SQLite and, when
 * YUN_TEST_PG_URL names a PostgreSQL database (scripts/pg-test-server.sh),
 * on PostgreSQL too, each test on a freshly emptied schema.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "store/db.h"
#include "store/store.h"

static char dbpath[64];
static const char *pg_url; /* non-NULL: this group runs on PostgreSQL */

/* The spec store_open gets: the SQLite file or the PostgreSQL URL. */
static const char *spec(void)
{
    return pg_url ? pg_url : dbpath;
}

/* A fresh database for each test: the SQLite file removed, or every table
 * of the PostgreSQL database's public schema dropped. */
static int fresh(void)
{
    if (!pg_url) {
        snprintf(dbpath, sizeof(dbpath), "/tmp/yun-unit-store-%d.db", (int)getpid());
        unlink(dbpath);
        return 0;
    }
    struct db *db;
    char err[256];
    if (db_open(pg_url, &db, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    int rc = db_exec(db, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
    if (rc < 0)
        fprintf(stderr, "%s\n", db_errmsg(db));
    db_close(db);
    return rc;
}

static int setup(void **state)
{
    if (fresh() < 0)
        return -1;
    struct store *st;
    char err[256];
    if (store_open(spec(), &st, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    if (pg_url)
        return 0;
    char p[80];
    unlink(dbpath);
    snprintf(p, sizeof(p), "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", dbpath);
    unlink(p);
    return 0;
}

static struct vm_rec make_vm(const char *name)
{
    struct vm_rec v;
    memset(&v, 0, sizeof(v));
    uuid_generate_str(v.id);
    snprintf(v.name, sizeof(v.name), "%s", name);
    snprintf(v.image, sizeof(v.image), "tiny");
    v.cpus = 2;
    v.memory_mb = 256;
    v.disk_bytes = 1 << 30;
    v.state = VM_STOPPED;
    v.restart = RESTART_ON_FAILURE;
    snprintf(v.cpuset, sizeof(v.cpuset), "0-1");
    return v;
}

static void test_schema_version(void **state)
{
    assert_int_equal(store_schema_version(*state), 7);
}

static void test_vm_roundtrip(void **state)
{
    struct store *st = *state;
    struct vm_rec a = make_vm("alpha"), got;
    assert_int_equal(store_vm_insert(st, &a), 0);
    assert_int_equal(store_vm_get(st, "alpha", &got), 0);
    assert_string_equal(got.id, a.id);
    assert_int_equal(got.cpus, 2);
    assert_true(got.memory_mb == 256);
    assert_int_equal(got.restart, RESTART_ON_FAILURE);
    assert_string_equal(got.cpuset, "0-1");
    /* by id and by 8-char prefix */
    assert_int_equal(store_vm_get(st, a.id, &got), 0);
    char prefix[9];
    snprintf(prefix, sizeof(prefix), "%.8s", a.id);
    assert_int_equal(store_vm_get(st, prefix, &got), 0);
    assert_string_equal(got.name, "alpha");
    /* a 3-char prefix is not enough */
    prefix[3] = 0;
    assert_int_equal(store_vm_get(st, prefix, &got), STORE_NOTFOUND);

    struct vm_rec dup = make_vm("alpha");
    assert_int_equal(store_vm_insert(st, &dup), STORE_CONFLICT);

    a.state = VM_RUNNING;
    a.pid = 4242;
    assert_int_equal(store_vm_update(st, &a), 0);
    assert_int_equal(store_vm_get(st, "alpha", &got), 0);
    assert_int_equal(got.state, VM_RUNNING);
    assert_int_equal(got.pid, 4242);

    struct vm_rec b = make_vm("beta");
    assert_int_equal(store_vm_insert(st, &b), 0);
    struct vm_rec *list;
    size_t n;
    assert_int_equal(store_vm_list(st, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "alpha");
    assert_string_equal(list[1].name, "beta");
    free(list);
    int users = -1;
    assert_int_equal(store_vm_count_using_image(st, "tiny", &users), 0);
    assert_int_equal(users, 2);

    assert_int_equal(store_vm_delete(st, b.id), 0);
    assert_int_equal(store_vm_delete(st, b.id), STORE_NOTFOUND);
    struct vm_rec ghost = make_vm("ghost");
    assert_int_equal(store_vm_update(st, &ghost), STORE_NOTFOUND);
}

static void test_images_and_events(void **state)
{
    struct store *st = *state;
    struct image_rec m;
    memset(&m, 0, sizeof(m));
    uuid_generate_str(m.id);
    snprintf(m.name, sizeof(m.name), "tiny");
    snprintf(m.format, sizeof(m.format), "qcow2");
    snprintf(m.path, sizeof(m.path), "/x/disk.qcow2");
    m.virtual_size = 64 << 20;
    assert_int_equal(store_image_insert(st, &m), 0);
    assert_int_equal(store_image_insert(st, &m), STORE_CONFLICT);
    struct image_rec g;
    assert_int_equal(store_image_get(st, "tiny", &g), 0);
    assert_true(g.virtual_size == 64 << 20);
    assert_int_equal(store_image_delete(st, "tiny"), 0);
    assert_int_equal(store_image_get(st, "tiny", &g), STORE_NOTFOUND);

    for (int i = 0; i < 5; i++) {
        struct event_rec ev;
        memset(&ev, 0, sizeof(ev));
        snprintf(ev.object_type, sizeof(ev.object_type), "vm");
        snprintf(ev.object, sizeof(ev.object), i % 2 ? "odd" : "even");
        snprintf(ev.action, sizeof(ev.action), "act%d", i);
        snprintf(ev.result, sizeof(ev.result), "ok");
        assert_int_equal(store_event_add(st, &ev), 0);
        assert_true(ev.id > 0 && ev.ts > 0);
    }
    struct event_rec *evs;
    size_t n;
    assert_int_equal(store_event_list(st, 0, 100, NULL, &evs, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(evs[0].action, "act0");
    int64_t second = evs[1].id;
    free(evs);
    assert_int_equal(store_event_list(st, second, 100, NULL, &evs, &n), 0);
    assert_int_equal(n, 3);
    free(evs);
    /* the newest N, oldest first */
    assert_int_equal(store_event_list(st, 0, 2, NULL, &evs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(evs[0].action, "act3");
    assert_string_equal(evs[1].action, "act4");
    free(evs);
    assert_int_equal(store_event_list(st, 0, 100, "odd", &evs, &n), 0);
    assert_int_equal(n, 2);
    free(evs);
    assert_true(store_event_last_id(st) == second + 3);
}

static int64_t add_event(struct store *st, const char *action, int64_t ts)
{
    struct event_rec ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.object_type, sizeof(ev.object_type), "vm");
    snprintf(ev.object, sizeof(ev.object), "a");
    snprintf(ev.action, sizeof(ev.action), "%s", action);
    snprintf(ev.result, sizeof(ev.result), "ok");
    ev.ts = ts;
    assert_int_equal(store_event_add(st, &ev), 0);
    return ev.id;
}

/* Retention: the oldest rows go, by count and by age, in bounded batches;
 * the newest stay and `after=ID` keeps working. */
static void test_event_prune(void **state)
{
    struct store *st = *state;
    int64_t now = now_ms(), day = 86400000;
    int64_t first = 0, last = 0;
    for (int i = 0; i < 50; i++) {
        char a[16];
        snprintf(a, sizeof(a), "e%d", i);
        /* e0..e9 are 40 days old, the rest recent */
        last = add_event(st, a, i < 10 ? now - 40 * day : now - 1000);
        if (!first)
            first = last;
    }
    assert_int_equal(store_event_prune(st, 0, 0, 100), 0); /* no limits: nothing */
    /* by age: only the 10 old ones, and no more than a batch per call */
    assert_int_equal(store_event_prune(st, 0, now - 30 * day, 4), 4);
    assert_int_equal(store_event_prune(st, 0, now - 30 * day, 100), 6);
    assert_int_equal(store_event_prune(st, 0, now - 30 * day, 100), 0);
    /* by count: keep the newest 15 */
    assert_int_equal(store_event_prune(st, 15, 0, 10), 10);
    assert_int_equal(store_event_prune(st, 15, 0, 1000), 15);
    assert_int_equal(store_event_prune(st, 15, 0, 1000), 0);
    struct event_rec *evs;
    size_t n;
    assert_int_equal(store_event_list(st, 0, 100, NULL, &evs, &n), 0);
    assert_int_equal(n, 15);
    assert_string_equal(evs[0].action, "e35");
    assert_string_equal(evs[14].action, "e49");
    assert_true(evs[14].id == last);
    free(evs);
    /* a reader that was behind the pruned rows gets what is left, in order */
    assert_int_equal(store_event_list(st, first + 3, 100, NULL, &evs, &n), 0);
    assert_int_equal(n, 15);
    free(evs);
    assert_int_equal(store_event_list(st, last - 2, 100, NULL, &evs, &n), 0);
    assert_int_equal(n, 2);
    free(evs);
    /* ids are never reused after a prune */
    assert_true(add_event(st, "after", now) == last + 1);
    assert_true(store_event_last_id(st) == last + 1);
}

static void test_reopen_keeps_data(void **state)
{
    struct store *st = *state;
    struct vm_rec a = make_vm("durable");
    assert_int_equal(store_vm_insert(st, &a), 0);
    store_close(st);
    char err[256];
    assert_int_equal(store_open(spec(), &st, err, sizeof(err)), 0);
    *state = st;
    struct vm_rec got;
    assert_int_equal(store_vm_get(st, "durable", &got), 0);
    assert_int_equal(store_schema_version(st), 7);
}

static void test_snapshots_and_attachments(void **state)
{
    struct store *st = *state;
    struct vm_rec a = make_vm("snappy");
    snprintf(a.disk, sizeof(a.disk), "disk.qcow2");
    assert_int_equal(store_vm_insert(st, &a), 0);
    struct snapshot_rec s1 = {0}, s2;
    uuid_generate_str(s1.id);
    snprintf(s1.vm_id, sizeof(s1.vm_id), "%s", a.id);
    snprintf(s1.name, sizeof(s1.name), "s1");
    snprintf(s1.file, sizeof(s1.file), "disk.qcow2");
    s1.state = SNAP_CREATING;
    snprintf(s1.new_disk, sizeof(s1.new_disk), "disk-1.qcow2");
    s1.created_at = 1;
    assert_int_equal(store_snapshot_insert(st, &s1), 0);
    s2 = s1;
    uuid_generate_str(s2.id);
    assert_int_equal(store_snapshot_insert(st, &s2), STORE_CONFLICT); /* name per VM */
    snprintf(s2.name, sizeof(s2.name), "s2");
    snprintf(s2.parent, sizeof(s2.parent), "%s", s1.id);
    s2.created_at = 2;
    assert_int_equal(store_snapshot_insert(st, &s2), 0);
    s1.state = SNAP_READY;
    s1.new_disk[0] = 0;
    assert_int_equal(store_snapshot_update(st, &s1), 0);
    /* the active layer moves with snapshots and survives a round trip */
    snprintf(a.disk, sizeof(a.disk), "disk-1.qcow2");
    snprintf(a.disk_parent, sizeof(a.disk_parent), "%s", s2.id);
    assert_int_equal(store_vm_update(st, &a), 0);
    struct vm_rec got;
    assert_int_equal(store_vm_get(st, "snappy", &got), 0);
    assert_string_equal(got.disk, "disk-1.qcow2");
    assert_string_equal(got.disk_parent, s2.id);
    struct snapshot_rec *list;
    size_t n;
    assert_int_equal(store_snapshot_list(st, a.id, &list, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "s1");
    assert_int_equal(list[0].state, SNAP_READY);
    assert_string_equal(list[0].new_disk, "");
    assert_string_equal(list[1].parent, s1.id);
    free(list);
    assert_int_equal(store_snapshot_delete(st, s1.id), 0);
    assert_int_equal(store_snapshot_list(st, a.id, &list, &n), 0);
    assert_int_equal(n, 1);
    free(list);
    /* volumes attached to a VM */
    struct volume_rec v = {0};
    uuid_generate_str(v.id);
    snprintf(v.name, sizeof(v.name), "data");
    v.state = VOL_ATTACHED;
    snprintf(v.task, sizeof(v.task), "t-1");
    snprintf(v.attached_to, sizeof(v.attached_to), "%s", a.id);
    assert_int_equal(store_volume_insert(st, &v), 0);
    struct volume_rec *vs;
    assert_int_equal(store_volume_list_attached(st, a.id, &vs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(vs[0].name, "data");
    assert_int_equal(vs[0].state, VOL_ATTACHED); /* typed state and owning task kept */
    assert_string_equal(vs[0].task, "t-1");
    free(vs);
    assert_int_equal(store_volume_list_attached(st, "someone-else", &vs, &n), 0);
    assert_int_equal(n, 0);
    free(vs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_and_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_and_attachments, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("store (SQLite)", tests, NULL, NULL);
    pg_url = getenv("YUN_TEST_PG_URL");
    if (pg_url && *pg_url)
        failed += cmocka_run_group_tests_name("store (PostgreSQL)", tests, NULL, NULL);
    return failed;
}
