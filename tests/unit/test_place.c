/* test_place.c - placement's pure part (ctl/place_model.c) on synthetic
 * host and allocation rows: capacity with overcommit and reserved memory,
 * charged vs could-ever-fit, host state, labels, groups (hard and soft,
 * max per host), host_max_vms, a forced host, the policies' choices, the
 * no-valid-host message counting reasons and the explanation's verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/place.h"
#include "lib/config.h"
#include "sched/cpu_models.h"

#define GIB (1ULL << 30)

static struct place_host_row H[8];
static struct place_usage_row U[16];
static size_t nh, nu;
static struct place_state ps;
static struct place_conf conf;

static void reset(void)
{
    memset(H, 0, sizeof(H));
    memset(U, 0, sizeof(U));
    nh = nu = 0;
    place_state_init(&ps, 1);
    conf = (struct place_conf){.policy = SCHED_POL_SPREAD,
                               .cpu_overcommit = 1.0,
                               .mem_overcommit = 1.0,
                               .reserved_memory = 0};
}

static void host(const char *name, int cpus, uint64_t mem, const char *state, const char *labels)
{
    struct place_host_row *h = &H[nh++];
    snprintf(h->id, sizeof(h->id), "id-%s", name);
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->cpus = cpus;
    h->memory = mem;
    snprintf(h->state, sizeof(h->state), "%s", state);
    snprintf(h->labels, sizeof(h->labels), "%s", labels);
}

static const char *ugroup = "web"; /* the group use()'s members are in */

/* a host's rows: vms in all, members of them in ugroup */
static void use(const char *id, int vms, int cpus, uint64_t mem_mb, int members)
{
    struct place_usage_row *u = &U[nu++];
    snprintf(u->host, sizeof(u->host), "%s", id);
    u->vms = vms - members;
    u->cpus = cpus;
    u->memory_mb = mem_mb;
    if (members) {
        u = &U[nu++];
        snprintf(u->host, sizeof(u->host), "%s", id);
        snprintf(u->group, sizeof(u->group), "%s", ugroup);
        u->vms = members;
    }
}

static struct place_want want(int cpus, uint64_t mem_mb)
{
    return (struct place_want){.name = "vm1",
                               .cpus = cpus,
                               .memory_mb = mem_mb,
                               .requires = "",
                               .host = "",
                               .charge = true};
}

/* the chosen host's name, or the error message */
static const char *decide(const struct place_want *w, struct yerr *err, json_t **ex)
{
    static char out[600];
    int chosen = -1;
    memset(err, 0, sizeof(*err));
    json_t *e = NULL;
    int rc = place_decide(H, nh, U, nu, "", w, &conf, &ps, &chosen, &e, err);
    if (rc == 0) {
        assert_true(chosen >= 0 && (size_t)chosen < nh);
        snprintf(out, sizeof(out), "%s", H[chosen].name);
    } else {
        assert_int_equal(chosen, -1);
        snprintf(out, sizeof(out), "%s", err->message);
    }
    if (ex)
        *ex = e;
    else
        json_decref(e);
    return out;
}

static json_t *verdict_of(json_t *ex, const char *name)
{
    size_t i;
    json_t *h;
    json_array_foreach(
        json_object_get(ex, "hosts"), i,
        h) if (!strcmp(json_string_value(json_object_get(h, "name")), name)) return h;
    return NULL;
}

static void test_capacity_and_message(void **st)
{
    reset();
    host("a", 4, 8 * GIB, "up", "");
    host("b", 4, 4 * GIB, "up", "");
    host("c", 16, 64 * GIB, "maintenance", "");
    use("id-a", 2, 2, 4096, 0);
    struct yerr err;
    struct place_want w = want(1, 8192);
    json_t *ex;
    const char *r = decide(&w, &err, &ex);
    assert_int_equal(err.code, YE_CONFLICT);
    assert_string_equal(r, "no valid host: 3 hosts: 1 in maintenance, 2 without 8 GiB free memory");
    json_t *va = verdict_of(ex, "a");
    assert_string_equal(json_string_value(json_object_get(va, "filter")), "ram");
    assert_string_equal(json_string_value(json_object_get(va, "detail")),
                        "needs 8192 MiB memory, 4096 of 8192 MiB free");
    assert_string_equal(json_string_value(json_object_get(verdict_of(ex, "c"), "filter")),
                        "host-state");
    assert_true(json_is_null(json_object_get(ex, "chosen")));
    json_decref(ex);
    /* not started: it only has to fit ever, so host a (8 GiB) takes it */
    w.charge = false;
    assert_string_equal(decide(&w, &err, NULL), "a");
    /* reserved memory comes off every host; memory overcommit multiplies */
    conf.reserved_memory = 1 * GIB;
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 3 hosts: 1 in maintenance, 2 below 8 GiB memory");
    conf.mem_overcommit = 2.0;
    assert_string_equal(decide(&w, &err, NULL), "a");
    /* vCPUs: cpus x cpu_overcommit */
    w = want(5, 256);
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 3 hosts: 1 in maintenance, 2 without 5 vCPUs free");
    conf.cpu_overcommit = 2.0;
    assert_string_equal(decide(&w, &err, NULL), "b"); /* a holds 2 of 8, b 0 of 8: spread */
}

static void test_policies(void **st)
{
    reset();
    host("a", 8, 16 * GIB, "up", "");
    host("b", 8, 16 * GIB, "up", "");
    host("c", 8, 16 * GIB, "up", "");
    use("id-a", 3, 6, 1024, 0);
    use("id-b", 1, 2, 1024, 0);
    struct yerr err;
    struct place_want w = want(1, 512);
    conf.policy = SCHED_POL_SPREAD;
    assert_string_equal(decide(&w, &err, NULL), "c");
    conf.policy = SCHED_POL_PACK;
    assert_string_equal(decide(&w, &err, NULL), "a");
    conf.policy = SCHED_POL_FIRST_FIT;
    assert_string_equal(decide(&w, &err, NULL), "a");
    conf.policy = SCHED_POL_ROUND_ROBIN;
    assert_string_equal(decide(&w, &err, NULL), "a");
    assert_string_equal(decide(&w, &err, NULL), "b");
    assert_string_equal(decide(&w, &err, NULL), "c");
    assert_string_equal(decide(&w, &err, NULL), "a");
    /* load-aware: the heartbeats' cpu_load, not the allocation */
    conf.policy = SCHED_POL_LOAD_AWARE;
    H[0].cpu_load = 0.1;
    H[1].cpu_load = 0.9;
    H[2].cpu_load = 0.5;
    assert_string_equal(decide(&w, &err, NULL), "a");
    conf.policy = SCHED_POL_POWER_AWARE;
    assert_int_equal(err.code, YE_NONE);
    decide(&w, &err, NULL);
    assert_int_equal(err.code, YE_NONE);
    /* random: seeded, so the same seed gives the same sequence */
    conf.policy = SCHED_POL_RANDOM;
    char seq1[64] = "", seq2[64] = "";
    place_state_init(&ps, 42);
    for (int i = 0; i < 8; i++)
        strcat(seq1, decide(&w, &err, NULL));
    place_state_init(&ps, 42);
    for (int i = 0; i < 8; i++)
        strcat(seq2, decide(&w, &err, NULL));
    assert_string_equal(seq1, seq2);
}

static void test_labels_state_max_vms_forced(void **st)
{
    reset();
    host("a", 4, 8 * GIB, "up", "zone=a");
    host("b", 4, 8 * GIB, "up", "zone=b,gpu=1");
    host("c", 4, 8 * GIB, "down", "gpu=1");
    use("id-b", 5, 1, 256, 0);
    struct yerr err;
    struct place_want w = want(1, 256);
    w.requires = "gpu=1";
    assert_string_equal(decide(&w, &err, NULL), "b");
    w.requires = "gpu=1,zone=a";
    json_t *ex;
    assert_string_equal(decide(&w, &err, &ex),
                        "no valid host: 3 hosts: 1 down, 2 without labels gpu=1,zone=a");
    assert_string_equal(json_string_value(json_object_get(verdict_of(ex, "a"), "detail")),
                        "lacks label gpu=1 (has 'zone=a')");
    json_decref(ex);
    w.requires = "gpu";
    decide(&w, &err, NULL);
    assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    w.requires = "";
    conf.host_max_vms = 5;
    assert_string_equal(decide(&w, &err, NULL), "a");
    conf.policy = SCHED_POL_PACK; /* b holds more, but is at host_max_vms */
    assert_string_equal(decide(&w, &err, NULL), "a");
    /* forced: by name or id, still filtered */
    w.host = "id-b";
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: host b refused (host-max-vms): holds 5 VMs, "
                        "host_max_vms is 5");
    conf.host_max_vms = 0;
    assert_string_equal(decide(&w, &err, NULL), "b");
    w.host = "c";
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: host c refused (host-state): host is down");
    w.host = "zz";
    decide(&w, &err, NULL);
    assert_int_equal(err.code, YE_NOT_FOUND);
    assert_string_equal(err.message, "host 'zz' not found");
}

static void test_groups(void **st)
{
    reset();
    host("a", 8, 16 * GIB, "up", "");
    host("b", 8, 16 * GIB, "up", "");
    host("c", 8, 16 * GIB, "up", "");
    use("id-a", 1, 1, 256, 1);
    use("id-b", 1, 1, 256, 1);
    struct group_rec g = {.name = "web", .policy = "anti-affinity", .hard = 1};
    struct yerr err;
    struct place_want w = want(1, 256);
    w.group = &g;
    conf.policy = SCHED_POL_PACK; /* pack would take a, anti-affinity forbids it */
    assert_string_equal(decide(&w, &err, NULL), "c");
    use("id-c", 1, 1, 256, 1);
    json_t *ex;
    assert_string_equal(decide(&w, &err, &ex), "no valid host: 3 hosts: 3 with a member of group "
                                               "web (hard anti-affinity)");
    assert_string_equal(json_string_value(json_object_get(verdict_of(ex, "b"), "filter")),
                        "anti-affinity");
    json_decref(ex);
    /* soft: a preference, never a refusal */
    g.hard = 0;
    nu = 4;
    assert_string_equal(decide(&w, &err, NULL), "c");
    use("id-c", 1, 1, 256, 1);
    assert_int_equal(err.code, YE_NONE);
    decide(&w, &err, NULL);
    assert_int_equal(err.code, YE_NONE);
    /* affinity: where the members are */
    g = (struct group_rec){.name = "db", .policy = "affinity", .hard = 1};
    nu = 0;
    ugroup = "db";
    use("id-b", 1, 1, 256, 2);
    conf.policy = SCHED_POL_SPREAD; /* spread would take a or c */
    assert_string_equal(decide(&w, &err, NULL), "b");
    /* max per host */
    g.max_per_host = 2;
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 3 hosts: 1 at group db's 2 per host, 2 without the "
                        "members of group db (hard affinity)");
}

static void test_local_rows_and_limits(void **st)
{
    reset();
    ugroup = "web";
    /* the all-in-one's own host has id "": its rows are "" too */
    host("solo", 2, 4 * GIB, "up", "");
    snprintf(H[0].id, sizeof(H[0].id), "%s", "");
    use("", 1, 2, 512, 0);
    struct yerr err;
    struct place_want w = want(1, 256);
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 1 host: 1 without 1 vCPUs free (solo: needs 1 vCPUs, 0 of "
                        "2 free (2 cpus x cpu_overcommit 1.0))");
    assert_int_equal(err.code, YE_INSUFFICIENT_CAPACITY); /* room alone: as create always said */
    /* a VM that could never fit: the numbers create gave before placement */
    w = want(3, 256);
    w.charge = false;
    decide(&w, &err, NULL);
    assert_int_equal(err.code, YE_INSUFFICIENT_CAPACITY);
    assert_non_null(strstr(err.message, "3 vCPUs"));
    assert_non_null(strstr(err.message, "at most 2"));
    w = want(1, 64ULL << 20); /* 64 TiB */
    w.charge = false;
    decide(&w, &err, NULL);
    assert_int_equal(err.code, YE_INSUFFICIENT_CAPACITY);
    assert_non_null(strstr(err.message, "MiB"));
    w = want(1, 256);
    /* rows written before the host had an id count on it once it has one */
    snprintf(H[0].id, sizeof(H[0].id), "%s", "id-solo");
    int chosen;
    json_t *ex = NULL;
    assert_int_equal(place_decide(H, nh, U, nu, "id-solo", &w, &conf, &ps, &chosen, &ex, &err), -1);
    json_decref(ex);
    assert_int_equal(place_decide(H, nh, U, nu, "other", &w, &conf, &ps, &chosen, &ex, &err), 0);
    json_decref(ex);
    /* no hosts at all */
    nh = 0;
    assert_string_equal(decide(&w, &err, NULL), "no valid host: no hosts");
    /* the explanation lists at most list_limit hosts, the chosen first */
    reset();
    for (int i = 0; i < 6; i++) {
        char n[8];
        snprintf(n, sizeof(n), "h%d", i);
        host(n, 4, 8 * GIB, "up", "");
    }
    use("id-h0", 1, 3, 256, 0);
    w.list_limit = 2;
    conf.policy = SCHED_POL_PACK;
    assert_string_equal(decide(&w, &err, &ex), "h0");
    assert_int_equal(json_array_size(json_object_get(ex, "hosts")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(ex, "hosts"), 0), "verdict")),
                        "chosen");
    assert_int_equal(json_integer_value(json_object_get(ex, "hosts_total")), 6);
    json_decref(ex);
}

/* a kept model: each choice reserved, so a burst of creates never
 * overcommits and anti-affinity sees the members placed a moment ago */
static void test_kept_model_reserves(void **st)
{
    reset();
    host("a", 4, 8 * GIB, "up", "");
    host("b", 2, 8 * GIB, "up", "");
    use("id-a", 1, 1, 1024, 0);
    struct place_model *pm = place_model_new(H, nh, U, nu, "", &conf);
    assert_non_null(pm);
    assert_int_equal(place_model_hosts(pm), 2);
    struct place_want w = want(1, 1024);
    int counts[2] = {0}, chosen, placed = 0;
    struct yerr err;
    while (place_model_decide(pm, &w, &ps, &chosen, NULL, &err) == 0) {
        assert_int_equal(place_model_reserve(pm, chosen, &w), 0);
        counts[chosen]++;
        placed++;
        assert_true(placed <= 10);
    }
    /* a had 3 free vCPUs, b 2: five VMs, then no room */
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], 2);
    assert_int_equal(err.code, YE_INSUFFICIENT_CAPACITY);
    assert_string_equal(err.message, "no valid host: 2 hosts: 2 without 1 vCPUs free (a: needs 1 "
                                     "vCPUs, 0 of 4 free (4 cpus x cpu_overcommit 1.0))");
    /* anti-affinity against members reserved in this model */
    struct group_rec g = {.name = "ha", .policy = "anti-affinity", .hard = 1};
    w = want(1, 64);
    w.charge = false;
    w.group = &g;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(place_model_decide(pm, &w, &ps, &chosen, NULL, &err), 0);
        assert_int_equal(place_model_reserve(pm, chosen, &w), 0);
    }
    assert_int_equal(place_model_decide(pm, &w, &ps, &chosen, NULL, &err), -1);
    assert_string_equal(err.message,
                        "no valid host: 2 hosts: 2 with a member of group ha (hard anti-affinity)");
    assert_string_equal(place_model_host(pm, 0)->name, "a");
    assert_null(place_model_host(pm, 2));
    place_model_free(pm);
}

/* the settings: every policy name sched parses, nothing else */
static void test_settings(void **st)
{
    struct yun_config c;
    char err[256];
    config_defaults(&c);
    assert_string_equal(c.placement_policy, "spread");
    assert_int_equal(c.host_max_vms, 0);
    static const char *const ok[] = {"pack",   "spread",     "first-fit",  "round-robin",
                                     "random", "load-aware", "power-aware"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        sched_policy p;
        assert_int_equal(config_set(&c, "placement_policy", ok[i], err, sizeof(err)), 0);
        assert_int_equal(sched_policy_parse(c.placement_policy, &p), 0);
    }
    assert_int_equal(config_set(&c, "placement_policy", "best", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "placement_policy: 'best' is not one of pack"));
    assert_int_equal(config_set(&c, "host_max_vms", "12", err, sizeof(err)), 0);
    assert_int_equal(c.host_max_vms, 12);
    assert_int_equal(config_set(&c, "host_max_vms", "-1", err, sizeof(err)), -1);
}

static void test_labels_check(void **st)
{
    struct yerr err;
    assert_int_equal(place_labels_check("", "requires", &err), 0);
    assert_int_equal(place_labels_check("gpu=1,zone=eu-1", "requires", &err), 0);
    assert_int_equal(place_labels_check("gpu", "requires", &err), -1);
    assert_int_equal(place_labels_check("=1", "requires", &err), -1);
    assert_int_equal(place_labels_check("a=", "requires", &err), -1);
    assert_int_equal(place_labels_check("a=1,", "requires", &err), -1);
    assert_int_equal(place_labels_check("a=1 2", "requires", &err), -1);
    assert_int_equal(place_labels_check("a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1", "requires", &err),
                     -1);
    char longl[80];
    memset(longl, 'x', sizeof(longl));
    longl[0] = 'k';
    longl[1] = '=';
    longl[60] = 0;
    assert_int_equal(place_labels_check(longl, "requires", &err), -1);
}

/* a move: the source refused as "source", a strategy's policy, the
 * anti-affinity group still holding, the strategy names checked */
static void test_move_excludes_source(void **st)
{
    reset();
    host("a", 8, 16 * GIB, "up", "");
    host("b", 8, 16 * GIB, "up", "");
    host("c", 8, 16 * GIB, "maintenance", "");
    use("id-a", 1, 1, 512, 0);
    struct yerr err;
    struct place_want w = want(1, 512);
    w.exclude = "id-a";
    sched_policy pol = SCHED_POL_PACK;
    w.policy = &pol;
    json_t *ex;
    assert_string_equal(decide(&w, &err, &ex), "b"); /* pack would take a: it is the source */
    json_t *va = verdict_of(ex, "a");
    assert_string_equal(json_string_value(json_object_get(va, "filter")), "source");
    assert_string_equal(json_string_value(json_object_get(va, "detail")), "the vm's current host");
    assert_string_equal(json_string_value(json_object_get(ex, "policy")), "pack");
    json_decref(ex);
    H[1].state[0] = 0;
    snprintf(H[1].state, sizeof(H[1].state), "maintenance");
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 3 hosts: 2 in maintenance, 1 the vm's current host");
    assert_int_equal(err.code, YE_CONFLICT);
    /* room alone missing on the others: insufficient capacity, named by them */
    snprintf(H[1].state, sizeof(H[1].state), "up");
    w = want(1, 32768);
    w.exclude = "id-a";
    assert_int_equal(decide(&w, &err, NULL)[0], 'n');
    assert_int_equal(err.code, YE_CONFLICT); /* c is in maintenance: not room alone */
    snprintf(H[2].state, sizeof(H[2].state), "up");
    const char *r = decide(&w, &err, NULL);
    assert_int_equal(err.code, YE_INSUFFICIENT_CAPACITY);
    assert_non_null(strstr(r, "(b: needs 32768 MiB memory"));
    sched_policy out;
    assert_int_equal(place_strategy_parse("", &out, &err), 0);
    assert_int_equal(out, SCHED_POL_LOAD_AWARE);
    assert_int_equal(place_strategy_parse("round-robin", &out, &err), 0);
    assert_int_equal(out, SCHED_POL_ROUND_ROBIN);
    assert_int_equal(place_strategy_parse("spread", &out, &err), 0);
    assert_int_equal(out, SCHED_POL_SPREAD);
    assert_int_equal(place_strategy_parse("fastest", &out, &err), -1);
    assert_int_equal(err.code, YE_INVALID_ARGUMENT);
}

/* memory overcommit above 1: a host's floors (memory_min, else all the
 * memory) plus the wanted VM's must fit in usable memory less the margin,
 * counted from the rows and from what the kept model reserved */
static void test_memory_floors(void **st)
{
    reset();
    conf.mem_overcommit = 2.0;
    conf.cpu_overcommit = 4.0;
    host("a", 4, 8 * GIB, "up", "");
    host("b", 4, 8 * GIB, "up", "");
    use("id-a", 2, 2, 8192, 0);
    U[nu - 1].floor_mb = 7000;
    use("id-b", 1, 1, 4096, 0);
    U[nu - 1].floor_mb = 4096;
    struct yerr err;
    struct place_want w = want(1, 2048);
    w.memory_min_mb = 1024;
    json_t *ex;
    /* a: 7000 + 1024 > 8192 - 5 % (7782); b: 4096 + 1024 fits */
    assert_string_equal(decide(&w, &err, &ex), "b");
    json_t *va = verdict_of(ex, "a");
    assert_string_equal(json_string_value(json_object_get(va, "filter")), "memory-floor");
    assert_string_equal(json_string_value(json_object_get(va, "detail")),
                        "keeps at least 1024 MiB (memory_min), 782 of 7782 MiB free for floors "
                        "(usable memory less memory_margin, memory_overcommit 2.0)");
    json_decref(ex);
    /* without overcommit the floors are not the bound: a is full by ram */
    conf.mem_overcommit = 1.0;
    assert_string_equal(decide(&w, &err, &ex), "b");
    assert_string_equal(json_string_value(json_object_get(verdict_of(ex, "a"), "filter")), "ram");
    json_decref(ex);
    conf.mem_overcommit = 2.0;
    /* no memory_min: its floor is all of its memory (4096 + 4096 > 7782 on b) */
    w = want(1, 4096);
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 2 hosts: 2 without 4 GiB free for its memory floor (a: "
                        "keeps at least 4096 MiB (memory_min), 782 of 7782 MiB free for floors "
                        "(usable memory less memory_margin, memory_overcommit 2.0))");
    assert_int_equal(err.code, YE_INSUFFICIENT_CAPACITY);
    /* a VM that does not start now only has to fit ever: a takes it */
    w.charge = false;
    w.host = "a";
    assert_string_equal(decide(&w, &err, NULL), "a");
    /* the margin: 1 GiB leaves 7168 MiB for floors, 4096 + 3100 passes it */
    w = want(1, 4096);
    w.memory_min_mb = 3100;
    assert_string_equal(decide(&w, &err, NULL), "b");
    conf.memory_margin = 1 * GIB;
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 2 hosts: 2 without 3100 MiB free for its memory floor (a: "
                        "keeps at least 3100 MiB (memory_min), 168 of 7168 MiB free for floors "
                        "(usable memory less memory_margin, memory_overcommit 2.0))");
    /* reserved in the kept model: b takes three 1024 MiB floors (4096 +
     * 3 x 1024 = 7168), then none fits */
    conf.memory_margin = 0;
    struct place_model *pm = place_model_new(H, nh, U, nu, "", &conf);
    assert_non_null(pm);
    w = want(1, 2048);
    w.memory_min_mb = 1024;
    int chosen, placed = 0;
    while (place_model_decide(pm, &w, &ps, &chosen, NULL, &err) == 0) {
        assert_string_equal(place_model_host(pm, chosen)->name, "b");
        assert_int_equal(place_model_reserve(pm, chosen, &w), 0);
        assert_true(++placed <= 10);
    }
    assert_int_equal(placed, 3);
    assert_int_equal(err.code, YE_INSUFFICIENT_CAPACITY);
    assert_true(strstr(err.message, "2 without 1 GiB free for its memory floor") != NULL);
    place_model_free(pm);
}

/* the VM's CPU model: only hosts that run it; the baseline over up hosts */
static void test_cpu_models(void **st)
{
    reset();
    host("new", 4, 8 * GIB, "up", "");
    host("old", 4, 8 * GIB, "up", "");
    host("gone", 4, 8 * GIB, "maintenance", "");
    snprintf(H[0].cpu_models, sizeof H[0].cpu_models, "Haswell,Westmere,Nehalem,qemu64,max");
    snprintf(H[1].cpu_models, sizeof H[1].cpu_models, "Nehalem,qemu64,max");
    snprintf(H[2].cpu_models, sizeof H[2].cpu_models, "qemu64");
    struct place_model *pm = place_model_new(H, nh, U, nu, "", &conf);
    assert_non_null(pm);
    /* the host in maintenance does not pull it down */
    assert_string_equal(sched_cpu_model_name(place_model_baseline(pm)), "Nehalem");
    place_model_free(pm);
    struct yerr err;
    struct place_want w = want(1, 512);
    w.cpu_model = "Westmere";
    json_t *ex;
    assert_string_equal(decide(&w, &err, &ex), "new");
    json_t *vo = verdict_of(ex, "old");
    assert_string_equal(json_string_value(json_object_get(vo, "filter")), "cpu-model");
    assert_string_equal(json_string_value(json_object_get(vo, "detail")),
                        "cannot run CPU model Westmere (its QEMU runs: Nehalem,qemu64,max)");
    json_decref(ex);
    /* a move off "new": the old host cannot take it (409 conflict, not capacity) */
    w.exclude = "id-new";
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: 3 hosts: 1 in maintenance, 1 without CPU model Westmere, 1 "
                        "the vm's current host");
    assert_int_equal(err.code, YE_CONFLICT);
    w.exclude = NULL;
    w.host = "old";
    assert_string_equal(decide(&w, &err, NULL),
                        "no valid host: host old refused (cpu-model): cannot run CPU model "
                        "Westmere (its QEMU runs: Nehalem,qemu64,max)");
    /* none named: any host */
    w = want(1, 512);
    w.cpu_model = "";
    w.host = "old";
    assert_string_equal(decide(&w, &err, NULL), "old");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capacity_and_message),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_labels_state_max_vms_forced),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_local_rows_and_limits),
        cmocka_unit_test(test_kept_model_reserves),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_labels_check),
        cmocka_unit_test(test_move_excludes_source),
        cmocka_unit_test(test_memory_floors),
        cmocka_unit_test(test_cpu_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
