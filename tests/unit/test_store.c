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
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"
#include "store/store.h"
#include "store/store_mig.h"
#include "store_backend.h"

static int setup(void **state)
{
    return tb_open("store", (struct store **)state);
}

static int teardown(void **state)
{
    tb_close(*state);
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
    assert_int_equal(store_schema_version(*state), 15);
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
    /* the memory policy (schema 14) round-trips, -1 (host default) too */
    a.memory_min_mb = 128;
    a.memory_swap_mb = -1;
    a.memory_high_mb = 200;
    a.memory_lock = 1;
    a.no_merge = 1;
    snprintf(a.cpu_model, sizeof a.cpu_model, "Westmere"); /* schema 15 */
    assert_int_equal(store_vm_update(st, &a), 0);
    assert_int_equal(store_vm_get(st, "alpha", &got), 0);
    assert_int_equal(got.state, VM_RUNNING);
    assert_int_equal(got.pid, 4242);
    assert_true(got.memory_min_mb == 128 && got.memory_swap_mb == -1 && got.memory_high_mb == 200);
    assert_true(got.memory_lock == 1 && got.no_merge == 1);
    assert_string_equal(got.cpu_model, "Westmere");

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

/* Pages by name: each page's last name as the next `after` walks every row
 * once, in the order of the whole list; the key columns agree with it. */
static void test_vm_pages(void **state)
{
    struct store *st = *state;
    const char *names[] = {"m3", "m0", "m4", "m1", "m2"};
    char host[37];
    uuid_generate_str(host);
    for (size_t i = 0; i < 5; i++) {
        struct vm_rec v = make_vm(names[i]);
        if (i % 2)
            snprintf(v.host, sizeof v.host, "%s", host);
        v.state = i == 4 ? VM_RUNNING : VM_STOPPED;
        assert_int_equal(store_vm_insert(st, &v), 0);
    }
    struct vm_rec *all, *pg;
    size_t nall, n;
    assert_int_equal(store_vm_list(st, &all, &nall), 0);
    assert_int_equal(nall, 5);
    char after[64] = "";
    size_t seen = 0, npages = 0;
    do {
        assert_int_equal(store_vm_list_page(st, after, 2, &pg, &n), 0);
        assert_true(n <= 2);
        for (size_t i = 0; i < n; i++) {
            assert_true(seen < nall);
            assert_memory_equal(&pg[i], &all[seen], sizeof pg[i]);
            seen++;
        }
        if (n)
            snprintf(after, sizeof after, "%s", pg[n - 1].name);
        free(pg);
        npages++;
    } while (n == 2);
    assert_int_equal(seen, 5);
    assert_int_equal(npages, 3);
    /* NULL starts at the first; limit 0 reads nothing; past the end, none */
    assert_int_equal(store_vm_list_page(st, NULL, 1, &pg, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pg[0].name, "m0");
    free(pg);
    assert_int_equal(store_vm_list_page(st, "m0", 0, &pg, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_vm_list_page(st, "m4", 10, &pg, &n), 0);
    assert_int_equal(n, 0);
    free(pg);
    /* a name between rows */
    assert_int_equal(store_vm_list_page(st, "m1a", 10, &pg, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(pg[0].name, "m2");
    free(pg);
    /* the key columns, in the same order */
    struct vm_key *keys;
    assert_int_equal(store_vm_keys(st, &keys, &n), 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(keys[i].id, all[i].id);
        assert_string_equal(keys[i].host, all[i].host);
        assert_int_equal(keys[i].state, all[i].state);
    }
    free(keys);
    /* one host's rows: m0 and m1 (inserted second and fourth) */
    assert_int_equal(store_vm_list_host(st, host, &pg, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(pg[0].name, "m0");
    assert_string_equal(pg[1].name, "m1");
    free(pg);
    free(all);
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
    snprintf(a.cpu_pin, sizeof a.cpu_pin, "0:0,1:1-2");
    snprintf(a.emulator_pin, sizeof a.emulator_pin, "3");
    assert_int_equal(store_vm_insert(st, &a), 0);
    store_close(st);
    char err[256];
    assert_int_equal(store_open(tb_spec(), &st, err, sizeof(err)), 0);
    *state = st;
    struct vm_rec got;
    assert_int_equal(store_vm_get(st, "durable", &got), 0);
    assert_string_equal(got.cpu_pin, "0:0,1:1-2");
    assert_string_equal(got.emulator_pin, "3");
    assert_int_equal(store_schema_version(st), 15);
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

static struct task_rec make_task(const char *obj, int64_t created, enum task_state state)
{
    struct task_rec t;
    memset(&t, 0, sizeof(t));
    uuid_generate_str(t.id);
    snprintf(t.kind, sizeof(t.kind), "volume.clone");
    snprintf(t.object_type, sizeof(t.object_type), "volume");
    snprintf(t.object_id, sizeof(t.object_id), "%s", obj);
    snprintf(t.object_name, sizeof(t.object_name), "n-%s", obj);
    t.state = state;
    t.created_at = created;
    return t;
}

/* Task rows: NULL text round trips, the active task, list order (ties on
 * created_at in insertion order) and filters, prefix lookup, pruning. */
static void test_tasks_rows(void **state)
{
    struct store *st = *state;
    struct task_rec a = make_task("o1", 100, TASK_SUCCEEDED),
                    b = make_task("o2", 100, TASK_RUNNING), c = make_task("o3", 50, TASK_FAILED),
                    got;
    a.result = "{\"ok\":true}";
    a.done = 1ULL << 40;
    a.pid_start = 123456789012ULL;
    c.error_code = YE_DISK_ERROR;
    snprintf(c.error_message, sizeof(c.error_message), "it's broken");
    assert_int_equal(store_task_insert(st, &a), 0);
    assert_int_equal(store_task_insert(st, &b), 0);
    assert_int_equal(store_task_insert(st, &c), 0);
    assert_int_equal(store_task_insert(st, &c), STORE_CONFLICT);
    assert_int_equal(store_task_get(st, a.id, &got), 0);
    assert_string_equal(got.result, "{\"ok\":true}");
    assert_null(got.params);
    assert_true(got.done == 1ULL << 40 && got.pid_start == 123456789012ULL);
    task_rec_clear(&got);
    char pre[9];
    snprintf(pre, sizeof(pre), "%.8s", c.id);
    assert_int_equal(store_task_get(st, pre, &got), 0);
    assert_int_equal(got.error_code, YE_DISK_ERROR);
    assert_string_equal(got.error_message, "it's broken");
    task_rec_clear(&got);
    assert_int_equal(store_task_active(st, "o2", &got), 0);
    assert_string_equal(got.id, b.id);
    task_rec_clear(&got);
    assert_int_equal(store_task_active(st, "o1", &got), STORE_NOTFOUND);
    struct task_filter f = {.state = -1};
    struct task_rec *rows;
    size_t n;
    assert_int_equal(store_task_list(st, &f, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, b.id); /* a tie on created_at: the later insert first */
    assert_string_equal(rows[1].id, a.id);
    assert_string_equal(rows[2].id, c.id);
    store_task_rows_free(rows, n);
    f.unfinished = true;
    assert_int_equal(store_task_list(st, &f, &rows, &n), 0);
    assert_int_equal(n, 1);
    store_task_rows_free(rows, n);
    f = (struct task_filter){.state = TASK_FAILED, .object = "n-o3"};
    assert_int_equal(store_task_list(st, &f, &rows, &n), 0);
    assert_int_equal(n, 1);
    store_task_rows_free(rows, n);
    b.state = TASK_SUCCEEDED;
    b.params = "{\"p\":1}";
    assert_int_equal(store_task_update(st, &b), 0);
    /* keep the newest two finished ones (a and b, at 100): c goes */
    assert_int_equal(store_task_prune(st, 2), 1);
    assert_int_equal(store_task_get(st, b.id, &got), 0);
    assert_string_equal(got.params, "{\"p\":1}");
    task_rec_clear(&got);
    assert_int_equal(store_task_get(st, c.id, &got), STORE_NOTFOUND);
    assert_int_equal(store_task_prune(st, 0), 2);
}

/* Alerts, rules and metric rollups (the upsert and the compaction). */
static void test_monitor_rows(void **state)
{
    struct store *st = *state;
    assert_int_equal(store_rule_insert(st, "r-1", "hot", "{\"m\":\"cpu\"}", 5), 0);
    assert_int_equal(store_rule_insert(st, "r-2", "hot", "{}", 5), STORE_CONFLICT);
    assert_int_equal(store_rule_silence(st, "hot", 99), 0);
    assert_int_equal(store_rule_silence(st, "cold", 99), STORE_NOTFOUND);
    struct rule_row *rules;
    size_t n;
    assert_int_equal(store_rule_list(st, &rules, &n), 0);
    assert_int_equal(n, 1);
    assert_true(rules[0].silenced_until == 99);
    assert_string_equal(rules[0].spec, "{\"m\":\"cpu\"}");
    store_rule_rows_free(rules, n);
    assert_int_equal(store_rule_delete(st, "r-1"), 0);

    struct alert_row a = {0};
    snprintf(a.rule, sizeof(a.rule), "hot");
    snprintf(a.object, sizeof(a.object), "vm/x");
    snprintf(a.state, sizeof(a.state), "firing");
    snprintf(a.severity, sizeof(a.severity), "warning");
    a.value = 0.1;
    assert_int_equal(store_alert_save(st, &a), 0);
    int64_t first = a.id;
    assert_true(first > 0);
    a.id = 0;
    assert_int_equal(store_alert_save(st, &a), 0);
    assert_true(a.id == first + 1);
    snprintf(a.state, sizeof(a.state), "resolved");
    a.notifications = 3;
    assert_int_equal(store_alert_save(st, &a), 0);
    struct alert_row *al;
    assert_int_equal(store_alert_list(st, "firing", 10, &al, &n), 0);
    assert_int_equal(n, 1);
    assert_true(al[0].id == first && al[0].value == 0.1);
    free(al);
    assert_int_equal(store_alert_list(st, NULL, 10, &al, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(al[0].notifications, 3);
    free(al);

    /* 1-minute rows; a rewrite of a slot replaces it */
    assert_int_equal(store_rollup_add(st, "vm/x", "cpu", 60, 0, 1, 0.5, 2), 0);
    assert_int_equal(store_rollup_add(st, "vm/x", "cpu", 60, 60000, 3, 1, 4), 0);
    assert_int_equal(store_rollup_add(st, "vm/x", "cpu", 60, 60000, 5, 1, 6), 0);
    struct rollup_row *r;
    assert_int_equal(store_rollup_query(st, "vm/x", "cpu", 60, 0, &r, &n), 0);
    assert_int_equal(n, 2);
    assert_true(r[1].avg == 5 && r[1].max == 6);
    free(r);
    assert_int_equal(store_rollup_compact(st, 60, 3600, 0), 0);
    assert_int_equal(store_rollup_compact(st, 60, 3600, 0), 0); /* again: replaced */
    assert_int_equal(store_rollup_query(st, "vm/x", "cpu", 3600, 0, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_true(r[0].avg == 3 && r[0].min == 0.5 && r[0].max == 6);
    free(r);
    assert_int_equal(store_rollup_prune(st, 60, 60000), 0);
    assert_int_equal(store_rollup_query(st, "vm/x", "cpu", 60, 0, &r, &n), 0);
    assert_int_equal(n, 1);
    free(r);
}

/* Capacity totals count only VMs whose state has a QEMU; volumes' clones. */
static void test_totals_and_dependents(void **state)
{
    struct store *st = *state;
    struct vm_rec a = make_vm("a"), b = make_vm("b");
    a.state = VM_RUNNING;
    a.memory_mb = 1ULL << 33; /* beyond 32 bits */
    assert_int_equal(store_vm_insert(st, &a), 0);
    assert_int_equal(store_vm_insert(st, &b), 0);
    struct vm_totals t;
    assert_int_equal(store_vm_totals(st, &t), 0);
    assert_int_equal(t.vms, 2);
    assert_int_equal(t.running, 1);
    assert_int_equal(t.cpus, 2);
    assert_true(t.memory_mb == 1ULL << 33);
    struct volume_rec v = {0}, w = {0}, g;
    uuid_generate_str(v.id);
    snprintf(v.name, sizeof(v.name), "base");
    v.state = VOL_READY;
    uuid_generate_str(w.id);
    snprintf(w.name, sizeof(w.name), "clone");
    snprintf(w.backing, sizeof(w.backing), "base");
    assert_int_equal(store_volume_insert(st, &v), 0);
    assert_int_equal(store_volume_insert(st, &w), 0);
    int deps = -1;
    assert_int_equal(store_volume_dependents(st, "base", &deps), 0);
    assert_int_equal(deps, 1);
    w.virtual_size = 1ULL << 40;
    assert_int_equal(store_volume_update(st, &w), 0);
    assert_int_equal(store_volume_get(st, w.id, &g), 0);
    assert_true(g.virtual_size == 1ULL << 40);
    assert_int_equal(store_volume_delete(st, w.id), 0);
    assert_int_equal(store_volume_delete(st, w.id), STORE_NOTFOUND);
}

/* A second store on the same database while the first is open (two yunds
 * of a cluster; a restart racing an old process): neither migrates twice.
 * A database newer than this binary is refused. */
static void test_second_open_and_newer_schema(void **state)
{
    struct store *st = *state, *other;
    char err[256];
    assert_int_equal(store_open(tb_spec(), &other, err, sizeof(err)), 0);
    assert_int_equal(store_schema_version(other), 15);
    struct vm_rec a = make_vm("shared");
    assert_int_equal(store_vm_insert(other, &a), 0);
    struct vm_rec got;
    assert_int_equal(store_vm_get(st, "shared", &got), 0);
    store_close(other);
    /* a later yund moved the schema on */
    struct db *db;
    assert_int_equal(db_open(tb_spec(), &db, err, sizeof(err)), 0);
    assert_int_equal(db_begin(db), 0);
    int v;
    assert_int_equal(db_schema_lock(db, &v), 0);
    assert_int_equal(v, 15);
    assert_int_equal(db_schema_set(db, 99), 0);
    assert_int_equal(db_commit(db), 0);
    db_close(db);
    assert_int_equal(store_open(tb_spec(), &other, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "newer than this yund knows"));
}

static int setup_empty(void **state)
{
    return tb_fresh("store");
}

static int teardown_empty(void **state)
{
    tb_cleanup();
    return 0;
}

/* Several processes open one empty PostgreSQL database at the same moment
 * (controllers of a cluster): the migrations run once (a second CREATE
 * TABLE would fail its opener) and every opener ends on version 7. On
 * SQLite one yund per state directory holds the file (the state-dir lock),
 * so there is nothing to race. */
static void test_concurrent_migration(void **state)
{
    enum { N = 4 };
    if (!tb_pg_url)
        skip();
    pid_t kids[N];
    int go[2];
    assert_int_equal(pipe(go), 0);
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            char c, err[256];
            close(go[1]);
            if (read(go[0], &c, 1) < 0) /* all start together: EOF when the parent closes */
                _exit(3);
            struct store *st;
            if (store_open(tb_spec(), &st, err, sizeof(err)) != 0) {
                fprintf(stderr, "child %d: %s\n", i, err);
                _exit(1);
            }
            int v = store_schema_version(st);
            store_close(st);
            _exit(v == 15 ? 0 : 2);
        }
    }
    close(go[0]);
    close(go[1]);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int status = 0;
        if (waitpid(kids[i], &status, 0) != kids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            bad++;
    }
    assert_int_equal(bad, 0);
}

/* Schema 10: an image's checksums and the hosts' verified copies. */
static void test_host_images(void **state)
{
    struct store *st = *state;
    struct image_rec m = {0};
    uuid_generate_str(m.id);
    snprintf(m.name, sizeof m.name, "tiny");
    snprintf(m.format, sizeof m.format, "qcow2");
    snprintf(m.path, sizeof m.path, "/lib/tiny/disk.qcow2");
    assert_int_equal(store_image_insert(st, &m), 0);
    struct image_rec got;
    assert_int_equal(store_image_get(st, "tiny", &got), 0);
    assert_string_equal(got.sha256, "");
    assert_int_equal(store_image_set_sha256(st, m.id, "aa - bb"), 0);
    assert_int_equal(store_image_get(st, m.id, &got), 0);
    assert_string_equal(got.sha256, "aa - bb");

    struct host_image_rec h = {.bytes = 10, .fetched_at = 5}, out;
    snprintf(h.host, sizeof h.host, "host-1");
    snprintf(h.image, sizeof h.image, "%s", m.id);
    snprintf(h.name, sizeof h.name, "tiny");
    snprintf(h.sha256, sizeof h.sha256, "aa - bb");
    assert_int_equal(store_host_image_get(st, "host-1", m.id, &out), STORE_NOTFOUND);
    assert_int_equal(store_host_image_put(st, &h), 0);
    h.bytes = 20; /* a fetch again: the row is replaced, not doubled */
    assert_int_equal(store_host_image_put(st, &h), 0);
    snprintf(h.host, sizeof h.host, "host-2");
    assert_int_equal(store_host_image_put(st, &h), 0);
    assert_int_equal(store_host_image_get(st, "host-1", m.id, &out), 0);
    assert_int_equal(out.bytes, 20);
    assert_string_equal(out.name, "tiny");
    assert_string_equal(out.sha256, "aa - bb");
    assert_int_equal(store_host_image_get(st, "host-1", "other", &out), STORE_NOTFOUND);
    struct host_image_rec *rows;
    size_t n;
    assert_int_equal(store_host_image_list(st, m.id, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].host, "host-1");
    assert_string_equal(rows[1].host, "host-2");
    free(rows);
    assert_int_equal(store_host_image_delete(st, "host-1", m.id), 0);
    assert_int_equal(store_host_image_list(st, m.id, &rows, &n), 0);
    assert_int_equal(n, 1);
    free(rows);
}

/* The migrations table (store_mig.h): a row written phase by phase, found
 * open by its VM and by its task until it is done or rolled back. */
/* HA: pools by name (a name or a path taken is a conflict), a VM's pool,
 * ha and ha_from survive a write and a read. */
static void test_pools_and_ha_columns(void **state)
{
    struct store *st = *state;
    struct pool_rec p = {.name = "nfs1", .path = "/mnt/nfs1", .shared = 1, .created_at = 5};
    assert_int_equal(store_pool_insert(st, &p), 0);
    struct pool_rec q = {.name = "nfs1", .path = "/mnt/other", .created_at = 6};
    assert_int_equal(store_pool_insert(st, &q), STORE_CONFLICT);
    snprintf(q.name, sizeof q.name, "nfs2");
    snprintf(q.path, sizeof q.path, "/mnt/nfs1");
    assert_int_equal(store_pool_insert(st, &q), STORE_CONFLICT);
    struct pool_rec got;
    assert_int_equal(store_pool_get(st, "nfs1", &got), 0);
    assert_string_equal(got.path, "/mnt/nfs1");
    assert_int_equal(got.shared, 1);
    assert_int_equal(store_pool_get(st, "nope", &got), STORE_NOTFOUND);
    struct vm_rec v = make_vm("hav"), r;
    snprintf(v.pool, sizeof v.pool, "nfs1");
    v.ha = 1;
    assert_int_equal(store_vm_insert(st, &v), 0);
    int users = 0;
    assert_int_equal(store_pool_users(st, "nfs1", &users), 0);
    assert_int_equal(users, 1);
    assert_int_equal(store_vm_get(st, "hav", &r), 0);
    assert_string_equal(r.pool, "nfs1");
    assert_int_equal(r.ha, 1);
    assert_string_equal(r.ha_from, "");
    snprintf(v.ha_from, sizeof v.ha_from, "host-a");
    assert_int_equal(store_vm_update(st, &v), 0);
    assert_int_equal(store_vm_get(st, "hav", &r), 0);
    assert_string_equal(r.ha_from, "host-a");
    struct pool_rec *all = NULL;
    size_t n = 0;
    assert_int_equal(store_pool_list(st, &all, &n), 0);
    assert_int_equal(n, 1);
    free(all);
    assert_int_equal(store_pool_delete(st, "nfs1"), 0);
    assert_int_equal(store_pool_delete(st, "nfs1"), STORE_NOTFOUND);
}

static void test_migration_rows(void **state)
{
    struct store *st = *state;
    struct migration_rec m = {0}, got, *rows;
    size_t n;
    uuid_generate_str(m.id);
    uuid_generate_str(m.vm_id);
    uuid_generate_str(m.task);
    snprintf(m.vm_name, sizeof m.vm_name, "mover");
    snprintf(m.source, sizeof m.source, "host-1");
    snprintf(m.target, sizeof m.target, "host-2");
    snprintf(m.owner, sizeof m.owner, "host-1");
    snprintf(m.phase, sizeof m.phase, "prepared");
    snprintf(m.ports, sizeof m.ports, "{\"source_pid\":7}");
    snprintf(m.options, sizeof m.options, "{\"to\":\"host-2\"}");
    m.started_at = m.updated_at = 1000;
    assert_int_equal(store_migration_insert(st, &m), 0);
    assert_int_equal(store_migration_insert(st, &m), STORE_CONFLICT);
    assert_int_equal(store_migration_open_for(st, m.vm_id, &got), 0);
    assert_string_equal(got.phase, "prepared");
    assert_string_equal(got.ports, "{\"source_pid\":7}");
    assert_int_equal(store_migration_list_open(st, &rows, &n), 0);
    assert_int_equal(n, 1);
    free(rows);
    snprintf(m.phase, sizeof m.phase, "committed");
    snprintf(m.owner, sizeof m.owner, "host-2");
    m.target_pid = 4242;
    m.target_uid = 60001;
    assert_int_equal(store_migration_update(st, &m), 0);
    assert_int_equal(store_migration_by_task(st, m.task, &got), 0);
    assert_string_equal(got.owner, "host-2");
    assert_int_equal(got.target_pid, 4242);
    assert_int_equal(got.target_uid, 60001);
    snprintf(m.phase, sizeof m.phase, "done");
    snprintf(m.outcome, sizeof m.outcome, "{\"total_ms\":5}");
    assert_int_equal(store_migration_update(st, &m), 0);
    assert_int_equal(store_migration_open_for(st, m.vm_id, &got), STORE_NOTFOUND);
    assert_int_equal(store_migration_list_open(st, &rows, &n), 0);
    assert_int_equal(n, 0);
    free(rows);
    assert_int_equal(store_migration_get(st, m.id, &got), 0);
    assert_string_equal(got.outcome, "{\"total_ms\":5}");
    assert_int_equal(store_migration_get(st, "no-such-id", &got), STORE_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images_and_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pools_and_ha_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_and_attachments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monitor_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_totals_and_dependents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_and_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_migration, setup_empty, teardown_empty),
    };
    return TB_RUN_GROUPS(tests);
}
