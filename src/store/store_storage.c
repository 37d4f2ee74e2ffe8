/*
 * store_storage.c - the volumes table (disks in storage pools, with the
 * linked-clone relation and attachment to a VM) and the snapshots table
 * (a VM's disk snapshots, a tree through `parent`).
 */
#include "store/store_internal.h"

#include <string.h>

#define VOL_COLS                                                                                   \
    "id,name,pool,format,path,virtual_size,backing,attached_to,state,created_at,task,host"

static void bind_volume(struct db_stmt *s, const struct volume_rec *v)
{
    db_bind_text(s, 1, v->id);
    db_bind_text(s, 2, v->name);
    db_bind_text(s, 3, v->pool);
    db_bind_text(s, 4, v->format);
    db_bind_text(s, 5, v->path);
    db_bind_int64(s, 6, (int64_t)v->virtual_size);
    db_bind_text(s, 7, v->backing);
    db_bind_text(s, 8, v->attached_to);
    db_bind_text(s, 9, vol_state_name(v->state));
    db_bind_int64(s, 10, v->created_at);
    db_bind_text(s, 11, v->task);
    db_bind_text(s, 12, v->host);
}

static void read_volume(struct db_stmt *s, void *elem)
{
    struct volume_rec *v = elem;
    store_col_text(s, 0, v->id, sizeof(v->id));
    store_col_text(s, 1, v->name, sizeof(v->name));
    store_col_text(s, 2, v->pool, sizeof(v->pool));
    store_col_text(s, 3, v->format, sizeof(v->format));
    store_col_text(s, 4, v->path, sizeof(v->path));
    v->virtual_size = (uint64_t)db_col_int64(s, 5);
    store_col_text(s, 6, v->backing, sizeof(v->backing));
    store_col_text(s, 7, v->attached_to, sizeof(v->attached_to));
    char state[16];
    store_col_text(s, 8, state, sizeof(state));
    if (vol_state_parse(state, &v->state) < 0)
        v->state = VOL_CREATING; /* unreadable: an intent, rolled back, never trusted */
    v->created_at = db_col_int64(s, 9);
    store_col_text(s, 10, v->task, sizeof(v->task));
    store_col_text(s, 11, v->host, sizeof(v->host));
}

int store_volume_insert(struct store *st, const struct volume_rec *v)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO volumes(" VOL_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    bind_volume(s, v);
    return store_step_done(st, s, "insert volume");
}

int store_volume_update(struct store *st, const struct volume_rec *v)
{
    struct db_stmt *s = store_prep(st, "UPDATE volumes SET name=?2,pool=?3,format=?4,path=?5,"
                                       "virtual_size=?6,backing=?7,attached_to=?8,state=?9,"
                                       "created_at=?10,task=?11,host=?12 WHERE id=?1");
    if (!s)
        return -1;
    bind_volume(s, v);
    return store_step_done(st, s, "update volume");
}

int store_volume_delete(struct store *st, const char *id)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM volumes WHERE id=?");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    return store_step_done(st, s, "delete volume");
}

int store_volume_get(struct store *st, const char *name, struct volume_rec *out)
{
    return store_get_one(st, "SELECT " VOL_COLS " FROM volumes WHERE name=?1 OR id=?1", name,
                         sizeof *out, read_volume, out, "get volume");
}

int store_volume_list(struct store *st, struct volume_rec **out, size_t *n)
{
    struct db_stmt *s = store_prep(st, "SELECT " VOL_COLS " FROM volumes ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), read_volume, out, n, "list volumes");
}

int store_volume_list_attached(struct store *st, const char *vm_id, struct volume_rec **out,
                               size_t *n)
{
    struct db_stmt *s =
        store_prep(st, "SELECT " VOL_COLS " FROM volumes WHERE attached_to=? ORDER BY created_at");
    if (!s)
        return -1;
    db_bind_text(s, 1, vm_id);
    return store_collect(st, s, sizeof(**out), read_volume, out, n, "list attached volumes");
}

int store_volume_dependents(struct store *st, const char *name, int *count)
{
    return store_count(st, "SELECT count(*) FROM volumes WHERE backing=?", name, count,
                       "count clones");
}

/* ---- snapshots ---- */

#define SNAP_COLS "id,vm_id,name,file,parent,state,consistency,new_disk,created_at"

static void bind_snapshot(struct db_stmt *s, const struct snapshot_rec *v)
{
    db_bind_text(s, 1, v->id);
    db_bind_text(s, 2, v->vm_id);
    db_bind_text(s, 3, v->name);
    db_bind_text(s, 4, v->file);
    db_bind_text(s, 5, v->parent);
    db_bind_text(s, 6, snap_state_name(v->state));
    db_bind_text(s, 7, v->consistency);
    db_bind_text(s, 8, v->new_disk);
    db_bind_int64(s, 9, v->created_at);
}

static void read_snapshot(struct db_stmt *s, void *elem)
{
    struct snapshot_rec *v = elem;
    store_col_text(s, 0, v->id, sizeof(v->id));
    store_col_text(s, 1, v->vm_id, sizeof(v->vm_id));
    store_col_text(s, 2, v->name, sizeof(v->name));
    store_col_text(s, 3, v->file, sizeof(v->file));
    store_col_text(s, 4, v->parent, sizeof(v->parent));
    char state[16];
    store_col_text(s, 5, state, sizeof(state));
    if (snap_state_parse(state, &v->state) < 0)
        v->state = SNAP_READY; /* unknown (a later schema): left alone, nothing undone */
    store_col_text(s, 6, v->consistency, sizeof(v->consistency));
    store_col_text(s, 7, v->new_disk, sizeof(v->new_disk));
    v->created_at = db_col_int64(s, 8);
}

int store_snapshot_insert(struct store *st, const struct snapshot_rec *v)
{
    struct db_stmt *s =
        store_prep(st, "INSERT INTO snapshots(" SNAP_COLS ") VALUES(?,?,?,?,?,?,?,?,?)");
    if (!s)
        return -1;
    bind_snapshot(s, v);
    return store_step_done(st, s, "insert snapshot");
}

int store_snapshot_update(struct store *st, const struct snapshot_rec *v)
{
    struct db_stmt *s =
        store_prep(st, "UPDATE snapshots SET vm_id=?2,name=?3,file=?4,parent=?5,"
                       "state=?6,consistency=?7,new_disk=?8,created_at=?9 WHERE id=?1");
    if (!s)
        return -1;
    bind_snapshot(s, v);
    return store_step_done(st, s, "update snapshot");
}

int store_snapshot_delete(struct store *st, const char *id)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM snapshots WHERE id=?");
    if (!s)
        return -1;
    db_bind_text(s, 1, id);
    return store_step_done(st, s, "delete snapshot");
}

int store_snapshot_list(struct store *st, const char *vm_id, struct snapshot_rec **out, size_t *n)
{
    struct db_stmt *s = store_prep(st, "SELECT " SNAP_COLS " FROM snapshots WHERE vm_id=? "
                                       "ORDER BY created_at, name");
    if (!s)
        return -1;
    db_bind_text(s, 1, vm_id);
    return store_collect(st, s, sizeof(**out), read_snapshot, out, n, "list snapshots");
}
