/*
 * store_hosts.c - the hosts table: one row per host of the cluster (an agent
 * that joined, or the all-in-one's own), its facts, its state, and its lease.
 * Leases are on the database's clock, never this process's: every
 * controller sharing the database agrees on when a lease lapsed.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <string.h>

#define HOST_COLS                                                                                  \
    "id,name,address,agent_url,cpus,memory,accel,cpu_model,cpu_flags,labels,state,"                \
    "maintenance,lease_until,cred_hash,run,cpu_load,mem_used,vms_dir,images_dir,joined_at,"        \
    "updated_at,cpu_models"

/* The database's clock in ms since the epoch, as an SQL expression. */
static const char *db_now(struct store *st)
{
    return db_dialect(st->db) == DB_PG
               ? "(floor(extract(epoch from clock_timestamp()) * 1000))::bigint"
               : "(CAST(strftime('%s','now') AS INTEGER) * 1000 + "
                 "CAST(substr(strftime('%f','now'), 4) AS INTEGER))";
}

static void bind_host(struct db_stmt *s, const struct host_rec *h)
{
    db_bind_text(s, 1, h->id);
    db_bind_text(s, 2, h->name);
    db_bind_text(s, 3, h->address);
    db_bind_text(s, 4, h->agent_url);
    db_bind_int(s, 5, h->cpus);
    db_bind_int64(s, 6, (int64_t)h->memory);
    db_bind_text(s, 7, h->accel);
    db_bind_text(s, 8, h->cpu_model);
    db_bind_text(s, 9, h->cpu_flags);
    db_bind_text(s, 10, h->labels);
    db_bind_text(s, 11, h->state);
    db_bind_int(s, 12, h->maintenance);
    db_bind_int64(s, 13, h->lease_until);
    db_bind_text(s, 14, h->cred_hash);
    db_bind_text(s, 15, h->run);
    db_bind_double(s, 16, h->cpu_load);
    db_bind_int64(s, 17, (int64_t)h->mem_used);
    db_bind_text(s, 18, h->vms_dir);
    db_bind_text(s, 19, h->images_dir);
    db_bind_int64(s, 20, h->joined_at);
    db_bind_int64(s, 21, h->updated_at);
    db_bind_text(s, 22, h->cpu_models);
}

static void read_host(struct db_stmt *s, void *elem)
{
    struct host_rec *h = elem;
    store_col_text(s, 0, h->id, sizeof h->id);
    store_col_text(s, 1, h->name, sizeof h->name);
    store_col_text(s, 2, h->address, sizeof h->address);
    store_col_text(s, 3, h->agent_url, sizeof h->agent_url);
    h->cpus = db_col_int(s, 4);
    h->memory = (uint64_t)db_col_int64(s, 5);
    store_col_text(s, 6, h->accel, sizeof h->accel);
    store_col_text(s, 7, h->cpu_model, sizeof h->cpu_model);
    store_col_text(s, 8, h->cpu_flags, sizeof h->cpu_flags);
    store_col_text(s, 9, h->labels, sizeof h->labels);
    store_col_text(s, 10, h->state, sizeof h->state);
    h->maintenance = db_col_int(s, 11);
    h->lease_until = db_col_int64(s, 12);
    store_col_text(s, 13, h->cred_hash, sizeof h->cred_hash);
    store_col_text(s, 14, h->run, sizeof h->run);
    h->cpu_load = db_col_double(s, 15);
    h->mem_used = (uint64_t)db_col_int64(s, 16);
    store_col_text(s, 17, h->vms_dir, sizeof h->vms_dir);
    store_col_text(s, 18, h->images_dir, sizeof h->images_dir);
    h->joined_at = db_col_int64(s, 19);
    h->updated_at = db_col_int64(s, 20);
    store_col_text(s, 21, h->cpu_models, sizeof h->cpu_models);
}

int store_host_insert(struct store *st, const struct host_rec *h)
{
    struct db_stmt *s = store_prep(st, "INSERT INTO hosts(" HOST_COLS ") VALUES(?,?,?,?,?,?,?,?,?,"
                                       "?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    bind_host(s, h);
    return store_step_done(st, s, "insert host");
}

int store_host_update(struct store *st, const struct host_rec *h)
{
    struct db_stmt *s = store_prep(
        st, "UPDATE hosts SET name=?2,address=?3,agent_url=?4,cpus=?5,memory=?6,accel=?7,"
            "cpu_model=?8,cpu_flags=?9,labels=?10,state=?11,maintenance=?12,lease_until=?13,"
            "cred_hash=?14,run=?15,cpu_load=?16,mem_used=?17,vms_dir=?18,images_dir=?19,"
            "joined_at=?20,updated_at=?21,cpu_models=?22 WHERE id=?1");
    if (!s)
        return -1;
    bind_host(s, h);
    return store_step_done(st, s, "update host");
}

int store_host_delete(struct store *st, const char *id)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM hosts WHERE id=?");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    return store_step_done(st, s, "delete host");
}

int store_host_get(struct store *st, const char *name_or_id, struct host_rec *out)
{
    /* the name first: a name is never a host id (ids are UUIDs) */
    return store_get_one(st,
                         "SELECT " HOST_COLS " FROM hosts WHERE name=?1 OR id=?1 "
                         "ORDER BY (name=?1) DESC LIMIT 1",
                         name_or_id, sizeof *out, read_host, out, "get host");
}

int store_host_list(struct store *st, struct host_rec **out, size_t *n)
{
    struct db_stmt *s = store_prep(st, "SELECT " HOST_COLS " FROM hosts ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof **out, read_host, out, n, "list hosts");
}

int store_now_ms(struct store *st, int64_t *now)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s", db_now(st));
    struct db_stmt *s = store_prep(st, sql);
    if (!s)
        return -1;
    int ret = 0;
    if (db_step(s) == DB_ROW)
        *now = db_col_int64(s, 0);
    else
        ret = store_fail(st, "database clock");
    db_finish(s);
    return ret;
}

int store_host_renew(struct store *st, const char *id, const char *run, double cpu_load,
                     uint64_t mem_used, int64_t lease_ms, int64_t *lease_until)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE hosts SET lease_until=%s + ?2, updated_at=%s, run=?3, cpu_load=?4, "
             "mem_used=?5, state=CASE WHEN maintenance<>0 THEN 'maintenance' ELSE 'up' END "
             "WHERE id=?1",
             db_now(st), db_now(st));
    struct db_stmt *s = store_prep(st, sql);
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    db_bind_int64(s, 2, lease_ms);
    db_bind_text(s, 3, run);
    db_bind_double(s, 4, cpu_load);
    db_bind_int64(s, 5, (int64_t)mem_used);
    int rc = store_step_done(st, s, "renew host lease");
    if (rc || !lease_until)
        return rc;
    struct db_stmt *q = store_prep(st, "SELECT lease_until FROM hosts WHERE id=?");
    if (!q)
        return -1;
    db_bind_text(q, 1, id);
    if (db_step(q) == DB_ROW)
        *lease_until = db_col_int64(q, 0);
    else
        rc = store_fail(st, "read host lease");
    db_finish(q);
    return rc;
}

int store_host_set_state(struct store *st, const char *id, const char *state, int maintenance)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE hosts SET state=?2, maintenance=?3, updated_at=%s WHERE id=?1", db_now(st));
    struct db_stmt *s = store_prep(st, sql);
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, state);
    db_bind_int(s, 3, maintenance);
    return store_step_done(st, s, "set host state");
}

int store_hosts_lapsed(struct store *st, struct host_rec **out, size_t *n)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT " HOST_COLS " FROM hosts WHERE lease_until > 0 AND lease_until < %s "
             "AND state <> 'down' ORDER BY name",
             db_now(st));
    struct db_stmt *s = store_prep(st, sql);
    if (!s)
        return -1;
    return store_collect(st, s, sizeof **out, read_host, out, n, "list lapsed hosts");
}

int store_host_vm_count(struct store *st, const char *id, int *count)
{
    return store_count(st, "SELECT count(*) FROM vms WHERE host=?", id, count, "count host vms");
}
