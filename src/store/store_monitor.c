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
    sqlite3_stmt *s =
        store_prep(st, "INSERT INTO alert_rules(id,name,spec,created_at) VALUES(?,?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, spec, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, created_at);
    return store_step_done(st, s, "insert rule");
}

int store_rule_delete(struct store *st, const char *name)
{
    sqlite3_stmt *s = store_prep(st, "DELETE FROM alert_rules WHERE name=?1 OR id=?1");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    return store_step_done(st, s, "delete rule");
}

int store_rule_silence(struct store *st, const char *name, int64_t until)
{
    sqlite3_stmt *s =
        store_prep(st, "UPDATE alert_rules SET silenced_until=?2 WHERE name=?1 OR id=?1");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, until);
    return store_step_done(st, s, "silence rule");
}

int store_rule_list(struct store *st, struct rule_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = store_prep(
        st, "SELECT id,name,spec,silenced_until,created_at FROM alert_rules ORDER BY name");
    if (!s)
        return -1;
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (store_grow(out, &cap, *n, sizeof(**out)) < 0) {
            rc = SQLITE_NOMEM;
            break;
        }
        struct rule_row *r = &(*out)[(*n)++];
        store_col_text(s, 0, r->id, sizeof(r->id));
        store_col_text(s, 1, r->name, sizeof(r->name));
        const unsigned char *spec = sqlite3_column_text(s, 2);
        r->spec = strdup(spec ? (const char *)spec : "{}");
        r->silenced_until = sqlite3_column_int64(s, 3);
        r->created_at = sqlite3_column_int64(s, 4);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
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
    sqlite3_stmt *s;
    if (a->id == 0)
        s = store_prep(st, "INSERT INTO alerts(rule,object,state,severity,value,started_at,"
                           "fired_at,resolved_at,notified_at,notifications) "
                           "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
    else
        s = store_prep(st, "UPDATE alerts SET rule=?1,object=?2,state=?3,severity=?4,value=?5,"
                           "started_at=?6,fired_at=?7,resolved_at=?8,notified_at=?9,"
                           "notifications=?10 WHERE id=?11");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, a->rule, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->object, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, a->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, a->severity, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 5, a->value);
    sqlite3_bind_int64(s, 6, a->started_at);
    sqlite3_bind_int64(s, 7, a->fired_at);
    sqlite3_bind_int64(s, 8, a->resolved_at);
    sqlite3_bind_int64(s, 9, a->notified_at);
    sqlite3_bind_int(s, 10, a->notifications);
    if (a->id)
        sqlite3_bind_int64(s, 11, a->id);
    bool insert = a->id == 0;
    int rc = store_step_done(st, s, insert ? "insert alert" : "update alert");
    if (rc == 0 && insert)
        a->id = sqlite3_last_insert_rowid(st->db);
    return rc;
}

static void row_alert(sqlite3_stmt *s, void *elem)
{
    struct alert_row *a = elem;
    a->id = sqlite3_column_int64(s, 0);
    store_col_text(s, 1, a->rule, sizeof(a->rule));
    store_col_text(s, 2, a->object, sizeof(a->object));
    store_col_text(s, 3, a->state, sizeof(a->state));
    store_col_text(s, 4, a->severity, sizeof(a->severity));
    a->value = sqlite3_column_double(s, 5);
    a->started_at = sqlite3_column_int64(s, 6);
    a->fired_at = sqlite3_column_int64(s, 7);
    a->resolved_at = sqlite3_column_int64(s, 8);
    a->notified_at = sqlite3_column_int64(s, 9);
    a->notifications = sqlite3_column_int(s, 10);
}

int store_alert_list(struct store *st, const char *state, int limit, struct alert_row **out,
                     size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s =
        store_prep(st, "SELECT id,rule,object,state,severity,value,started_at,fired_at,resolved_at,"
                       "notified_at,notifications FROM alerts WHERE (?1 IS NULL OR state=?1) "
                       "ORDER BY id DESC LIMIT ?2");
    if (!s)
        return -1;
    if (state)
        sqlite3_bind_text(s, 1, state, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_int(s, 2, limit);
    return store_collect(st, s, sizeof(**out), row_alert, out, n, "list alerts");
}

int store_rollup_add(struct store *st, const char *object, const char *metric, int step, int64_t ts,
                     double avg, double min, double max)
{
    sqlite3_stmt *s = store_prep(st, "INSERT OR REPLACE INTO metric_rollups"
                                     "(object,metric,step,ts,avg,min,max) VALUES(?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, object, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, step);
    sqlite3_bind_int64(s, 4, ts);
    sqlite3_bind_double(s, 5, avg);
    sqlite3_bind_double(s, 6, min);
    sqlite3_bind_double(s, 7, max);
    return store_step_done(st, s, "insert rollup");
}

static void row_rollup(sqlite3_stmt *s, void *elem)
{
    struct rollup_row *r = elem;
    r->ts = sqlite3_column_int64(s, 0);
    r->avg = sqlite3_column_double(s, 1);
    r->min = sqlite3_column_double(s, 2);
    r->max = sqlite3_column_double(s, 3);
}

int store_rollup_query(struct store *st, const char *object, const char *metric, int step,
                       int64_t since, struct rollup_row **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *s = store_prep(st, "SELECT ts,avg,min,max FROM metric_rollups WHERE object=? "
                                     "AND metric=? AND step=? AND ts>=? ORDER BY ts");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, object, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, metric, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, step);
    sqlite3_bind_int64(s, 4, since);
    return store_collect(st, s, sizeof(**out), row_rollup, out, n, "query rollups");
}

int store_rollup_compact(struct store *st, int from_step, int to_step, int64_t start)
{
    sqlite3_stmt *s = store_prep(
        st, "INSERT OR REPLACE INTO metric_rollups(object,metric,step,ts,avg,min,max) "
            "SELECT object, metric, ?2, ?3, avg(avg), min(min), max(max) FROM metric_rollups "
            "WHERE step=?1 AND ts>=?3 AND ts<?3+?2*1000 GROUP BY object, metric");
    if (!s)
        return -1;
    sqlite3_bind_int(s, 1, from_step);
    sqlite3_bind_int(s, 2, to_step);
    sqlite3_bind_int64(s, 3, start);
    int rc = store_step_done(st, s, "insert rollup");
    return rc == STORE_NOTFOUND ? 0 : rc;
}

int store_rollup_prune(struct store *st, int step, int64_t older_than)
{
    sqlite3_stmt *s = store_prep(st, "DELETE FROM metric_rollups WHERE step=? AND ts<?");
    if (!s)
        return -1;
    sqlite3_bind_int(s, 1, step);
    sqlite3_bind_int64(s, 2, older_than);
    int rc = store_step_done(st, s, "prune rollups");
    return rc == STORE_NOTFOUND ? 0 : rc;
}
