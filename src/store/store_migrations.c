/*
 * store_migrations.c - the migrations table's rows (store_mig.h).
 */
#include "store/store_internal.h"
#include "store/store_mig.h"

#include <string.h>

#define MIG_COLS                                                                                   \
    "id,vm_id,vm_name,source,target,phase,owner,task,started_at,updated_at,target_pid,"            \
    "target_uid,ports,options,prediction,outcome,error"
#define OPEN_SQL "phase NOT IN ('done','rolled_back')"

static void bind_all(struct db_stmt *s, const struct migration_rec *m)
{
    int i = 1;
    db_bind_text(s, i++, m->id);
    db_bind_text(s, i++, m->vm_id);
    db_bind_text(s, i++, m->vm_name);
    db_bind_text(s, i++, m->source);
    db_bind_text(s, i++, m->target);
    db_bind_text(s, i++, m->phase);
    db_bind_text(s, i++, m->owner);
    db_bind_text(s, i++, m->task);
    db_bind_int64(s, i++, m->started_at);
    db_bind_int64(s, i++, m->updated_at);
    db_bind_int64(s, i++, m->target_pid);
    db_bind_int64(s, i++, m->target_uid);
    db_bind_text(s, i++, m->ports);
    db_bind_text(s, i++, m->options);
    db_bind_text(s, i++, m->prediction);
    db_bind_text(s, i++, m->outcome);
    db_bind_text(s, i++, m->error);
}

int store_migration_insert(struct store *st, const struct migration_rec *m)
{
    struct db_stmt *s = store_prep(st, "INSERT INTO migrations(" MIG_COLS
                                       ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,"
                                       "?15,?16,?17)");
    if (!s)
        return -1;
    bind_all(s, m);
    return store_step_done(st, s, "insert migration");
}

int store_migration_update(struct store *st, const struct migration_rec *m)
{
    struct db_stmt *s =
        store_prep(st, "UPDATE migrations SET vm_id=?2,vm_name=?3,source=?4,target=?5,phase=?6,"
                       "owner=?7,task=?8,started_at=?9,updated_at=?10,target_pid=?11,"
                       "target_uid=?12,ports=?13,options=?14,prediction=?15,outcome=?16,"
                       "error=?17 WHERE id=?1");
    if (!s)
        return -1;
    bind_all(s, m);
    return store_step_done(st, s, "update migration");
}

static void read_mig(struct db_stmt *s, void *e)
{
    struct migration_rec *m = e;
    int i = 0;
    memset(m, 0, sizeof *m);
    store_col_text(s, i++, m->id, sizeof m->id);
    store_col_text(s, i++, m->vm_id, sizeof m->vm_id);
    store_col_text(s, i++, m->vm_name, sizeof m->vm_name);
    store_col_text(s, i++, m->source, sizeof m->source);
    store_col_text(s, i++, m->target, sizeof m->target);
    store_col_text(s, i++, m->phase, sizeof m->phase);
    store_col_text(s, i++, m->owner, sizeof m->owner);
    store_col_text(s, i++, m->task, sizeof m->task);
    m->started_at = db_col_int64(s, i++);
    m->updated_at = db_col_int64(s, i++);
    m->target_pid = (int32_t)db_col_int64(s, i++);
    m->target_uid = (uint32_t)db_col_int64(s, i++);
    store_col_text(s, i++, m->ports, sizeof m->ports);
    store_col_text(s, i++, m->options, sizeof m->options);
    store_col_text(s, i++, m->prediction, sizeof m->prediction);
    store_col_text(s, i++, m->outcome, sizeof m->outcome);
    store_col_text(s, i++, m->error, sizeof m->error);
}

int store_migration_get(struct store *st, const char *id, struct migration_rec *out)
{
    return store_get_one(st, "SELECT " MIG_COLS " FROM migrations WHERE id=?1", id, sizeof *out,
                         read_mig, out, "get migration");
}

int store_migration_open_for(struct store *st, const char *vm_id, struct migration_rec *out)
{
    return store_get_one(st,
                         "SELECT " MIG_COLS " FROM migrations WHERE vm_id=?1 AND " OPEN_SQL
                         " ORDER BY started_at LIMIT 1",
                         vm_id, sizeof *out, read_mig, out, "get a vm's open migration");
}

int store_migration_by_task(struct store *st, const char *task_id, struct migration_rec *out)
{
    return store_get_one(st, "SELECT " MIG_COLS " FROM migrations WHERE task=?1", task_id,
                         sizeof *out, read_mig, out, "get a task's migration");
}

int store_migration_list_open(struct store *st, struct migration_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s = store_prep(st, "SELECT " MIG_COLS " FROM migrations WHERE " OPEN_SQL
                                       " ORDER BY started_at");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), read_mig, out, n, "list open migrations");
}
