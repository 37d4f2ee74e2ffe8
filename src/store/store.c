/*
 * store.c - store.h over the SQL layer (db.h), for either backend: opening
 * (a SQLite path or a postgres:// URL), the versioned list of schema
 * migrations applied in order inside one transaction each, the helpers the
 * store's files share, and the VM, image and event tables.
 */
#include "store/store_internal.h"
#include "lib/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each entry moves the schema from version i to i+1. Never edit an entry
 * that has shipped; append a new one. The text is SQLite's; PostgreSQL
 * runs it through db_schema_sql (type names) plus pg_extra[i]. */
static const char *const migrations[] = {
    /* 1: the single-host platform */
    "CREATE TABLE images ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, format TEXT NOT NULL,"
    " path TEXT NOT NULL, kernel TEXT NOT NULL DEFAULT '', initrd TEXT NOT NULL DEFAULT '',"
    " cmdline TEXT NOT NULL DEFAULT '', os TEXT NOT NULL DEFAULT '',"
    " virtual_size INTEGER NOT NULL, actual_size INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE vms ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL,"
    " cpus INTEGER NOT NULL, memory_mb INTEGER NOT NULL, disk_bytes INTEGER NOT NULL,"
    " cmdline TEXT NOT NULL, machine TEXT NOT NULL, accel TEXT NOT NULL,"
    " accel_used TEXT NOT NULL DEFAULT '', restart TEXT NOT NULL,"
    " cpu_weight INTEGER NOT NULL, cpu_quota_us INTEGER NOT NULL, cpu_period_us INTEGER NOT NULL,"
    " cpuset TEXT NOT NULL, desired TEXT NOT NULL, state TEXT NOT NULL, pid INTEGER NOT NULL,"
    " started_at INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " restarts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX vms_image ON vms(image);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, object_type TEXT NOT NULL,"
    " object TEXT NOT NULL, action TEXT NOT NULL, result TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX events_object ON events(object, id);",
    /* 2: the monitor: alert rules, alert history, metric rollups */
    "CREATE TABLE alert_rules ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL,"
    " silenced_until INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);"
    "CREATE TABLE alerts ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, object TEXT NOT NULL,"
    " state TEXT NOT NULL, severity TEXT NOT NULL, value REAL NOT NULL,"
    " started_at INTEGER NOT NULL, fired_at INTEGER NOT NULL DEFAULT 0,"
    " resolved_at INTEGER NOT NULL DEFAULT 0, notified_at INTEGER NOT NULL DEFAULT 0,"
    " notifications INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX alerts_rule ON alerts(rule, object, id);"
    "CREATE TABLE metric_rollups ("
    " object TEXT NOT NULL, metric TEXT NOT NULL, step INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " avg REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL,"
    " PRIMARY KEY (object, metric, step, ts)) WITHOUT ROWID;",
    /* 3: cloud-init seeds */
    "ALTER TABLE vms ADD COLUMN hostname TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN seed INTEGER NOT NULL DEFAULT 0;",
    /* 4: volumes in storage pools */
    "CREATE TABLE volumes ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, pool TEXT NOT NULL, format TEXT NOT NULL,"
    " path TEXT NOT NULL, virtual_size INTEGER NOT NULL, backing TEXT NOT NULL DEFAULT '',"
    " attached_to TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX volumes_backing ON volumes(backing);",
    /* 5: VM disk snapshots (external qcow2 overlays); the VM's active layer */
    "ALTER TABLE vms ADD COLUMN disk TEXT NOT NULL DEFAULT 'disk.qcow2';"
    "ALTER TABLE vms ADD COLUMN disk_parent TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE snapshots ("
    " id TEXT PRIMARY KEY, vm_id TEXT NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL,"
    " parent TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, consistency TEXT NOT NULL,"
    " new_disk TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL, UNIQUE(vm_id, name));"
    "CREATE INDEX snapshots_parent ON snapshots(vm_id, parent);",
    /* 6: a durable graceful-stop deadline, the unprivileged uid a VM's QEMU
     * runs as, and the least memory an image boots with */
    "ALTER TABLE vms ADD COLUMN stop_deadline INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE vms ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE images ADD COLUMN min_memory_mb INTEGER NOT NULL DEFAULT 0;",
    /* 7: tasks (long operations, ctl/tasks.h); a volume row names the task
     * that owns it while one is in flight */
    "CREATE TABLE tasks ("
    " id TEXT PRIMARY KEY, kind TEXT NOT NULL, object_type TEXT NOT NULL,"
    " object_id TEXT NOT NULL, object_name TEXT NOT NULL, state TEXT NOT NULL,"
    " done INTEGER NOT NULL DEFAULT 0, total INTEGER NOT NULL DEFAULT 0, result TEXT,"
    " error_code TEXT NOT NULL DEFAULT '', error_message TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL, started_at INTEGER NOT NULL DEFAULT 0,"
    " finished_at INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',"
    " cancellable INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
    " params TEXT, pid INTEGER NOT NULL DEFAULT 0, pid_start INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tasks_object ON tasks(object_id, finished_at);"
    "CREATE INDEX tasks_state ON tasks(state, created_at);"
    "ALTER TABLE volumes ADD COLUMN task TEXT NOT NULL DEFAULT '';",
    /* 8: the cluster: hosts (agents that joined, or the all-in-one's own
     * host), the host a VM or volume is on, placement groups, a VM's
     * group and required host labels */
    "CREATE TABLE hosts ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, address TEXT NOT NULL DEFAULT '',"
    " agent_url TEXT NOT NULL DEFAULT '', cpus INTEGER NOT NULL, memory INTEGER NOT NULL,"
    " accel TEXT NOT NULL DEFAULT '', cpu_model TEXT NOT NULL DEFAULT '',"
    " cpu_flags TEXT NOT NULL DEFAULT '', labels TEXT NOT NULL DEFAULT '',"
    " state TEXT NOT NULL, maintenance INTEGER NOT NULL DEFAULT 0,"
    " lease_until INTEGER NOT NULL DEFAULT 0, cred_hash TEXT NOT NULL DEFAULT '',"
    " run TEXT NOT NULL DEFAULT '', cpu_load REAL NOT NULL DEFAULT 0,"
    " mem_used INTEGER NOT NULL DEFAULT 0, vms_dir TEXT NOT NULL DEFAULT '',"
    " images_dir TEXT NOT NULL DEFAULT '', joined_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "ALTER TABLE vms ADD COLUMN host TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN grp TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN requires TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX vms_host ON vms(host);"
    "ALTER TABLE volumes ADD COLUMN host TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE vm_groups ("
    " name TEXT PRIMARY KEY, policy TEXT NOT NULL, hard INTEGER NOT NULL,"
    " max_per_host INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);",
    /* 9: the controllers' leader (store_leader.c): one row, the holder of
     * the lease, its URL, the epoch every decision write is fenced by
     * (PostgreSQL), the lease's end (ms, the database clock) and the
     * backend pids of its lock and store connections */
    "CREATE TABLE leader ("
    " id INTEGER PRIMARY KEY, holder TEXT NOT NULL DEFAULT '', url TEXT NOT NULL DEFAULT '',"
    " epoch INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0,"
    " pid INTEGER NOT NULL DEFAULT 0, store_pid INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO leader (id) VALUES (1);",
    /* 10: images copied to hosts with a library of their own
     * (ctl/images_fetch.c): each image's checksums, and which host holds a
     * verified copy of which image (by image id) */
    "ALTER TABLE images ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE host_images ("
    " host TEXT NOT NULL, image TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL,"
    " bytes INTEGER NOT NULL, fetched_at INTEGER NOT NULL, PRIMARY KEY (host, image));"
    "CREATE INDEX host_images_image ON host_images(image);",
    /* M: live migrations (store_migrations.c, ctl/migrate*.c): one row per
     * move, phase by phase, naming the host that owns the VM in each */
    "CREATE TABLE migrations ("
    " id TEXT PRIMARY KEY, vm_id TEXT NOT NULL, vm_name TEXT NOT NULL, source TEXT NOT NULL,"
    " target TEXT NOT NULL, phase TEXT NOT NULL, owner TEXT NOT NULL, task TEXT NOT NULL,"
    " started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " target_pid INTEGER NOT NULL DEFAULT 0, target_uid INTEGER NOT NULL DEFAULT 0,"
    " ports TEXT NOT NULL DEFAULT '{}', options TEXT NOT NULL DEFAULT '{}',"
    " prediction TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT '',"
    " error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX migrations_vm ON migrations(vm_id, phase);",
    /* HA: storage pools declared by name (store_pools.c; shared = the same
     * path on every host, its disks not copied by a move), the pool a
     * VM's disk lives in, HA VMs and the host an HA restart took one from */
    "CREATE TABLE pools ("
    " name TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE, shared INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "ALTER TABLE vms ADD COLUMN pool TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN ha INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE vms ADD COLUMN ha_from TEXT NOT NULL DEFAULT '';",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* PostgreSQL-only statements of a version: what SQLite has implicitly. */
static const char *const pg_extra[N_MIGRATIONS] = {
    /* 7: tasks list ties on created_at in insertion order, SQLite's rowid */
    [6] = "ALTER TABLE tasks ADD COLUMN seq BIGSERIAL;",
    /* 9: the epoch fence. A statement writing a state table first takes
     * the leader row KEY SHARE (an election's FOR UPDATE waits for the
     * writes in flight, and a write after it sees the new epoch) and
     * raises unless the session's yun.epoch is the row's epoch (unset
     * counts as 0: a database no leader ever held, the unit tests'). */
    [8] = "CREATE FUNCTION yun_fence() RETURNS trigger LANGUAGE plpgsql AS $f$"
          " DECLARE e BIGINT; mine TEXT;"
          " BEGIN"
          "  SELECT epoch INTO e FROM leader WHERE id = 1 FOR KEY SHARE;"
          "  mine := coalesce(nullif(current_setting('yun.epoch', true), ''), '0');"
          "  IF e IS NOT NULL AND mine <> e::text THEN"
          "   RAISE EXCEPTION 'not the leader: epoch % is fenced off (the leader''s is %)',"
          "    mine, e USING ERRCODE = 'YF001';"
          "  END IF;"
          "  RETURN NULL;"
          " END $f$;"
          "DO $d$ DECLARE t TEXT; BEGIN"
          " FOREACH t IN ARRAY ARRAY['vms','volumes','snapshots','images','tasks','hosts',"
          "  'vm_groups','events','alert_rules','alerts'] LOOP"
          "  EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE"
          " ON %I FOR EACH STATEMENT EXECUTE FUNCTION yun_fence()', t || '_fence', t);"
          " END LOOP; END $d$;",
    /* 10: the new state table is fenced like the others */
    [9] = "CREATE TRIGGER host_images_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE"
          " ON host_images FOR EACH STATEMENT EXECUTE FUNCTION yun_fence();",
    /* M: the migrations table is a state table: fenced */
    [10] = "CREATE TRIGGER migrations_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE"
           " ON migrations FOR EACH STATEMENT EXECUTE FUNCTION yun_fence();",
    /* HA: pools are a state table: fenced */
    [11] = "CREATE TRIGGER pools_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE"
           " ON pools FOR EACH STATEMENT EXECUTE FUNCTION yun_fence();",
};

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

/* Every version step is one transaction that first takes the migration
 * lock and reads the version under it, so of two processes opening one
 * database at once only one migrates and the other sees its result. */
static int migrate(struct store *st)
{
    for (;;) {
        int v;
        if (db_begin(st->db) < 0)
            return store_fail(st, "begin migration");
        if (db_schema_lock(st->db, &v) < 0) {
            store_fail(st, "reading schema version");
            db_rollback(st->db);
            return -1;
        }
        if (v > N_MIGRATIONS) {
            db_rollback(st->db);
            snprintf(st->err, sizeof(st->err),
                     "database schema version %d is newer than this yund knows (%d)", v,
                     N_MIGRATIONS);
            return -1;
        }
        if (v == N_MIGRATIONS)
            return db_commit(st->db) < 0 ? store_fail(st, "commit") : 0;
        char *sql = db_schema_sql(st->db, migrations[v], pg_extra[v]);
        if (!sql || db_exec(st->db, sql) < 0 || db_schema_set(st->db, v + 1) < 0) {
            snprintf(st->err, sizeof(st->err), "schema migration %d: %s", v + 1,
                     sql ? db_errmsg(st->db) : "out of memory");
            free(sql);
            db_rollback(st->db);
            return -1;
        }
        free(sql);
        if (db_commit(st->db) < 0)
            return store_fail(st, "commit migration");
    }
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
    if (migrate(st) < 0) {
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
}

int store_vm_insert(struct store *st, const struct vm_rec *vm)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO vms(" VM_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,"
                       "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
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
                       "host=?30,grp=?31,requires=?32,pool=?33,ha=?34,ha_from=?35 WHERE id=?1");
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
    } else {
        ret = store_fail(st, "vm totals");
    }
    db_finish(s);
    return ret;
}

/* The states listed are those vm_state_has_process() accepts. */
#define VM_TOTALS_SQL                                                                              \
    "SELECT count(*), coalesce(sum(p),0), coalesce(sum(p*cpus),0), "                               \
    "coalesce(sum(p*memory_mb),0) FROM (SELECT cpus, memory_mb, CASE WHEN "                        \
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
