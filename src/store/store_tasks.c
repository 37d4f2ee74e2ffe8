/*
 * store_tasks.c - the tasks table: one row per long operation (ctl/tasks.h),
 * written before the operation's first side effect and kept after it ends
 * (newest first, pruned to a bounded history).
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

#define TASK_COLS                                                                                  \
    "id,kind,object_type,object_id,object_name,state,done,total,result,error_code,"                \
    "error_message,created_at,started_at,finished_at,owner,cancellable,cancel_requested,params,"   \
    "pid,pid_start"

static void bind_text_or_null(struct db_stmt *s, int i, const char *v)
{
    if (v)
        db_bind_text(s, i, v);
    else
        db_bind_null(s, i);
}

static void bind_task(struct db_stmt *s, const struct task_rec *t)
{
    db_bind_text(s, 1, t->id);
    db_bind_text(s, 2, t->kind);
    db_bind_text(s, 3, t->object_type);
    db_bind_text(s, 4, t->object_id);
    db_bind_text(s, 5, t->object_name);
    db_bind_text(s, 6, task_state_name(t->state));
    db_bind_int64(s, 7, (int64_t)t->done);
    db_bind_int64(s, 8, (int64_t)t->total);
    bind_text_or_null(s, 9, t->result);
    db_bind_text(s, 10, t->error_code ? yerr_code_name(t->error_code) : "");
    db_bind_text(s, 11, t->error_message);
    db_bind_int64(s, 12, t->created_at);
    db_bind_int64(s, 13, t->started_at);
    db_bind_int64(s, 14, t->finished_at);
    db_bind_text(s, 15, t->owner);
    db_bind_int(s, 16, t->cancellable);
    db_bind_int(s, 17, t->cancel_requested);
    bind_text_or_null(s, 18, t->params);
    db_bind_int64(s, 19, t->pid);
    db_bind_int64(s, 20, (int64_t)t->pid_start);
}

static char *col_dup(struct db_stmt *s, int i)
{
    const char *v = db_col_text(s, i);
    return v ? strdup((const char *)v) : NULL;
}

static void read_task(struct db_stmt *s, struct task_rec *t)
{
    char buf[40];
    memset(t, 0, sizeof *t);
    store_col_text(s, 0, t->id, sizeof t->id);
    store_col_text(s, 1, t->kind, sizeof t->kind);
    store_col_text(s, 2, t->object_type, sizeof t->object_type);
    store_col_text(s, 3, t->object_id, sizeof t->object_id);
    store_col_text(s, 4, t->object_name, sizeof t->object_name);
    store_col_text(s, 5, buf, sizeof buf);
    if (task_state_parse(buf, &t->state) < 0)
        t->state = TASK_FAILED; /* unreadable: never "running" forever */
    t->done = (uint64_t)db_col_int64(s, 6);
    t->total = (uint64_t)db_col_int64(s, 7);
    t->result = col_dup(s, 8);
    store_col_text(s, 9, buf, sizeof buf);
    if (!buf[0] || yerr_code_parse(buf, &t->error_code) < 0)
        t->error_code = buf[0] ? YE_INTERNAL : YE_NONE;
    store_col_text(s, 10, t->error_message, sizeof t->error_message);
    t->created_at = db_col_int64(s, 11);
    t->started_at = db_col_int64(s, 12);
    t->finished_at = db_col_int64(s, 13);
    store_col_text(s, 14, t->owner, sizeof t->owner);
    t->cancellable = db_col_int(s, 15) != 0;
    t->cancel_requested = db_col_int(s, 16) != 0;
    t->params = col_dup(s, 17);
    t->pid = (int32_t)db_col_int64(s, 18);
    t->pid_start = (uint64_t)db_col_int64(s, 19);
}

int store_task_insert(struct store *st, const struct task_rec *t)
{
    struct db_stmt *s = store_prep(st, "INSERT INTO tasks(" TASK_COLS
                                       ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    bind_task(s, t);
    return store_step_done(st, s, "insert task");
}

int store_task_update(struct store *st, const struct task_rec *t)
{
    struct db_stmt *s =
        store_prep(st, "UPDATE tasks SET kind=?2,object_type=?3,object_id=?4,object_name=?5,"
                       "state=?6,done=?7,total=?8,result=?9,error_code=?10,error_message=?11,"
                       "created_at=?12,started_at=?13,finished_at=?14,owner=?15,"
                       "cancellable=?16,cancel_requested=?17,params=?18,pid=?19,pid_start=?20 "
                       "WHERE id=?1");
    if (!s)
        return -1;
    bind_task(s, t);
    return store_step_done(st, s, "update task");
}

/* One row or none from s: 0, STORE_NOTFOUND or -1. */
static int one_row(struct store *st, struct db_stmt *s, struct task_rec *out, const char *what)
{
    int rc = db_step(s), ret;
    if (rc == DB_ROW) {
        read_task(s, out);
        ret = 0;
    } else if (rc == DB_DONE) {
        ret = STORE_NOTFOUND;
    } else {
        ret = store_fail(st, what);
    }
    db_finish(s);
    return ret;
}

int store_task_get(struct store *st, const char *id, struct task_rec *out)
{
    struct db_stmt *s = store_prep(st, "SELECT " TASK_COLS " FROM tasks WHERE id=?1");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    int rc = one_row(st, s, out, "get task");
    if (rc != STORE_NOTFOUND || strlen(id) < 8 || strlen(id) > 36)
        return rc;
    /* a unique prefix */
    s = store_prep(st, "SELECT " TASK_COLS " FROM tasks WHERE substr(id,1,?2)=?1 LIMIT 2");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    db_bind_int(s, 2, (int)strlen(id));
    rc = db_step(s);
    int ret = STORE_NOTFOUND;
    if (rc == DB_ROW) {
        read_task(s, out);
        ret = 0;
        if (db_step(s) == DB_ROW) { /* ambiguous */
            task_rec_clear(out);
            ret = STORE_NOTFOUND;
        }
    } else if (rc != DB_DONE) {
        ret = store_fail(st, "get task");
    }
    db_finish(s);
    return ret;
}

int store_task_active(struct store *st, const char *object_id, struct task_rec *out)
{
    struct db_stmt *s = store_prep(st, "SELECT " TASK_COLS " FROM tasks WHERE object_id=?1 AND "
                                       "state IN ('queued','running') ORDER BY created_at LIMIT 1");
    if (!s)
        return -1;
    db_bind_text(s, 1, object_id);
    return one_row(st, s, out, "active task");
}

void store_task_rows_free(struct task_rec *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        task_rec_clear(&rows[i]);
    free(rows);
}

int store_task_list(struct store *st, const struct task_filter *f, struct task_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    /* ties on created_at in insertion order: SQLite's rowid, PostgreSQL's seq */
#define TASK_LIST(ORDER)                                                                           \
    "SELECT " TASK_COLS " FROM tasks WHERE (?1 = '' OR state = ?1)"                                \
    " AND (?2 = 0 OR state IN ('queued','running'))"                                               \
    " AND (?3 = '' OR object_name = ?3 OR object_id = ?3)"                                         \
    " ORDER BY created_at DESC, " ORDER " DESC LIMIT ?4"
    struct db_stmt *s =
        store_prep(st, db_dialect(st->db) == DB_PG ? TASK_LIST("seq") : TASK_LIST("rowid"));
    if (!s)
        return -1;
    db_bind_text(s, 1, f && f->state >= 0 ? task_state_name((enum task_state)f->state) : "");
    db_bind_int(s, 2, f && f->unfinished);
    db_bind_text(s, 3, f && f->object ? f->object : "");
    db_bind_int(s, 4, f && f->limit > 0 ? f->limit : 100);
    size_t cap = 0;
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        if (store_grow(out, &cap, *n, sizeof **out) < 0) {
            rc = DB_ERROR;
            break;
        }
        read_task(s, &(*out)[(*n)++]);
    }
    if (rc != DB_DONE) {
        store_fail(st, "list tasks");
        db_finish(s);
        store_task_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    db_finish(s);
    return 0;
}

int store_task_prune(struct store *st, int keep)
{
    struct db_stmt *s =
        store_prep(st, "DELETE FROM tasks WHERE state NOT IN ('queued','running') AND id NOT IN ("
                       "SELECT id FROM tasks WHERE state NOT IN ('queued','running')"
                       " ORDER BY created_at DESC LIMIT ?1)");
    if (!s)
        return -1;
    db_bind_int(s, 1, keep);
    int rc = db_step(s);
    db_finish(s);
    if (rc != DB_DONE)
        return store_fail(st, "prune tasks");
    return (int)db_changes(st->db);
}
