/*
 * store.c - store.h over the SQL layer (db.h), for either backend: opening
 * (a SQLite path or a postgres:// URL; the schema's steps are
 * store_schema.c's), the helpers the store's files share, and the VM,
 * image and event tables.
 */
#include "store/store_internal.h"
#include "lib/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_fail(struct store *st, const char *what)
{
    snprintf(st->err, sizeof(st->err), "%s: %s", what, db_errmsg(st->db));
    return -1;
}

const char *store_errmsg(struct store *st)
{
    return st->err;
}

int store_schema_version(struct store *st)
{
    return db_schema_version(st->db);
}

int store_open(const char *spec, struct store **out, char *err, size_t errlen)
{
    struct store *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!(st->spec = strdup(spec))) {
        snprintf(err, errlen, "out of memory");
        free(st);
        return -1;
    }
    if (db_open(spec, &st->db, err, errlen) < 0) {
        free(st->spec);
        free(st);
        return -1;
    }
    if (store_schema_migrate(st) < 0) {
        /* a URL may carry a password: name only the kind of database */
        snprintf(err, errlen, "database %s: %s",
                 db_dialect(st->db) == DB_PG ? "(PostgreSQL)" : spec, st->err);
        store_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    db_close(st->db);
    free(st->spec);
    free(st);
}

int store_open_again(const struct store *st, struct store **out, char *err, size_t errlen)
{
    return store_open(st->spec, out, err, errlen);
}

int store_begin(struct store *st)
{
    return db_begin(st->db) < 0 ? store_fail(st, "begin") : 0;
}

int store_commit(struct store *st)
{
    return db_commit(st->db) < 0 ? store_fail(st, "commit") : 0;
}

uint64_t store_vm_generation(struct store *st)
{
    return st->vm_gen;
}

void store_rollback(struct store *st)
{
    st->vm_gen++; /* rows written in the transaction are gone again */
    db_rollback(st->db);
}

struct db_stmt *store_prep(struct store *st, const char *sql)
{
    struct db_stmt *s = db_prepare(st->db, sql);
    if (!s)
        store_fail(st, "prepare");
    return s;
}

int store_count(struct store *st, const char *sql, const char *arg, int *count, const char *what)
{
    struct db_stmt *s = store_prep(st, sql);
    if (!s)
        return -1;
    db_bind_text(s, 1, arg);
    int ret = 0;
    if (db_step(s) == DB_ROW)
        *count = db_col_int(s, 0);
    else
        ret = store_fail(st, what);
    db_finish(s);
    return ret;
}

int store_get_one(struct store *st, const char *sql, const char *key, size_t elem,
                  store_row_reader rd, void *out, const char *what)
{
    struct db_stmt *s = store_prep(st, sql);
    if (!s)
        return -1;
    db_bind_text(s, 1, key);
    int rc = db_step(s), ret;
    if (rc == DB_ROW) {
        memset(out, 0, elem);
        rd(s, out);
        ret = 0;
    } else {
        ret = rc == DB_DONE ? STORE_NOTFOUND : store_fail(st, what);
    }
    db_finish(s);
    return ret;
}

int store_step_done(struct store *st, struct db_stmt *s, const char *what)
{
    int rc = db_step(s);
    int ret = 0;
    if (rc == DB_CONFLICT) {
        store_fail(st, what);
        ret = STORE_CONFLICT;
    } else if (rc != DB_DONE) {
        ret = store_fail(st, what);
    } else if (db_changes(st->db) == 0 && strncmp(what, "insert", 6) != 0) {
        ret = STORE_NOTFOUND;
    }
    db_finish(s);
    return ret;
}

void store_col_text(struct db_stmt *s, int i, char *dst, size_t len)
{
    /* a bounded copy, not snprintf: VM lists copy thousands of columns */
    const char *t = db_col_text(s, i);
    size_t n = t ? db_col_bytes(s, i) : 0;
    if (n >= len)
        n = len - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = 0;
}

/* Makes room for one more element in a malloc'd array. 0, or -1 when out of memory. */
int store_grow(void *arrp, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *na = realloc(*(void **)arrp, nc * elem);
    if (!na)
        return -1;
    *(void **)arrp = na;
    *cap = nc;
    return 0;
}

int store_collect(struct store *st, struct db_stmt *s, size_t elem, store_row_reader rd, void *outp,
                  size_t *n, const char *what)
{
    char **out = outp;
    size_t cap = 0;
    int rc;
    bool oom = false;
    *out = NULL;
    *n = 0;
    while ((rc = db_step(s)) == DB_ROW) {
        if (store_grow(out, &cap, *n, elem) < 0) {
            oom = true;
            break;
        }
        memset(*out + *n * elem, 0, elem);
        rd(s, *out + (*n)++ * elem);
    }
    if (rc != DB_DONE) {
        if (oom)
            snprintf(st->err, sizeof(st->err), "%s: out of memory", what);
        else
            store_fail(st, what);
        db_finish(s);
        free(*out);
        *out = NULL;
        *n = 0;
        return -1;
    }
    db_finish(s);
    return 0;
}

/* ---- VMs ---- */

static void bind_vm(struct db_stmt *s, const struct vm_rec *v)
{
    int i = 1;
    db_bind_text(s, i++, v->id);
    db_bind_text(s, i++, v->name);
    db_bind_text(s, i++, v->image);
    db_bind_int(s, i++, v->cpus);
    db_bind_int64(s, i++, (int64_t)v->memory_mb);
    db_bind_int64(s, i++, (int64_t)v->disk_bytes);
    db_bind_text(s, i++, v->cmdline);
    db_bind_text(s, i++, v->machine);
    db_bind_text(s, i++, v->accel);
    db_bind_text(s, i++, v->accel_used);
    db_bind_text(s, i++, restart_policy_name(v->restart));
    db_bind_int64(s, i++, v->cpu_weight);
    db_bind_int64(s, i++, (int64_t)v->cpu_quota_us);
    db_bind_int64(s, i++, (int64_t)v->cpu_period_us);
    db_bind_text(s, i++, v->cpuset);
    db_bind_text(s, i++, vm_desired_name(v->desired));
    db_bind_text(s, i++, vm_state_name(v->state));
    db_bind_int64(s, i++, v->pid);
    db_bind_int64(s, i++, v->started_at);
    db_bind_int64(s, i++, v->created_at);
    db_bind_int64(s, i++, v->updated_at);
    db_bind_int(s, i++, v->restarts);
    db_bind_text(s, i++, v->last_error);
    db_bind_text(s, i++, v->hostname);
    db_bind_int(s, i++, v->seed);
    db_bind_text(s, i++, v->disk);
    db_bind_text(s, i++, v->disk_parent);
    db_bind_int64(s, i++, v->stop_deadline);
    db_bind_int64(s, i++, (int64_t)v->uid);
    db_bind_text(s, i++, v->host);
    db_bind_text(s, i++, v->group);
    db_bind_text(s, i++, v->requires);
    db_bind_text(s, i++, v->pool);
    db_bind_int(s, i++, v->ha);
    db_bind_text(s, i++, v->ha_from);
    db_bind_text(s, i++, v->cpu_pin);
    db_bind_text(s, i++, v->emulator_pin);
    db_bind_int64(s, i++, (int64_t)v->memory_min_mb);
    db_bind_int64(s, i++, v->memory_swap_mb);
    db_bind_int64(s, i++, (int64_t)v->memory_high_mb);
    db_bind_int(s, i++, v->memory_lock);
    db_bind_int(s, i++, v->no_merge);
    db_bind_text(s, i++, v->cpu_model);
}

void store_read_vm(struct db_stmt *s, struct vm_rec *v)
{
    char buf[32];
    int i = 0;
    memset(v, 0, sizeof(*v));
    store_col_text(s, i++, v->id, sizeof(v->id));
    store_col_text(s, i++, v->name, sizeof(v->name));
    store_col_text(s, i++, v->image, sizeof(v->image));
    v->cpus = db_col_int(s, i++);
    v->memory_mb = (uint64_t)db_col_int64(s, i++);
    v->disk_bytes = (uint64_t)db_col_int64(s, i++);
    store_col_text(s, i++, v->cmdline, sizeof(v->cmdline));
    store_col_text(s, i++, v->machine, sizeof(v->machine));
    store_col_text(s, i++, v->accel, sizeof(v->accel));
    store_col_text(s, i++, v->accel_used, sizeof(v->accel_used));
    store_col_text(s, i++, buf, sizeof(buf));
    if (restart_policy_parse(buf, &v->restart) < 0)
        v->restart = RESTART_NO;
    v->cpu_weight = (unsigned)db_col_int64(s, i++);
    v->cpu_quota_us = (uint64_t)db_col_int64(s, i++);
    v->cpu_period_us = (uint64_t)db_col_int64(s, i++);
    store_col_text(s, i++, v->cpuset, sizeof(v->cpuset));
    store_col_text(s, i++, buf, sizeof(buf));
    if (vm_desired_parse(buf, &v->desired) < 0)
        v->desired = WANT_STOPPED;
    store_col_text(s, i++, buf, sizeof(buf));
    if (vm_state_parse(buf, &v->state) < 0)
        v->state = VM_STOPPED;
    v->pid = (pid_t)db_col_int64(s, i++);
    v->started_at = db_col_int64(s, i++);
    v->created_at = db_col_int64(s, i++);
    v->updated_at = db_col_int64(s, i++);
    v->restarts = db_col_int(s, i++);
    store_col_text(s, i++, v->last_error, sizeof(v->last_error));
    store_col_text(s, i++, v->hostname, sizeof(v->hostname));
    v->seed = db_col_int(s, i++);
    store_col_text(s, i++, v->disk, sizeof(v->disk));
    store_col_text(s, i++, v->disk_parent, sizeof(v->disk_parent));
    v->stop_deadline = db_col_int64(s, i++);
    v->uid = (uint32_t)db_col_int64(s, i++);
    store_col_text(s, i++, v->host, sizeof(v->host));
    store_col_text(s, i++, v->group, sizeof(v->group));
    store_col_text(s, i++, v->requires, sizeof(v->requires));
    store_col_text(s, i++, v->pool, sizeof(v->pool));
    v->ha = db_col_int(s, i++);
    store_col_text(s, i++, v->ha_from, sizeof(v->ha_from));
    store_col_text(s, i++, v->cpu_pin, sizeof(v->cpu_pin));
    store_col_text(s, i++, v->emulator_pin, sizeof(v->emulator_pin));
    v->memory_min_mb = (uint64_t)db_col_int64(s, i++);
    v->memory_swap_mb = db_col_int64(s, i++);
    v->memory_high_mb = (uint64_t)db_col_int64(s, i++);
    v->memory_lock = db_col_int(s, i++);
    v->no_merge = db_col_int(s, i++);
    store_col_text(s, i++, v->cpu_model, sizeof(v->cpu_model));
}

int store_vm_insert(struct store *st, const struct vm_rec *vm)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO vms(" VM_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                       "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    bind_vm(s, vm);
    st->vm_gen++;
    return store_step_done(st, s, "insert vm");
}

int store_vm_update(struct store *st, const struct vm_rec *vm)
{
    struct db_stmt *s =
        store_prep(st, "UPDATE vms SET id=?1,name=?2,image=?3,cpus=?4,memory_mb=?5,"
                       "disk_bytes=?6,cmdline=?7,machine=?8,accel=?9,accel_used=?10,"
                       "restart=?11,cpu_weight=?12,cpu_quota_us=?13,cpu_period_us=?14,"
                       "cpuset=?15,desired=?16,state=?17,pid=?18,started_at=?19,"
                       "created_at=?20,updated_at=?21,restarts=?22,last_error=?23,"
                       "hostname=?24,seed=?25,disk=?26,disk_parent=?27,stop_deadline=?28,uid=?29,"
                       "host=?30,grp=?31,requires=?32,pool=?33,ha=?34,ha_from=?35,"
                       "cpu_pin=?36,emulator_pin=?37,memory_min_mb=?38,memory_swap_mb=?39,"
                       "memory_high_mb=?40,memory_lock=?41,no_merge=?42,cpu_model=?43 WHERE id=?1");
    if (!s)
        return -1;
    bind_vm(s, vm);
    st->vm_gen++;
    return store_step_done(st, s, "update vm");
}

int store_vm_delete(struct store *st, const char *id)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM vms WHERE id=?");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    st->vm_gen++;
    return store_step_done(st, s, "delete vm");
}

int store_vm_get(struct store *st, const char *key, struct vm_rec *out)
{
    struct db_stmt *s =
        store_prep(st, "SELECT " VM_COLS " FROM vms WHERE name=?1 OR id=?1 "
                       "UNION ALL SELECT " VM_COLS " FROM vms WHERE length(?1)>=8 AND "
                       "substr(id,1,length(?1))=?1 LIMIT 2");
    if (!s)
        return -1;
    db_bind_text(s, 1, key);
    int rc = db_step(s);
    int ret;
    if (rc == DB_ROW) {
        store_read_vm(s, out);
        ret = 0;
    } else if (rc == DB_DONE) {
        ret = STORE_NOTFOUND;
    } else {
        ret = store_fail(st, "get vm");
    }
    db_finish(s);
    return ret;
}

static void row_vm(struct db_stmt *s, void *e)
{
    store_read_vm(s, e);
}

int store_vm_list(struct store *st, struct vm_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s = store_prep(st, "SELECT " VM_COLS " FROM vms ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), row_vm, out, n, "list vms");
}

int store_vm_count_using_image(struct store *st, const char *image, int *count)
{
    return store_count(st, "SELECT count(*) FROM vms WHERE image=?", image, count, "count vms");
}

static int vm_totals_read(struct store *st, struct db_stmt *s, struct vm_totals *t)
{
    int ret = 0;
    if (db_step(s) == DB_ROW) {
        t->vms = db_col_int(s, 0);
        t->running = db_col_int(s, 1);
        t->cpus = db_col_int(s, 2);
        t->memory_mb = (uint64_t)db_col_int64(s, 3);
        t->memory_min_mb = (uint64_t)db_col_int64(s, 4);
    } else {
        ret = store_fail(st, "vm totals");
    }
    db_finish(s);
    return ret;
}

/* The states listed are those vm_state_has_process() accepts. */
#define VM_TOTALS_SQL                                                                              \
    "SELECT count(*), coalesce(sum(p),0), coalesce(sum(p*cpus),0), "                               \
    "coalesce(sum(p*memory_mb),0), coalesce(sum(p*floor_mb),0) FROM (SELECT cpus, memory_mb, "     \
    "CASE WHEN memory_min_mb > 0 AND memory_min_mb < memory_mb THEN memory_min_mb "                \
    "ELSE memory_mb END AS floor_mb, CASE WHEN "                                                   \
    "state IN ('starting','running','paused','stopping','unknown') THEN 1 ELSE 0 END "             \
    "AS p FROM vms"

int store_vm_totals(struct store *st, struct vm_totals *t)
{
    struct db_stmt *s = store_prep(st, VM_TOTALS_SQL ") AS t");
    if (!s)
        return -1;
    return vm_totals_read(st, s, t);
}

int store_vm_totals_host(struct store *st, const char *host, bool with_unplaced,
                         struct vm_totals *t)
{
    struct db_stmt *s = store_prep(st, VM_TOTALS_SQL " WHERE host=?1 OR (host='' AND ?2=1)) AS t");
    if (!s)
        return -1;
    db_bind_text(s, 1, host);
    db_bind_int(s, 2, with_unplaced ? 1 : 0);
    return vm_totals_read(st, s, t);
}

/* ---- images ---- */

#define IMG_COLS                                                                                   \
    "id,name,format,path,kernel,initrd,cmdline,os,virtual_size,actual_size,created_at,"            \
    "min_memory_mb,sha256"

int store_image_insert(struct store *st, const struct image_rec *m)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO images(" IMG_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    int i = 1;
    db_bind_text(s, i++, m->id);
    db_bind_text(s, i++, m->name);
    db_bind_text(s, i++, m->format);
    db_bind_text(s, i++, m->path);
    db_bind_text(s, i++, m->kernel);
    db_bind_text(s, i++, m->initrd);
    db_bind_text(s, i++, m->cmdline);
    db_bind_text(s, i++, m->os);
    db_bind_int64(s, i++, (int64_t)m->virtual_size);
    db_bind_int64(s, i++, (int64_t)m->actual_size);
    db_bind_int64(s, i++, m->created_at);
    db_bind_int64(s, i++, (int64_t)m->min_memory_mb);
    db_bind_text(s, i++, m->sha256);
    return store_step_done(st, s, "insert image");
}

int store_image_delete(struct store *st, const char *name)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM images WHERE name=?");
    if (!s)
        return -1;
    db_bind_text(s, 1, name);
    return store_step_done(st, s, "delete image");
}

static void read_image(struct db_stmt *s, struct image_rec *m)
{
    int i = 0;
    memset(m, 0, sizeof(*m));
    store_col_text(s, i++, m->id, sizeof(m->id));
    store_col_text(s, i++, m->name, sizeof(m->name));
    store_col_text(s, i++, m->format, sizeof(m->format));
    store_col_text(s, i++, m->path, sizeof(m->path));
    store_col_text(s, i++, m->kernel, sizeof(m->kernel));
    store_col_text(s, i++, m->initrd, sizeof(m->initrd));
    store_col_text(s, i++, m->cmdline, sizeof(m->cmdline));
    store_col_text(s, i++, m->os, sizeof(m->os));
    m->virtual_size = (uint64_t)db_col_int64(s, i++);
    m->actual_size = (uint64_t)db_col_int64(s, i++);
    m->created_at = db_col_int64(s, i++);
    m->min_memory_mb = (uint64_t)db_col_int64(s, i++);
    store_col_text(s, i++, m->sha256, sizeof(m->sha256));
}

int store_image_get(struct store *st, const char *name, struct image_rec *out)
{
    struct db_stmt *s = store_prep(st, "SELECT " IMG_COLS " FROM images WHERE name=?1 OR id=?1");
    if (!s)
        return -1;
    db_bind_text(s, 1, name);
    int rc = db_step(s), ret;
    if (rc == DB_ROW) {
        read_image(s, out);
        ret = 0;
    } else if (rc == DB_DONE) {
        ret = STORE_NOTFOUND;
    } else {
        ret = store_fail(st, "get image");
    }
    db_finish(s);
    return ret;
}

static void row_image(struct db_stmt *s, void *e)
{
    read_image(s, e);
}

int store_image_list(struct store *st, struct image_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s = store_prep(st, "SELECT " IMG_COLS " FROM images ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), row_image, out, n, "list images");
}

/* ---- events ---- */

int store_event_add(struct store *st, struct event_rec *ev)
{
    if (!ev->ts)
        ev->ts = now_ms();
    struct db_stmt *s =
        store_prep(st, "INSERT INTO events(ts,object_type,object,action,result,reason) "
                       "VALUES(?,?,?,?,?,?) RETURNING id");
    if (!s)
        return -1;
    db_bind_int64(s, 1, ev->ts);
    db_bind_text(s, 2, ev->object_type);
    db_bind_text(s, 3, ev->object);
    db_bind_text(s, 4, ev->action);
    db_bind_text(s, 5, ev->result);
    db_bind_text(s, 6, ev->reason);
    int rc = db_step(s), ret = 0;
    if (rc == DB_ROW)
        ev->id = db_col_int64(s, 0);
    else
        ret = store_fail(st, "insert event");
    db_finish(s);
    return ret;
}

static void row_event(struct db_stmt *s, void *elem)
{
    struct event_rec *e = elem;
    e->id = db_col_int64(s, 0);
    e->ts = db_col_int64(s, 1);
    store_col_text(s, 2, e->object_type, sizeof(e->object_type));
    store_col_text(s, 3, e->object, sizeof(e->object));
    store_col_text(s, 4, e->action, sizeof(e->action));
    store_col_text(s, 5, e->result, sizeof(e->result));
    store_col_text(s, 6, e->reason, sizeof(e->reason));
}

int store_event_list(struct store *st, int64_t after_id, int limit, const char *object,
                     struct event_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* Newest `limit` events after after_id, returned oldest first. */
    struct db_stmt *s =
        store_prep(st, "SELECT id,ts,object_type,object,action,result,reason FROM ("
                       " SELECT * FROM events WHERE id>?1 AND (?2 IS NULL OR object=?2)"
                       " ORDER BY id DESC LIMIT ?3) AS e ORDER BY id");
    if (!s)
        return -1;
    db_bind_int64(s, 1, after_id);
    if (object)
        db_bind_text(s, 2, object);
    else
        db_bind_null(s, 2);
    db_bind_int(s, 3, limit);
    return store_collect(st, s, sizeof(**out), row_event, out, n, "list events");
}

int64_t store_event_last_id(struct store *st)
{
    struct db_stmt *s = store_prep(st, "SELECT coalesce(max(id),0) FROM events");
    if (!s)
        return 0;
    int64_t id = 0;
    if (db_step(s) == DB_ROW)
        id = db_col_int64(s, 0);
    db_finish(s);
    return id;
}

int store_event_prune(struct store *st, int64_t keep, int64_t older_than, int batch)
{
    if ((keep <= 0 && older_than <= 0) || batch <= 0)
        return 0;
    /* Only the `batch` oldest rows are candidates, found on the rowid (id)
     * b-tree, and max(id) is one b-tree descent: no scan of the table and no
     * index on ts needed. ts grows with id (wall clock at insert), so the
     * oldest rows by id are the oldest by age; a row a backwards clock step
     * left behind goes with the count limit. The count is by id: rows only
     * ever leave from the old end, so ids are dense (but for the rare insert
     * that failed) and this keeps `keep` rows. */
    struct db_stmt *s = store_prep(st, "DELETE FROM events WHERE id IN"
                                       " (SELECT id FROM events ORDER BY id LIMIT ?1)"
                                       " AND ((?2 > 0 AND id <= (SELECT max(id) FROM events) - ?2)"
                                       "  OR (?3 > 0 AND ts < ?3))");
    if (!s)
        return -1;
    db_bind_int(s, 1, batch);
    db_bind_int64(s, 2, keep);
    db_bind_int64(s, 3, older_than);
    int rc = store_step_done(st, s, "prune events");
    if (rc == STORE_NOTFOUND)
        return 0;
    return rc == 0 ? (int)db_changes(st->db) : -1;
}
