/*
 * hosts.c - the controller's hosts registry (ctl/hosts.h): one entry per
 * host, ordered by name and indexed by id, each with the agent that runs
 * its VMs. The all-in-one has one, its own (the in-process agent); a
 * controller has one per row of the hosts table, each with a remote agent.
 * Also the operator's side: list, show, maintenance, remove.
 */
#include "ctl/hosts_int.h"
#include "agent/agent.h"
#include "agent/agent_remote.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned id_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % HOSTS_BUCKETS;
}

struct host_entry *hosts_find(struct ctl *c, const char *id)
{
    if (!c->hosts)
        return NULL;
    for (struct host_entry *e = c->hosts->bucket[id_hash(id)]; e; e = e->hnext)
        if (!strcmp(e->rec.id, id))
            return e;
    return NULL;
}

struct host_entry *hosts_find_name(struct ctl *c, const char *name)
{
    struct ctl_hosts *h = c->hosts;
    if (!h)
        return NULL;
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = strcmp(h->v[mid]->rec.name, name);
        if (!d)
            return h->v[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void facts_from_row(struct ctl_host *f, const struct host_rec *r)
{
    memset(f, 0, sizeof *f);
    f->cpus = r->cpus;
    f->memory = r->memory;
    snprintf(f->accel, sizeof f->accel, "%s", r->accel);
    f->cgroups[0] = 0; /* not among the facts an agent joins with */
    f->swap_acct = -1; /* nor these: the agent's vm.launch checks them */
    f->memlock_max = -2;
    snprintf(f->vms_dir, sizeof f->vms_dir, "%s", r->vms_dir);
    snprintf(f->images_dir, sizeof f->images_dir, "%s", r->images_dir);
    snprintf(f->cpu_models, sizeof f->cpu_models, "%s", r->cpu_models);
}

static size_t insert_at(struct ctl_hosts *h, const char *name)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(h->v[mid]->rec.name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void order_remove(struct ctl_hosts *h, struct host_entry *e)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->v[i] == e) {
            memmove(&h->v[i], &h->v[i + 1], (h->n - i - 1) * sizeof h->v[0]);
            h->n--;
            return;
        }
}

static void order_insert(struct ctl_hosts *h, struct host_entry *e)
{
    size_t at = insert_at(h, e->rec.name);
    memmove(&h->v[at + 1], &h->v[at], (h->n - at) * sizeof h->v[0]);
    h->v[at] = e;
    h->n++;
}

struct host_entry *hosts_add(struct ctl *c, const struct host_rec *rec)
{
    struct ctl_hosts *h = c->hosts;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct host_entry **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return NULL;
        h->v = v;
        h->cap = cap;
    }
    struct host_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->rec = *rec;
    facts_from_row(&e->facts, rec);
    unsigned b = id_hash(rec->id);
    e->hnext = h->bucket[b];
    h->bucket[b] = e;
    order_insert(h, e);
    return e;
}

void hosts_update(struct ctl *c, struct host_entry *e, const struct host_rec *rec)
{
    bool renamed = strcmp(e->rec.name, rec->name) != 0;
    if (renamed)
        order_remove(c->hosts, e);
    e->rec = *rec;
    if (!e->local)
        facts_from_row(&e->facts, rec);
    if (renamed)
        order_insert(c->hosts, e);
}

/* One call the freed agent had pending: answered from the loop. */
struct owed_ctx {
    struct ctl *c;
    struct yerr err;
};

static void owe_one(void *arg, agent_reply_fn done, void *ctx)
{
    struct owed_ctx *o = arg;
    if (ctl_host_call_owe(o->c, done, ctx, &o->err) < 0)
        log_err("%s (out of memory: not answered)", o->err.message);
}

/* e's remote agent goes (a re-join at another address, the host removed,
 * the controller's shutdown). Its calls still pending are answered
 * YE_UNAVAILABLE from the loop, except at shutdown (no loop turns again:
 * each waiter's owner frees it). e->agent is cleared first, so nothing an
 * answer does can reach the agent being freed. */
static void release_agent(struct ctl *c, struct host_entry *e)
{
    struct agent *a = e->agent;
    if (e->local || !a)
        return;
    e->agent = NULL;
    ctl_vms_host_detached(c, e->rec.id, a);
    if (!c->hosts->closing) {
        struct owed_ctx o = {.c = c};
        yerr_set(&o.err, YE_UNAVAILABLE,
                 "host %s: its agent left (it joined again or was removed) "
                 "before answering",
                 e->rec.name);
        int n = agent_remote_hand_over(a, owe_one, &o);
        if (n)
            log_info("host %s: %d call%s pending on its old agent answered unavailable",
                     e->rec.name, n, n == 1 ? "" : "s");
    }
    agent_free(a);
}

void hosts_fail_pending(struct ctl *c, struct host_entry *e)
{
    if (e->local || !e->agent)
        return;
    struct owed_ctx o = {.c = c};
    yerr_set(&o.err, YE_UNAVAILABLE, "host %s is down (its lease lapsed) before answering",
             e->rec.name);
    int n = agent_remote_hand_over(e->agent, owe_one, &o);
    if (n)
        log_info("host %s: %d call%s pending on it answered unavailable", e->rec.name, n,
                 n == 1 ? "" : "s");
}

void hosts_drop(struct ctl *c, struct host_entry *e)
{
    struct ctl_hosts *h = c->hosts;
    order_remove(h, e);
    for (struct host_entry **p = &h->bucket[id_hash(e->rec.id)]; *p; p = &(*p)->hnext)
        if (*p == e) {
            *p = e->hnext;
            break;
        }
    release_agent(c, e);
    free(e);
}

void hosts_connect(struct ctl *c, struct host_entry *e)
{
    if (e->local)
        return;
    release_agent(c, e);
    char cred[65];
    if (hosts_credential(c->hosts->token, c->hosts->token_len, e->rec.id, cred) < 0) {
        log_err("host %s: cannot derive its credential", e->rec.name);
        return;
    }
    e->agent = agent_remote_new(c->base, e->rec.agent_url, cred, e->rec.name);
    memset(cred, 0, sizeof cred);
    if (!e->agent) {
        log_err("host %s: no remote agent for %s", e->rec.name, e->rec.agent_url);
        return;
    }
    if (ctl_vms_host_attached(c, e->rec.id, e->agent) < 0)
        log_err("host %s: its agent's events cannot be taken", e->rec.name);
}

/* The all-in-one's own row: found by agent_url "" (so a new host_name
 * renames it and keeps its id), made on the first start. */
static int init_local(struct ctl *c, char *err, size_t errlen)
{
    struct host_rec *rows = NULL, r;
    size_t n = 0;
    if (store_host_list(c->store, &rows, &n) < 0) {
        snprintf(err, errlen, "hosts: %s", store_errmsg(c->store));
        return -1;
    }
    size_t i = 0;
    while (i < n && rows[i].agent_url[0])
        i++;
    bool found = i < n;
    if (found)
        r = rows[i];
    free(rows);
    int64_t now = now_ms();
    if (!found) {
        memset(&r, 0, sizeof r);
        uuid_generate_str(r.id);
        snprintf(r.state, sizeof r.state, "up");
        r.joined_at = now;
    }
    snprintf(r.name, sizeof r.name, "%s", c->cfg->host_name);
    snprintf(r.labels, sizeof r.labels, "%s", c->cfg->host_labels);
    r.cpus = c->facts.cpus;
    r.memory = c->facts.memory;
    snprintf(r.accel, sizeof r.accel, "%s", c->facts.accel);
    snprintf(r.cpu_models, sizeof r.cpu_models, "%s", c->facts.cpu_models);
    snprintf(r.vms_dir, sizeof r.vms_dir, "%s", c->facts.vms_dir);
    snprintf(r.images_dir, sizeof r.images_dir, "%s", c->facts.images_dir);
    if (strcmp(r.state, "maintenance") || !r.maintenance)
        snprintf(r.state, sizeof r.state, "%s", r.maintenance ? "maintenance" : "up");
    r.updated_at = now;
    int rc = found ? store_host_update(c->store, &r) : store_host_insert(c->store, &r);
    if (rc) {
        snprintf(err, errlen, "hosts: %s%s",
                 rc == STORE_CONFLICT ? "another host row has this host_name: " : "",
                 store_errmsg(c->store));
        return -1;
    }
    struct host_entry *e = hosts_add(c, &r);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    e->local = true;
    e->agent = c->agent;
    e->facts = c->facts;
    snprintf(c->local_host, sizeof c->local_host, "%s", r.id);
    log_info("host %s (%s): this yund's own", r.name, r.id);
    return 0;
}

static int read_token(struct ctl *c, char *err, size_t errlen)
{
    size_t len = 0;
    char *tok = read_file(c->cfg->join_token_file, sizeof c->hosts->token - 1, &len);
    if (!tok) {
        snprintf(err, errlen, "cannot read join_token_file %s", c->cfg->join_token_file);
        return -1;
    }
    while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        tok[--len] = 0;
    if (len < 16) {
        snprintf(err, errlen, "join token in %s is shorter than 16 characters",
                 c->cfg->join_token_file);
        free(tok);
        return -1;
    }
    memcpy(c->hosts->token, tok, len);
    c->hosts->token[len] = 0;
    c->hosts->token_len = len;
    memset(tok, 0, len);
    free(tok);
    return 0;
}

static int init_controller(struct ctl *c, char *err, size_t errlen)
{
    if (read_token(c, err, errlen) < 0)
        return -1;
    struct host_rec *rows = NULL;
    size_t n = 0;
    if (store_host_list(c->store, &rows, &n) < 0) {
        snprintf(err, errlen, "hosts: %s", store_errmsg(c->store));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].agent_url[0])
            continue; /* an all-in-one's own row, from before this database had a controller */
        struct host_entry *e = hosts_add(c, &rows[i]);
        if (!e) {
            free(rows);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        hosts_connect(c, e);
    }
    free(rows);
    log_info("hosts: %zu known", c->hosts->n);
    if (hosts_lease_init(c) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int ctl_hosts_init(struct ctl *c, char *err, size_t errlen)
{
    c->hosts = calloc(1, sizeof *c->hosts);
    if (!c->hosts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return c->agent ? init_local(c, err, errlen) : init_controller(c, err, errlen);
}

void ctl_hosts_shutdown(struct ctl *c)
{
    struct ctl_hosts *h = c->hosts;
    if (!h)
        return;
    hosts_lease_shutdown(c);
    h->closing = true;
    while (h->n)
        hosts_drop(c, h->v[h->n - 1]);
    free(h->v);
    memset(h->token, 0, sizeof h->token);
    free(h);
    c->hosts = NULL;
}

/* ---- lookups (ctl/hosts.h) ---- */

const char *ctl_local_host(const struct ctl *c)
{
    return c->local_host;
}

struct agent *ctl_host_agent(struct ctl *c, const char *host_id, struct yerr *err)
{
    if (c->agent && (!host_id[0] || !strcmp(host_id, c->local_host)))
        return c->agent;
    struct host_entry *e = host_id[0] ? hosts_find(c, host_id) : NULL;
    if (!e)
        yerr_set(err, YE_UNAVAILABLE, "host %s is not known", host_id[0] ? host_id : "(local)");
    else if (!strcmp(e->rec.state, "down"))
        yerr_set(err, YE_UNAVAILABLE, "host %s is down", e->rec.name);
    else if (!e->agent)
        yerr_set(err, YE_UNAVAILABLE, "host %s has no connection", e->rec.name);
    else
        return e->agent;
    return NULL;
}

struct agent *ctl_vm_agent(struct ctl *c, const struct vm_rec *vm, struct yerr *err)
{
    return ctl_host_agent(c, vm->host, err);
}

const struct ctl_host *ctl_host_facts(struct ctl *c, const char *host_id)
{
    if (!host_id[0] || !strcmp(host_id, c->local_host))
        return c->agent ? &c->facts : NULL;
    struct host_entry *e = hosts_find(c, host_id);
    return e ? &e->facts : NULL;
}

static void each(struct ctl *c, ctl_host_fn fn, void *arg, bool down_too)
{
    if (!c->hosts) {
        if (c->agent)
            fn(c, c->local_host, c->agent, arg);
        return;
    }
    /* a copy of the ids: fn may change the registry */
    size_t n = c->hosts->n;
    char(*ids)[37] = n ? malloc(n * sizeof *ids) : NULL;
    if (n && !ids)
        return;
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], sizeof ids[i], "%s", c->hosts->v[i]->rec.id);
    for (size_t i = 0; i < n; i++) {
        struct host_entry *e = hosts_find(c, ids[i]);
        if (e && e->agent && (down_too || strcmp(e->rec.state, "down")))
            fn(c, e->rec.id, e->agent, arg);
    }
    free(ids);
}

void ctl_hosts_each(struct ctl *c, ctl_host_fn fn, void *arg)
{
    each(c, fn, arg, false);
}

void ctl_hosts_each_agent(struct ctl *c, ctl_host_fn fn, void *arg)
{
    each(c, fn, arg, true);
}

const char *ctl_host_name(struct ctl *c, const char *host_id)
{
    if (c->agent && (!host_id[0] || !strcmp(host_id, c->local_host)))
        return c->cfg->host_name[0] ? c->cfg->host_name : c->agent->host;
    struct host_entry *e = host_id[0] ? hosts_find(c, host_id) : NULL;
    return e ? e->rec.name : "";
}

/* ---- the operator's side ---- */

int ctl_host_get(struct ctl *c, const char *name, struct host_rec *out, int *vms, struct yerr *err)
{
    int rc = store_host_get(c->store, name, out);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "no host named %s", name);
    if (rc)
        return yerr_db(err, store_errmsg(c->store));
    if (vms) {
        *vms = 0;
        if (store_host_vm_count(c->store, out->id, vms) < 0)
            return yerr_db(err, store_errmsg(c->store));
        if (!strcmp(out->id, c->local_host)) {
            int legacy = 0; /* rows from before the cluster schema */
            if (store_host_vm_count(c->store, "", &legacy) < 0)
                return yerr_db(err, store_errmsg(c->store));
            *vms += legacy;
        }
    }
    return 0;
}

int ctl_host_list(struct ctl *c, struct host_rec **out, size_t *n, int **vms, struct yerr *err)
{
    if (store_host_list(c->store, out, n) < 0)
        return yerr_db(err, store_errmsg(c->store));
    if (!vms)
        return 0;
    *vms = calloc(*n ? *n : 1, sizeof **vms);
    if (!*vms) {
        free(*out);
        *out = NULL;
        return yerr_set(err, YE_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < *n; i++) {
        int legacy = 0;
        if (store_host_vm_count(c->store, (*out)[i].id, &(*vms)[i]) < 0 ||
            (!strcmp((*out)[i].id, c->local_host) &&
             store_host_vm_count(c->store, "", &legacy) < 0)) {
            free(*out);
            free(*vms);
            *out = NULL;
            *vms = NULL;
            return yerr_db(err, store_errmsg(c->store));
        }
        (*vms)[i] += legacy;
    }
    return 0;
}

int ctl_host_maintenance(struct ctl *c, const char *name, bool on, struct host_rec *out,
                         struct yerr *err)
{
    struct host_rec r;
    if (ctl_host_get(c, name, &r, NULL, err) < 0)
        return -1;
    /* a down host stays down until it heartbeats; the flag is kept */
    const char *state = !strcmp(r.state, "down") ? "down" : on ? "maintenance" : "up";
    int rc = store_host_set_state(c->store, r.id, state, on ? 1 : 0);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "no host named %s", name);
    if (rc)
        return yerr_db(err, store_errmsg(c->store));
    if (ctl_host_get(c, r.id, out, NULL, err) < 0)
        return -1;
    struct host_entry *e = hosts_find(c, r.id);
    if (e)
        hosts_update(c, e, out);
    ctl_place_invalidate(c);
    if (on != (r.maintenance != 0))
        ctl_event(c, "host", r.name, on ? "maintenance" : "activate", "ok",
                  on ? "host %s in maintenance: it takes no new VMs" : "host %s active again",
                  r.name);
    return 0;
}

int ctl_host_remove(struct ctl *c, const char *name, struct yerr *err)
{
    struct host_rec r;
    int vms = 0;
    if (ctl_host_get(c, name, &r, &vms, err) < 0)
        return -1;
    if (!strcmp(r.id, c->local_host))
        return yerr_set(err, YE_CONFLICT, "host %s is this yund's own: it cannot be removed",
                        r.name);
    if (vms > 0)
        return yerr_set(err, YE_CONFLICT, "host %s still has %d VM%s: delete or move them first",
                        r.name, vms, vms == 1 ? "" : "s");
    int rc = store_host_delete(c->store, r.id);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "no host named %s", name);
    if (rc)
        return yerr_db(err, store_errmsg(c->store));
    struct host_entry *e = hosts_find(c, r.id);
    if (e) {
        ctl_vms_host_down(c, r.id);
        hosts_drop(c, e);
    }
    ctl_place_invalidate(c);
    ctl_event(c, "host", r.name, "remove", "ok", "host %s removed", r.name);
    return 0;
}
