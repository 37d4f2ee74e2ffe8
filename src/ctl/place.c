/*
 * place.c - the controller's side of placement (ctl/place.h): reads the
 * hosts and their allocation from the store, adds the all-in-one's own host
 * while it has no row, decides through place_model.c with the cluster's
 * settings, and keeps the last explanation of each VM name (at most
 * PLACE_KEEP, the oldest replaced) for `yun vm explain`.
 *
 * The model (place_model.c) is kept between decisions: each choice is
 * reserved in it at once, and the VM row that carries it is written
 * "creating" by the caller right after, with no loop turn between, so
 * concurrent creates never see the same free room twice. It is read again
 * from the store on every decision while that is cheap (under
 * PLACE_CHEAP_MS: small clusters see every change at once), else at most
 * every PLACE_REFRESH_MS or 50 times its cost (2 % of the loop), and at
 * once after ctl_place_invalidate() (hosts changed). What it may miss
 * meanwhile is other writers' changes: stopped or deleted VMs (it is
 * conservative) and starts of existing VMs (start's admission checks
 * those).
 */
#include "ctl/place.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/vms_int.h"
#include "lib/config.h"
#include "sched/cpu_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PLACE_KEEP       1024
#define PLACE_LIST       100 /* hosts listed in a kept explanation */
#define PLACE_CHEAP_MS   2.0 /* a model built faster than this is built every time */
#define PLACE_REFRESH_MS 500 /* else at most this old */

struct place_kept {
    char name[64];
    json_t *explain;
};

struct ctl_place {
    struct place_state ps;
    struct place_kept kept[PLACE_KEEP];
    int next;               /* the slot replaced next */
    struct place_kept full; /* the last create that asked: every host listed */
    struct place_model *pm; /* NULL: read it from the store */
    int64_t built_ms;       /* when (monotonic) */
    double build_cost_ms;   /* how long that took */
    struct place_timing timing[PLACE_T__COUNT];
    char cpu_model[64]; /* the last decision's (its place_want points here) */
};

const double place_bucket_le[PLACE_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                               0.01,   0.025,   0.05,   0.1,   0.25,   1.0};

static struct ctl_place *place_of(struct ctl *c)
{
    if (!c->place) {
        c->place = calloc(1, sizeof(*c->place));
        if (c->place)
            place_state_init(&c->place->ps, 0x79756e706c616365ull); /* "yunplace" */
    }
    return c->place;
}

static void keep(struct ctl_place *pl, const char *name, json_t *ex)
{
    struct place_kept *k = NULL;
    for (int i = 0; i < PLACE_KEEP && !k; i++)
        if (pl->kept[i].explain && !strcmp(pl->kept[i].name, name))
            k = &pl->kept[i];
    if (!k) {
        k = &pl->kept[pl->next];
        pl->next = (pl->next + 1) % PLACE_KEEP;
    }
    json_decref(k->explain);
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->explain = json_incref(ex);
}

json_t *ctl_place_explain(struct ctl *c, const char *name)
{
    if (!c->place)
        return NULL;
    if (c->place->full.explain && !strcmp(c->place->full.name, name))
        return c->place->full.explain;
    for (int i = 0; i < PLACE_KEEP; i++)
        if (c->place->kept[i].explain && !strcmp(c->place->kept[i].name, name))
            return c->place->kept[i].explain;
    return NULL;
}

void ctl_place_shutdown(struct ctl *c)
{
    if (!c->place)
        return;
    for (int i = 0; i < PLACE_KEEP; i++)
        json_decref(c->place->kept[i].explain);
    json_decref(c->place->full.explain);
    place_model_free(c->place->pm);
    free(c->place);
    c->place = NULL;
}

void ctl_place_invalidate(struct ctl *c)
{
    if (c->place) {
        place_model_free(c->place->pm);
        c->place->pm = NULL;
    }
}

static int64_t mono_ms_f(double *precise)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    *precise = t.tv_sec * 1e3 + t.tv_nsec / 1e6;
    return (int64_t)*precise;
}

/* The all-in-one's own host while the hosts table has no row for it. */
static int add_local(struct ctl *c, struct place_host_row **hosts, size_t *n)
{
    const char *local = ctl_local_host(c);
    if (!c->agent || c->facts.cpus <= 0)
        return 0; /* a controller: hosts are rows only */
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*hosts)[i].id, local))
            return 0;
    struct place_host_row *h = realloc(*hosts, (*n + 1) * sizeof(**hosts));
    if (!h)
        return -1;
    *hosts = h;
    h = &h[(*n)++];
    memset(h, 0, sizeof(*h));
    snprintf(h->id, sizeof(h->id), "%s", local);
    if (gethostname(h->name, sizeof(h->name)) < 0 || !h->name[0])
        snprintf(h->name, sizeof(h->name), "local");
    h->name[sizeof(h->name) - 1] = 0;
    h->cpus = c->facts.cpus;
    h->memory = c->facts.memory;
    snprintf(h->cpu_models, sizeof(h->cpu_models), "%s", c->facts.cpu_models);
    snprintf(h->state, sizeof(h->state), "up");
    return 0;
}

/* The model from the store, now. */
static int build(struct ctl *c, struct ctl_place *pl, struct yerr *err)
{
    double t0, t1;
    int64_t now = mono_ms_f(&t0);
    struct place_host_row *hosts = NULL;
    struct place_usage_row *usage = NULL;
    size_t nh = 0, nu = 0;
    int ret = -1;
    if (store_place_hosts(c->store, &hosts, &nh) != 0 ||
        store_place_usage(c->store, &usage, &nu) != 0) {
        yerr_db(err, store_errmsg(c->store));
        goto out;
    }
    if (add_local(c, &hosts, &nh) < 0) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        goto out;
    }
    struct place_conf conf = {.cpu_overcommit = c->cfg->cpu_overcommit,
                              .mem_overcommit = c->cfg->mem_overcommit,
                              .reserved_memory = c->cfg->reserved_memory,
                              .memory_margin = c->cfg->memory_margin,
                              .host_max_vms = c->cfg->host_max_vms};
    if (sched_policy_parse(c->cfg->placement_policy, &conf.policy) < 0)
        conf.policy = SCHED_POL_SPREAD;
    place_model_free(pl->pm);
    pl->pm = place_model_new(hosts, nh, usage, nu, ctl_local_host(c), &conf);
    if (!pl->pm) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        goto out;
    }
    mono_ms_f(&t1);
    pl->built_ms = now;
    pl->build_cost_ms = t1 - t0;
    ret = 0;
out:
    free(hosts);
    free(usage);
    return ret;
}

/* spec's CPU model on the built model: its own, else the cpu_model
 * setting, "auto" there being the baseline ("" when there is none). */
static int model_for(struct ctl *c, struct ctl_place *pl, const struct vm_spec *spec, char out[64],
                     struct yerr *err)
{
    const char *want = spec->cpu_model[0] ? spec->cpu_model : c->cfg->cpu_model;
    out[0] = 0;
    if (!strcmp(want, "auto")) {
        int b = place_model_baseline(pl->pm);
        if (b >= 0)
            snprintf(out, 64, "%s", sched_cpu_model_name(b));
        return 0;
    }
    if (sched_cpu_model_index(want) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "the cpu_model setting '%s' is not a CPU model yun knows (see "
                        "docs/architecture.md, CPU models)",
                        want);
    snprintf(out, 64, "%s", want);
    return 0;
}

/* Decides for spec on the kept model (read again when due); ps is the state
 * the decision moves (the controller's, or a copy for a dry run). */
static int decide(struct ctl *c, struct ctl_place *pl, const struct vm_spec *spec,
                  const char *force_host, struct place_state *ps, int list_limit, int *chosen,
                  json_t **ex, struct place_want *w, struct group_rec *grp, const char *exclude,
                  const sched_policy *pol, struct yerr *err)
{
    *ex = NULL;
    *chosen = -1;
    if (spec->group[0]) {
        int rc = store_group_get(c->store, spec->group, grp);
        if (rc == STORE_NOTFOUND)
            return yerr_set(err, YE_NOT_FOUND, "group '%s' not found", spec->group);
        if (rc != 0)
            return yerr_db(err, store_errmsg(c->store));
    }
    double t;
    int64_t now = mono_ms_f(&t);
    /* a costly read is made rarely: at most 2 % of the loop's time */
    double every =
        pl->build_cost_ms * 50 > PLACE_REFRESH_MS ? pl->build_cost_ms * 50 : PLACE_REFRESH_MS;
    if (!pl->pm || pl->build_cost_ms < PLACE_CHEAP_MS || now - pl->built_ms >= every)
        if (build(c, pl, err) < 0)
            return -1;
    if (model_for(c, pl, spec, pl->cpu_model, err) < 0)
        return -1;
    *w = (struct place_want){.name = spec->name,
                             .cpus = spec->cpus,
                             .memory_mb = spec->memory_mb,
                             .memory_min_mb = spec->memory_min_mb,
                             .cpu_model = pl->cpu_model,
                             .requires = spec->requires,
                             .group = spec->group[0] ? grp : NULL,
                             .host = force_host ? force_host : "",
                             .charge = spec->start,
                             .list_limit = list_limit,
                             .exclude = exclude,
                             .policy = pol};
    return place_model_decide(pl->pm, w, ps, chosen, ex, err);
}

/* A decision's time into its histogram. */
static void timed(struct ctl_place *pl, int kind, double t0)
{
    double t1;
    mono_ms_f(&t1);
    double s = (t1 - t0) / 1e3;
    struct place_timing *h = &pl->timing[kind];
    for (int b = 0; b < PLACE_BUCKETS; b++)
        if (s <= place_bucket_le[b])
            h->bucket[b]++;
    h->count++;
    h->sum += s;
}

int ctl_place(struct ctl *c, const struct vm_spec *spec, const char *force_host, char host_id[37],
              json_t **explain, struct yerr *err)
{
    if (explain)
        *explain = NULL;
    struct ctl_place *pl = place_of(c);
    if (!pl)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    double t0;
    mono_ms_f(&t0);
    struct group_rec grp;
    struct place_want w;
    int chosen = -1;
    json_t *ex = NULL;
    int ret = decide(c, pl, spec, force_host, &pl->ps, spec->explain ? 0 : PLACE_LIST, &chosen, &ex,
                     &w, &grp, NULL, NULL, err);
    if (ret == 0 && place_model_reserve(pl->pm, chosen, &w) < 0)
        ctl_place_invalidate(c); /* out of memory: read it all again next time */
    if (ex) {
        /* kept bounded: a long list only for the caller that asked */
        if (spec->explain) {
            json_decref(pl->full.explain);
            pl->full.explain = json_incref(ex);
            snprintf(pl->full.name, sizeof(pl->full.name), "%s", spec->name);
        }
        if (json_array_size(json_object_get(ex, "hosts")) > PLACE_LIST) {
            json_t *small = json_deep_copy(ex);
            json_t *list = small ? json_object_get(small, "hosts") : NULL;
            while (list && json_array_size(list) > PLACE_LIST)
                json_array_remove(list, json_array_size(list) - 1);
            if (small) {
                json_object_set_new(small, "hosts_listed", json_integer(PLACE_LIST));
                keep(pl, spec->name, small);
            }
            json_decref(small);
        } else {
            keep(pl, spec->name, ex);
        }
    }
    if (ret == 0)
        snprintf(host_id, 37, "%s", place_model_host(pl->pm, chosen)->id);
    if (explain)
        *explain = ex;
    else
        json_decref(ex);
    timed(pl, PLACE_T_CREATE, t0);
    return ret;
}

int ctl_place_dry(struct ctl *c, const struct vm_spec *spec, json_t **out, json_t **explain,
                  struct yerr *err)
{
    *out = NULL;
    if (explain)
        *explain = NULL;
    struct ctl_place *pl = place_of(c);
    if (!pl)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    double t0;
    mono_ms_f(&t0);
    /* the spec as create checks it before placement; the image only if named */
    struct image_rec img;
    if ((spec->image[0] ? ctl_vm_validate_spec(c, spec, NULL, &img, err)
                        : ctl_vm_check_spec(spec, err)) < 0)
        return -1;
    struct place_state ps = pl->ps; /* the cursor and the PRNG move for creates only */
    struct group_rec grp;
    struct place_want w;
    int chosen = -1;
    json_t *ex = NULL;
    /* without explain the chosen host alone is listed (for its score) */
    int ret = decide(c, pl, spec, spec->host, &ps, explain ? 0 : 1, &chosen, &ex, &w, &grp, NULL,
                     NULL, err);
    if (ret == 0) {
        const struct place_host_row *h = place_model_host(pl->pm, chosen);
        json_t *first = json_array_get(json_object_get(ex, "hosts"), 0);
        json_t *score = json_object_get(first, "score");
        *out = json_pack("{s:{s:s,s:s},s:f,s:O,s:O,s:O,s:s}", "host", "id", h->id, "name", h->name,
                         "score", score ? json_number_value(score) : 0.0, "passed",
                         json_object_get(ex, "passed"), "hosts_total",
                         json_object_get(ex, "hosts_total"), "reason",
                         json_object_get(ex, "reason"), "cpu_model", pl->cpu_model);
        if (!*out)
            ret = yerr_set(err, YE_INTERNAL, "out of memory");
    }
    if (explain)
        *explain = ex;
    else
        json_decref(ex);
    timed(pl, PLACE_T_DRY, t0);
    return ret;
}

int ctl_place_move(struct ctl *c, const struct vm_rec *vm, const char *strategy, bool dry,
                   char host_id[37], json_t **explain, struct yerr *err)
{
    if (explain)
        *explain = NULL;
    sched_policy pol;
    if (place_strategy_parse(strategy, &pol, err) < 0)
        return -1;
    struct ctl_place *pl = place_of(c);
    if (!pl)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    double t0;
    mono_ms_f(&t0);
    /* the VM as it runs: its size charged on the target, its group's and
     * labels' rules as at its create */
    struct vm_spec s;
    vm_spec_of_running(&s, vm);
    struct place_state copy = pl->ps;
    struct group_rec grp;
    struct place_want w;
    int chosen = -1;
    json_t *ex = NULL;
    const char *source = vm->host[0] ? vm->host : ctl_local_host(c);
    int ret = decide(c, pl, &s, NULL, dry ? &copy : &pl->ps, PLACE_LIST, &chosen, &ex, &w, &grp,
                     source, &pol, err);
    if (ret == 0)
        snprintf(host_id, 37, "%s", place_model_host(pl->pm, chosen)->id);
    if (ex && !dry)
        keep(pl, vm->name, ex);
    if (explain)
        *explain = ex;
    else
        json_decref(ex);
    timed(pl, PLACE_T_DRY, t0);
    return ret;
}

int ctl_cpu_model_for(struct ctl *c, const struct vm_spec *spec, char out[64], struct yerr *err)
{
    struct ctl_place *pl = place_of(c);
    if (!pl)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    if (!pl->pm && build(c, pl, err) < 0)
        return -1;
    return model_for(c, pl, spec, out, err);
}

int ctl_place_timing(struct ctl *c, int kind, struct place_timing *out)
{
    memset(out, 0, sizeof(*out));
    if (!c || kind < 0 || kind >= PLACE_T__COUNT)
        return -1;
    if (c->place)
        *out = c->place->timing[kind];
    return 0;
}
