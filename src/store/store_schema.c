/*
 * store_schema.c - the schema's versioned list of steps, for either
 * backend, and applying them in order on open: each step one transaction
 * under the migration lock, so two processes opening one database at once
 * never both run a step.
 */
#include "store/store_internal.h"

#include <stdio.h>
#include <stdlib.h>

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
    /* 13: per-vCPU pinning and the pin of QEMU's other threads
     * (compute/cpupin.c), both applied by the agent after QEMU starts */
    "ALTER TABLE vms ADD COLUMN cpu_pin TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN emulator_pin TEXT NOT NULL DEFAULT '';",
    /* 14: a VM's memory policy: the least the balloon leaves it (0, rows
     * made before: their whole memory_mb; no UPDATE here, which the
     * PostgreSQL epoch fence would refuse outside a leader's session),
     * swap beyond its memory (-1 = the host's default), a soft limit,
     * memory locked resident, and the KSM opt-out */
    "ALTER TABLE vms ADD COLUMN memory_min_mb INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE vms ADD COLUMN memory_swap_mb INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE vms ADD COLUMN memory_high_mb INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE vms ADD COLUMN memory_lock INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE vms ADD COLUMN no_merge INTEGER NOT NULL DEFAULT 0;",
    /* 15: CPU models: the QEMU models a host runs (its join), a VM's -cpu
     * fixed at create ('' for rows made before: host under KVM, max) */
    "ALTER TABLE hosts ADD COLUMN cpu_models TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN cpu_model TEXT NOT NULL DEFAULT '';",
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

/* Every version step is one transaction that first takes the migration
 * lock and reads the version under it, so of two processes opening one
 * database at once only one migrates and the other sees its result. */
int store_schema_migrate(struct store *st)
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
