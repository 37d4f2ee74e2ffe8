/*
 * test_store_hosts.c - the hosts table (store_hosts.c): rows in and out, a
 * duplicate name, leases on the database clock and lapsed hosts, the state
 * and maintenance flag, VM counts. On SQLite, and on PostgreSQL when
 * YUN_TEST_PG_URL is set (store_backend.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "store/store.h"
#include "store_backend.h"

static int setup(void **state)
{
    return tb_open("hosts", (struct store **)state);
}

static int teardown(void **state)
{
    tb_close(*state);
    return 0;
}

static struct host_rec make_host(const char *name)
{
    struct host_rec h;
    memset(&h, 0, sizeof h);
    uuid_generate_str(h.id);
    snprintf(h.name, sizeof h.name, "%s", name);
    snprintf(h.address, sizeof h.address, "10.0.0.1");
    snprintf(h.agent_url, sizeof h.agent_url, "http://10.0.0.1:7781");
    h.cpus = 8;
    h.memory = 16ULL << 30;
    snprintf(h.accel, sizeof h.accel, "kvm");
    snprintf(h.cpu_model, sizeof h.cpu_model, "Test CPU");
    snprintf(h.cpu_flags, sizeof h.cpu_flags, "vmx sse4_2");
    snprintf(h.cpu_models, sizeof h.cpu_models, "Westmere,Nehalem,qemu64");
    snprintf(h.labels, sizeof h.labels, "gpu=1,zone=a");
    snprintf(h.state, sizeof h.state, "up");
    snprintf(h.cred_hash, sizeof h.cred_hash, "%064d", 7);
    snprintf(h.vms_dir, sizeof h.vms_dir, "/var/lib/yun/vms");
    snprintf(h.images_dir, sizeof h.images_dir, "/var/lib/yun/images");
    h.joined_at = 1000;
    h.updated_at = 1000;
    return h;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_roundtrip(void **state)
{
    struct store *st = *state;
    struct host_rec a = make_host("alpha"), b = make_host("beta"), got;
    assert_int_equal(store_host_insert(st, &b), 0);
    assert_int_equal(store_host_insert(st, &a), 0);
    assert_int_equal(store_host_get(st, "alpha", &got), 0);
    assert_string_equal(got.id, a.id);
    assert_int_equal(got.cpus, 8);
    assert_true(got.memory == 16ULL << 30);
    assert_string_equal(got.labels, "gpu=1,zone=a");
    assert_string_equal(got.cpu_flags, "vmx sse4_2");
    assert_string_equal(got.cpu_models, "Westmere,Nehalem,qemu64");
    assert_string_equal(got.agent_url, "http://10.0.0.1:7781");
    assert_int_equal(store_host_get(st, b.id, &got), 0);
    assert_string_equal(got.name, "beta");
    assert_int_equal(store_host_get(st, "gamma", &got), STORE_NOTFOUND);

    /* a name is unique */
    struct host_rec dup = make_host("alpha");
    assert_int_equal(store_host_insert(st, &dup), STORE_CONFLICT);

    struct host_rec *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_host_list(st, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].name, "alpha");
    assert_string_equal(rows[1].name, "beta");
    free(rows);

    a.cpus = 16;
    snprintf(a.address, sizeof a.address, "10.0.0.9");
    assert_int_equal(store_host_update(st, &a), 0);
    assert_int_equal(store_host_get(st, "alpha", &got), 0);
    assert_int_equal(got.cpus, 16);
    assert_string_equal(got.address, "10.0.0.9");

    assert_int_equal(store_host_delete(st, a.id), 0);
    assert_int_equal(store_host_delete(st, a.id), STORE_NOTFOUND);
    assert_int_equal(store_host_get(st, "alpha", &got), STORE_NOTFOUND);
}

static void test_lease_and_lapse(void **state)
{
    struct store *st = *state;
    struct host_rec a = make_host("alpha"), b = make_host("beta"), local = make_host("local");
    local.lease_until = 0; /* the all-in-one's own: never lapses */
    assert_int_equal(store_host_insert(st, &a), 0);
    assert_int_equal(store_host_insert(st, &b), 0);
    assert_int_equal(store_host_insert(st, &local), 0);

    int64_t now = 0, lease = 0;
    assert_int_equal(store_now_ms(st, &now), 0);
    int64_t wall = (int64_t)time(NULL) * 1000;
    assert_true(now > wall - 60000 && now < wall + 60000);

    assert_int_equal(store_host_renew(st, a.id, "run-1", 0.5, 1024, 60000, &lease), 0);
    assert_true(lease >= now + 60000 && lease < now + 70000);
    assert_int_equal(store_host_renew(st, b.id, "run-2", 1.5, 2048, 100, &lease), 0);
    assert_int_equal(store_host_renew(st, "no-such-host", "r", 0, 0, 100, &lease), STORE_NOTFOUND);

    struct host_rec got;
    assert_int_equal(store_host_get(st, "beta", &got), 0);
    assert_string_equal(got.run, "run-2");
    assert_true(got.cpu_load > 1.4 && got.cpu_load < 1.6);
    assert_true(got.mem_used == 2048);

    sleep_ms(300);
    struct host_rec *rows = NULL;
    size_t n = 0;
    assert_int_equal(store_hosts_lapsed(st, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].name, "beta");
    free(rows);

    /* down: not listed again */
    assert_int_equal(store_host_set_state(st, b.id, "down", 0), 0);
    assert_int_equal(store_hosts_lapsed(st, &rows, &n), 0);
    assert_int_equal(n, 0);
    free(rows);

    /* maintenance is kept across a lapse: the heartbeat brings it back */
    assert_int_equal(store_host_set_state(st, b.id, "down", 1), 0);
    assert_int_equal(store_host_renew(st, b.id, "run-3", 0, 0, 60000, NULL), 0);
    assert_int_equal(store_host_get(st, "beta", &got), 0);
    assert_string_equal(got.state, "maintenance");
    assert_int_equal(got.maintenance, 1);
    assert_int_equal(store_host_set_state(st, b.id, "up", 0), 0);
    assert_int_equal(store_host_renew(st, b.id, "run-3", 0, 0, 60000, NULL), 0);
    assert_int_equal(store_host_get(st, "beta", &got), 0);
    assert_string_equal(got.state, "up");
    assert_int_equal(store_host_set_state(st, "nope", "up", 0), STORE_NOTFOUND);
}

static void test_vm_count(void **state)
{
    struct store *st = *state;
    struct host_rec a = make_host("alpha");
    assert_int_equal(store_host_insert(st, &a), 0);
    struct vm_rec v;
    memset(&v, 0, sizeof v);
    uuid_generate_str(v.id);
    snprintf(v.name, sizeof v.name, "web1");
    snprintf(v.image, sizeof v.image, "tiny");
    v.cpus = 1;
    v.memory_mb = 128;
    v.state = VM_STOPPED;
    snprintf(v.host, sizeof v.host, "%s", a.id);
    int count = -1;
    assert_int_equal(store_host_vm_count(st, a.id, &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(store_vm_insert(st, &v), 0);
    assert_int_equal(store_host_vm_count(st, a.id, &count), 0);
    assert_int_equal(count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_and_lapse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vm_count, setup, teardown),
    };
    return TB_RUN_GROUPS(tests);
}
