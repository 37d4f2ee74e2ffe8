/*
 * store_monitor.c - the monitor's tables: alert rules, alert history and
 * metric rollups (1-minute and 1-hour aggregates of the in-memory samples).
 */
#include "store/store_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_rule_insert(struct store *st, const char *id, const char *name, const char *spec,
                      int64_t created_at)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO alert_rules(id,name,spec,created_at) VALUES(?,?,?,?)");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    db_bind_text(s, 2, name);
    db_bind_text(s, 3, spec);
    db_bind_int64(s, 4, created_at);
    return store_step_done(st, s, "insert rule");
}

int store_rule_delete(struct store *st, const char *name)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM alert_rules WHERE name=?1 OR id=?1");
    if (!s)
        return -1;
    db_bind_text(s, 1, name);
    return store_step_done(st, s, "delete rule");
}

int store_rule_silence(struct store *st, const char *name, int64_t until)
{
    struct db_stmt *s =
        store_prep(st, "UPDATE alert_rules SET silenced_until=?2 WHERE name=?1 OR id=?1");
    if (!s)
        return -1;
    db_bind_text(s, 1, name);
    db_bind_int64(s, 2, until);
    return store_step_done(st, s, "silence rule");
}

int store_rule_list(struct store *st, struct rule_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s = store_prep(
        st, "SELECT id,name,spec,silenced_until,created_at FROM alert_rules ORDER BY name");
    if (!s)
        return -1;
    size_t cap = 0;
    int rc;
    while ((rc = db_step(s)) == DB_ROW) {
        if (store_grow(out, &cap, *n, sizeof(**out)) < 0) {
            rc = DB_ERROR;
            break;
        }
        struct rule_row *r = &(*out)[(*n)++];
        store_col_text(s, 0, r->id, sizeof(r->id));
        store_col_text(s, 1, r->name, sizeof(r->name));
        const char *spec = db_col_text(s, 2);
        r->spec = strdup(spec ? (const char *)spec : "{}");
        r->silenced_until = db_col_int64(s, 3);
        r->created_at = db_col_int64(s, 4);
    }
    db_finish(s);
    if (rc != DB_DONE) {
        store_rule_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
        return store_fail(st, "list rules");
    }
    return 0;
}

void store_rule_rows_free(struct rule_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rows[i].spec);
    free(rows);
}

int store_alert_save(struct store *st, struct alert_row *a)
{
    struct db_stmt *s;
    if (a->id == 0)
        s = store_prep(st, "INSERT INTO alerts(rule,object,state,severity,value,started_at,"
                           "fired_at,resolved_at,notified_at,notifications) "
                           "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) RETURNING id");
    else
        s = store_prep(st, "UPDATE alerts SET rule=?1,object=?2,state=?3,severity=?4,value=?5,"
                           "started_at=?6,fired_at=?7,resolved_at=?8,notified_at=?9,"
                           "notifications=?10 WHERE id=?11");
    if (!s)
        return -1;
    db_bind_text(s, 1, a->rule);
    db_bind_text(s, 2, a->object);
    db_bind_text(s, 3, a->state);
    db_bind_text(s, 4, a->severity);
    db_bind_double(s, 5, a->value);
    db_bind_int64(s, 6, a->started_at);
    db_bind_int64(s, 7, a->fired_at);
    db_bind_int64(s, 8, a->resolved_at);
    db_bind_int64(s, 9, a->notified_at);
    db_bind_int(s, 10, a->notifications);
    if (a->id)
        db_bind_int64(s, 11, a->id);
    if (a->id)
        return store_step_done(st, s, "update alert");
    int rc = db_step(s), ret = 0;
    if (rc == DB_ROW)
        a->id = db_col_int64(s, 0);
    else
        ret = store_fail(st, "insert alert");
    db_finish(s);
    return ret;
}

static void row_alert(struct db_stmt *s, void *elem)
{
    struct alert_row *a = elem;
    a->id = db_col_int64(s, 0);
    store_col_text(s, 1, a->rule, sizeof(a->rule));
    store_col_text(s, 2, a->object, sizeof(a->object));
    store_col_text(s, 3, a->state, sizeof(a->state));
    store_col_text(s, 4, a->severity, sizeof(a->severity));
    a->value = db_col_double(s, 5);
    a->started_at = db_col_int64(s, 6);
    a->fired_at = db_col_int64(s, 7);
    a->resolved_at = db_col_int64(s, 8);
    a->notified_at = db_col_int64(s, 9);
    a->notifications = db_col_int(s, 10);
}

int store_alert_list(struct store *st, const char *state, int limit, struct alert_row **out,
                     size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s =
        store_prep(st, "SELECT id,rule,object,state,severity,value,started_at,fired_at,resolved_at,"
                       "notified_at,notifications FROM alerts WHERE (?1 IS NULL OR state=?1) "
                       "ORDER BY id DESC LIMIT ?2");
    if (!s)
        return -1;
    if (state)
        db_bind_text(s, 1, state);
    else
        db_bind_null(s, 1);
    db_bind_int(s, 2, limit);
    return store_collect(st, s, sizeof(**out), row_alert, out, n, "list alerts");
}

/* One row per series and slot: a second write of a slot replaces it. */
#define ROLLUP_UPSERT                                                                              \
    " ON CONFLICT(object,metric,step,ts) DO UPDATE SET avg=excluded.avg,min=excluded.min,"         \
    "max=excluded.max"

int store_rollup_add(struct store *st, const char *object, const char *metric, int step, int64_t ts,
                     double avg, double min, double max)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO metric_rollups(object,metric,step,ts,avg,min,max)"
                       " VALUES(?,?,?,?,?,?,?)" ROLLUP_UPSERT);
    if (!s)
        return -1;
    db_bind_text(s, 1, object);
    db_bind_text(s, 2, metric);
    db_bind_int(s, 3, step);
    db_bind_int64(s, 4, ts);
    db_bind_double(s, 5, avg);
    db_bind_double(s, 6, min);
    db_bind_double(s, 7, max);
    return store_step_done(st, s, "insert rollup");
}

static void row_rollup(struct db_stmt *s, void *elem)
{
    struct rollup_row *r = elem;
    r->ts = db_col_int64(s, 0);
    r->avg = db_col_double(s, 1);
    r->min = db_col_double(s, 2);
    r->max = db_col_double(s, 3);
}

int store_rollup_query(struct store *st, const char *object, const char *metric, int step,
                       int64_t since, struct rollup_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s = store_prep(st, "SELECT ts,avg,min,max FROM metric_rollups WHERE object=? "
                                       "AND metric=? AND step=? AND ts>=? ORDER BY ts");
    if (!s)
        return -1;
    db_bind_text(s, 1, object);
    db_bind_text(s, 2, metric);
    db_bind_int(s, 3, step);
    db_bind_int64(s, 4, since);
    return store_collect(st, s, sizeof(**out), row_rollup, out, n, "query rollups");
}

int store_rollup_compact(struct store *st, int from_step, int to_step, int64_t start)
{
    struct db_stmt *s = store_prep(
        st, "INSERT INTO metric_rollups(object,metric,step,ts,avg,min,max) "
            "SELECT object, metric, ?2, ?3, avg(avg), min(min), max(max) FROM metric_rollups "
            "WHERE step=?1 AND ts>=?3 AND ts<?3+?2*1000 GROUP BY object, metric" ROLLUP_UPSERT);
    if (!s)
        return -1;
    db_bind_int(s, 1, from_step);
    db_bind_int(s, 2, to_step);
    db_bind_int64(s, 3, start);
    int rc = store_step_done(st, s, "insert rollup");
    return rc == STORE_NOTFOUND ? 0 : rc;
}

int store_rollup_prune(struct store *st, int step, int64_t older_than)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM metric_rollups WHERE step=? AND ts<?");
    if (!s)
        return -1;
    db_bind_int(s, 1, step);
    db_bind_int64(s, 2, older_than);
    int rc = store_step_done(st, s, "prune rollups");
    return rc == STORE_NOTFOUND ? 0 : rc;
}
