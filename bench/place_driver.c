/* place_driver.c - placement latency (bench/placement.sh): registers N
 * synthetic hosts and M VM rows in a SQLite store made by the real
 * migrations, then times ctl_place() as creates call it (the kept model:
 * sched_place, the explanation, the reservation; re-read from the store
 * every 500 ms), ctl_place() right after ctl_place_invalidate() (the store
 * read and the model built), and place_decide() building a model from rows
 * in memory for every decision. Prints p50/p99/max in ms.
 *
 *   place_driver HOSTS VMS ITERATIONS DIR [POLICY]
 */
#include "ctl/ctl.h"
#include "ctl/place.h"
#include "lib/config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof(double), cmp_d);
    printf("%-28s p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%d runs)\n", what, ms[n / 2],
           ms[(int)(n * 0.99) < n ? (int)(n * 0.99) : n - 1], ms[n - 1], n);
}

/* hosts straight into the table (their API is the join); VM rows through
 * the store, as create writes them */
static int fill(struct store *st, const char *db, int hosts, int vms)
{
    sqlite3 *s;
    if (sqlite3_open(db, &s) != SQLITE_OK)
        return -1;
    sqlite3_exec(s, "BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *h;
    sqlite3_prepare_v2(s,
                       "INSERT INTO hosts(id,name,cpus,memory,labels,state,cpu_load,joined_at,"
                       "updated_at) VALUES(?,?,?,?,?,?,?,0,0)",
                       -1, &h, NULL);
    char id[40], name[64];
    for (int i = 0; i < hosts; i++) {
        snprintf(id, sizeof(id), "00000000-0000-0000-0000-%012d", i);
        snprintf(name, sizeof(name), "node%05d", i);
        sqlite3_bind_text(h, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(h, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(h, 3, 32);
        sqlite3_bind_int64(h, 4, 128LL << 30);
        sqlite3_bind_text(h, 5, i % 10 == 0 ? "gpu=1,zone=a" : "zone=b", -1, SQLITE_STATIC);
        sqlite3_bind_text(h, 6, i % 50 == 0 ? "maintenance" : "up", -1, SQLITE_STATIC);
        sqlite3_bind_double(h, 7, (i % 7) / 10.0);
        if (sqlite3_step(h) != SQLITE_DONE) {
            fprintf(stderr, "place_driver: host row: %s\n", sqlite3_errmsg(s));
            return -1;
        }
        sqlite3_reset(h);
    }
    sqlite3_finalize(h);
    sqlite3_exec(s,
                 "INSERT INTO vm_groups(name,policy,hard,max_per_host,created_at) "
                 "VALUES('web','anti-affinity',1,0,0); COMMIT",
                 NULL, NULL, NULL);
    sqlite3_close(s);
    if (store_begin(st) != 0)
        return -1;
    for (int i = 0; i < vms; i++) {
        struct vm_rec v = {0};
        snprintf(v.id, sizeof(v.id), "10000000-0000-0000-0000-%012d", i);
        snprintf(v.name, sizeof(v.name), "vm%06d", i);
        snprintf(v.image, sizeof(v.image), "tiny");
        snprintf(v.host, sizeof(v.host), "00000000-0000-0000-0000-%012d", (i * 7919) % hosts);
        snprintf(v.group, sizeof(v.group), "%s", i % 100 == 0 ? "web" : "");
        v.cpus = 1 + i % 4;
        v.memory_mb = 512u << (i % 4);
        v.desired = i % 3 ? WANT_RUNNING : WANT_STOPPED;
        v.state = i % 3 ? VM_RUNNING : VM_STOPPED;
        if (store_vm_insert(st, &v) != 0) {
            fprintf(stderr, "place_driver: vm row: %s\n", store_errmsg(st));
            store_rollback(st);
            return -1;
        }
    }
    return store_commit(st);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: place_driver HOSTS VMS ITERATIONS DIR [POLICY]\n");
        return 2;
    }
    int hosts = atoi(argv[1]), vms = atoi(argv[2]), iters = atoi(argv[3]);
    char db[512], err[512];
    snprintf(db, sizeof(db), "%s/place-bench.db", argv[4]);
    remove(db);
    struct store *st;
    if (store_open(db, &st, err, sizeof(err)) != 0 || fill(st, db, hosts, vms) != 0) {
        fprintf(stderr, "place_driver: %s\n", err);
        return 1;
    }
    struct yun_config cfg;
    config_defaults(&cfg);
    if (argc > 5)
        snprintf(cfg.placement_policy, sizeof(cfg.placement_policy), "%s", argv[5]);
    struct ctl c;
    memset(&c, 0, sizeof(c));
    c.store = st;
    c.cfg = &cfg;
    printf("hosts %d, vm rows %d, policy %s\n", hosts, vms, cfg.placement_policy);
    double *ms = calloc((size_t)iters, sizeof(double));
    struct vm_spec spec;
    vm_spec_defaults(&spec);
    spec.cpus = 2;
    spec.memory_mb = 4096;
    spec.start = true;
    int placed = 0;
    for (int i = 0; i < iters; i++) {
        snprintf(spec.name, sizeof(spec.name), "new%d", i);
        /* every fourth asks for a label, every eighth joins the group */
        snprintf(spec.requires, sizeof(spec.requires), "%s", i % 4 == 0 ? "gpu=1" : "");
        snprintf(spec.group, sizeof(spec.group), "%s", i % 8 == 0 ? "web" : "");
        char host[37];
        struct yerr e = {0};
        double t0 = now_s();
        int rc = ctl_place(&c, &spec, "", host, NULL, &e);
        ms[i] = (now_s() - t0) * 1e3;
        placed += rc == 0;
        if (rc != 0 && i == 0)
            fprintf(stderr, "place_driver: %s\n", e.message);
    }
    report("ctl_place (kept model)", ms, iters);
    /* the model read again from the store (hosts changed, or it is old) */
    int rebuilds = iters < 20 ? iters : 20;
    for (int i = 0; i < rebuilds; i++) {
        char host[37];
        struct yerr e = {0};
        snprintf(spec.name, sizeof(spec.name), "re%d", i);
        ctl_place_invalidate(&c);
        double t0 = now_s();
        ctl_place(&c, &spec, "", host, NULL, &e);
        ms[i] = (now_s() - t0) * 1e3;
    }
    report("ctl_place (store re-read)", ms, rebuilds);
    /* the decision alone, rows in memory */
    struct place_host_row *hr;
    struct place_usage_row *ur;
    size_t nh, nu;
    if (store_place_hosts(st, &hr, &nh) != 0 || store_place_usage(st, &ur, &nu) != 0)
        return 1;
    struct place_conf conf = {.cpu_overcommit = cfg.cpu_overcommit,
                              .mem_overcommit = cfg.mem_overcommit,
                              .reserved_memory = cfg.reserved_memory};
    sched_policy_parse(cfg.placement_policy, &conf.policy);
    struct place_state ps;
    place_state_init(&ps, 7);
    struct place_want w = {.name = "x",
                           .cpus = 2,
                           .memory_mb = 4096,
                           .requires = "",
                           .host = "",
                           .charge = true,
                           .list_limit = 100};
    for (int i = 0; i < iters; i++) {
        int chosen;
        json_t *ex = NULL;
        struct yerr e;
        double t0 = now_s();
        place_decide(hr, nh, ur, nu, "", &w, &conf, &ps, &chosen, &ex, &e);
        json_decref(ex);
        ms[i] = (now_s() - t0) * 1e3;
    }
    report("place_decide (one-shot, rows)", ms, iters);
    printf("placed %d of %d\n", placed, iters);
    free(hr);
    free(ur);
    free(ms);
    ctl_place_shutdown(&c);
    store_close(st);
    if (!getenv("KEEP_DB"))
        remove(db);
    return 0;
}
