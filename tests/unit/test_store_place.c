/* test_store_place.c - placement's store reads on SQLite and PostgreSQL:
 * the hosts' compact rows, the allocation summed per (host, group) with
 * only the rows that hold resources charged (their memory floors too), and
 * the vm_groups table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "store/store_place.h"
#include "store_backend.h"

static int setup(void **state)
{
    return tb_open("place", (struct store **)state);
}

static int teardown(void **state)
{
    tb_close(*state);
    return 0;
}

static uint64_t vm_min_mb; /* the next vm()'s memory_min_mb */

static void vm(struct store *st, const char *name, const char *host, const char *grp, int cpus,
               enum vm_desired d, enum vm_state s)
{
    struct vm_rec v;
    memset(&v, 0, sizeof(v));
    uuid_generate_str(v.id);
    snprintf(v.name, sizeof(v.name), "%s", name);
    snprintf(v.image, sizeof(v.image), "tiny");
    snprintf(v.host, sizeof(v.host), "%s", host);
    snprintf(v.group, sizeof(v.group), "%s", grp);
    v.cpus = cpus;
    v.memory_mb = 256u * (unsigned)cpus;
    v.memory_min_mb = vm_min_mb;
    vm_min_mb = 0;
    v.desired = d;
    v.state = s;
    assert_int_equal(store_vm_insert(st, &v), 0);
}

/* the rows of (host, grp) summed; vms -1 when there are none */
static struct place_usage_row sum(const struct place_usage_row *u, size_t n, const char *host,
                                  const char *grp)
{
    struct place_usage_row r = {.vms = -1};
    for (size_t i = 0; i < n; i++) {
        if (strcmp(u[i].host, host) || strcmp(u[i].group, grp))
            continue;
        r.vms += u[i].vms + (r.vms < 0);
        r.cpus += u[i].cpus;
        r.memory_mb += u[i].memory_mb;
        r.floor_mb += u[i].floor_mb;
    }
    return r;
}

static void test_hosts_and_usage(void **state)
{
    struct store *st = *state;
    struct db *db;
    char err[256];
    assert_int_equal(db_open(tb_spec(), &db, err, sizeof(err)), 0);
    assert_int_equal(
        db_exec(db, "INSERT INTO hosts(id,name,cpus,memory,labels,state,cpu_load,joined_at,"
                    "updated_at) VALUES('h-2','node-b',8,17179869184,'gpu=1','maintenance',0.5,0,"
                    "0),('h-1','node-a',4,8589934592,'','up',0.25,0,0)"),
        0);
    db_close(db);
    struct place_host_row *h;
    size_t nh;
    assert_int_equal(store_place_hosts(st, &h, &nh), 0);
    assert_int_equal(nh, 2);
    assert_string_equal(h[0].name, "node-a"); /* by name */
    assert_int_equal(h[1].cpus, 8);
    assert_true(h[1].memory == 16ULL << 30);
    assert_string_equal(h[1].labels, "gpu=1");
    assert_string_equal(h[1].state, "maintenance");
    assert_true(h[0].cpu_load > 0.24 && h[0].cpu_load < 0.26);
    free(h);

    vm_min_mb = 128; /* its floor */
    vm(st, "run", "h-1", "", 2, WANT_RUNNING, VM_RUNNING);
    vm_min_mb = 64;
    vm(st, "stopped", "h-1", "", 4, WANT_STOPPED, VM_STOPPED);      /* holds nothing */
    vm(st, "creating", "h-1", "web", 1, WANT_STOPPED, VM_CREATING); /* the reservation */
    vm_min_mb = 768;                                            /* at its size: no floor below it */
    vm(st, "wants", "h-2", "web", 3, WANT_RUNNING, VM_STOPPED); /* about to start */
    vm(st, "web2", "h-2", "web", 1, WANT_STOPPED, VM_STOPPED);
    vm(st, "local", "", "", 1, WANT_RUNNING, VM_STARTING);
    struct place_usage_row *u;
    size_t nu;
    assert_int_equal(store_place_usage(st, &u, &nu), 0);
    struct place_usage_row r = sum(u, nu, "h-1", "");
    assert_int_equal(r.vms, 2);
    assert_int_equal(r.cpus, 2);
    assert_int_equal(r.memory_mb, 512);
    assert_int_equal(r.floor_mb, 128); /* run's memory_min; stopped holds none */
    r = sum(u, nu, "h-1", "web");
    assert_int_equal(r.vms, 1);
    assert_int_equal(r.cpus, 1);
    assert_int_equal(r.floor_mb, 256); /* no memory_min: all of it */
    r = sum(u, nu, "h-2", "web");
    assert_int_equal(r.vms, 2);
    assert_int_equal(r.cpus, 3);
    assert_int_equal(r.memory_mb, 768);
    assert_int_equal(r.floor_mb, 768);
    r = sum(u, nu, "", "");
    assert_int_equal(r.vms, 1);
    assert_int_equal(r.cpus, 1);
    assert_int_equal(sum(u, nu, "h-2", "").vms, -1);
    free(u);
}

static void test_groups(void **state)
{
    struct store *st = *state;
    struct group_rec g = {
        .name = "web", .policy = "anti-affinity", .hard = 1, .max_per_host = 2, .created_at = 5};
    assert_int_equal(store_group_insert(st, &g), 0);
    assert_int_equal(store_group_insert(st, &g), STORE_CONFLICT);
    struct group_rec a = {.name = "db", .policy = "affinity", .hard = 0};
    assert_int_equal(store_group_insert(st, &a), 0);
    struct group_rec got;
    assert_int_equal(store_group_get(st, "web", &got), 0);
    assert_string_equal(got.policy, "anti-affinity");
    assert_int_equal(got.hard, 1);
    assert_int_equal(got.max_per_host, 2);
    assert_true(got.created_at == 5);
    assert_int_equal(store_group_get(st, "nope", &got), STORE_NOTFOUND);
    struct group_rec *gs;
    size_t n;
    assert_int_equal(store_group_list(st, &gs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(gs[0].name, "db");
    free(gs);
    vm(st, "w1", "h", "web", 1, WANT_STOPPED, VM_STOPPED);
    int members = -1;
    assert_int_equal(store_group_members(st, "web", &members), 0);
    assert_int_equal(members, 1);
    assert_int_equal(store_group_delete(st, "db"), 0);
    assert_int_equal(store_group_delete(st, "db"), STORE_NOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hosts_and_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
    };
    return TB_RUN_GROUPS(tests);
}
