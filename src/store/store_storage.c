/*
 * store_storage.c - the volumes table: disks in storage pools, with the
 * linked-clone relation (backing) and attachment to a VM.
 */
#include "store/store_internal.h"

#include <string.h>

#define VOL_COLS "id,name,pool,format,path,virtual_size,backing,attached_to,state,created_at"

static void bind_volume(sqlite3_stmt *s, const struct volume_rec *v)
{
    sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, v->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, v->pool, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, v->format, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, v->path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)v->virtual_size);
    sqlite3_bind_text(s, 7, v->backing, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, v->attached_to, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 9, v->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 10, v->created_at);
}

static void read_volume(sqlite3_stmt *s, void *elem)
{
    struct volume_rec *v = elem;
    store_col_text(s, 0, v->id, sizeof(v->id));
    store_col_text(s, 1, v->name, sizeof(v->name));
    store_col_text(s, 2, v->pool, sizeof(v->pool));
    store_col_text(s, 3, v->format, sizeof(v->format));
    store_col_text(s, 4, v->path, sizeof(v->path));
    v->virtual_size = (uint64_t)sqlite3_column_int64(s, 5);
    store_col_text(s, 6, v->backing, sizeof(v->backing));
    store_col_text(s, 7, v->attached_to, sizeof(v->attached_to));
    store_col_text(s, 8, v->state, sizeof(v->state));
    v->created_at = sqlite3_column_int64(s, 9);
}

int store_volume_insert(struct store *st, const struct volume_rec *v)
{
    sqlite3_stmt *s =
        store_prep(st, "INSERT INTO volumes(" VOL_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    bind_volume(s, v);
    return store_step_done(st, s, "insert volume");
}

int store_volume_update(struct store *st, const struct volume_rec *v)
{
    sqlite3_stmt *s = store_prep(st, "UPDATE volumes SET name=?2,pool=?3,format=?4,path=?5,"
                                     "virtual_size=?6,backing=?7,attached_to=?8,state=?9,"
                                     "created_at=?10 WHERE id=?1");
    if (!s)
        return -1;
    bind_volume(s, v);
    return store_step_done(st, s, "update volume");
}

int store_volume_delete(struct store *st, const char *id)
{
    sqlite3_stmt *s = store_prep(st, "DELETE FROM volumes WHERE id=?");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    return store_step_done(st, s, "delete volume");
}

int store_volume_get(struct store *st, const char *name, struct volume_rec *out)
{
    sqlite3_stmt *s = store_prep(st, "SELECT " VOL_COLS " FROM volumes WHERE name=?1 OR id=?1");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), ret;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof(*out));
        read_volume(s, out);
        ret = 0;
    } else {
        ret = rc == SQLITE_DONE ? STORE_NOTFOUND : store_fail(st, "get volume");
    }
    sqlite3_finalize(s);
    return ret;
}

int store_volume_list(struct store *st, struct volume_rec **out, size_t *n)
{
    sqlite3_stmt *s = store_prep(st, "SELECT " VOL_COLS " FROM volumes ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), read_volume, out, n, "list volumes");
}

int store_volume_dependents(struct store *st, const char *name, int *count)
{
    sqlite3_stmt *s = store_prep(st, "SELECT count(*) FROM volumes WHERE backing=?");
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int ret = 0;
    if (sqlite3_step(s) == SQLITE_ROW)
        *count = sqlite3_column_int(s, 0);
    else
        ret = store_fail(st, "count clones");
    sqlite3_finalize(s);
    return ret;
}
