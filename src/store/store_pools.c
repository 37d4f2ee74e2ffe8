/*
 * store_pools.c - storage pools declared by name (the pools table, the HA
 * schema entry): a path, and whether every host sees the same one there.
 */
#include "store/store_internal.h"

#include <string.h>

#define POOL_COLS "name,path,shared,created_at"

static void read_pool(struct db_stmt *s, void *e)
{
    struct pool_rec *p = e;
    store_col_text(s, 0, p->name, sizeof p->name);
    store_col_text(s, 1, p->path, sizeof p->path);
    p->shared = db_col_int(s, 2);
    p->created_at = db_col_int64(s, 3);
}

int store_pool_insert(struct store *st, const struct pool_rec *p)
{
    struct db_stmt *s = store_prep(st, "INSERT INTO pools(" POOL_COLS ") VALUES(?1,?2,?3,?4)");
    if (!s)
        return -1;
    db_bind_text(s, 1, p->name);
    db_bind_text(s, 2, p->path);
    db_bind_int(s, 3, p->shared);
    db_bind_int64(s, 4, p->created_at);
    return store_step_done(st, s, "insert pool");
}

int store_pool_get(struct store *st, const char *name, struct pool_rec *out)
{
    return store_get_one(st, "SELECT " POOL_COLS " FROM pools WHERE name=?1", name, sizeof *out,
                         read_pool, out, "get pool");
}

int store_pool_list(struct store *st, struct pool_rec **out, size_t *n)
{
    struct db_stmt *s = store_prep(st, "SELECT " POOL_COLS " FROM pools ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof **out, read_pool, out, n, "list pools");
}

int store_pool_delete(struct store *st, const char *name)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM pools WHERE name=?1");
    if (!s)
        return -1;
    db_bind_text(s, 1, name);
    return store_step_done(st, s, "delete pool");
}

int store_pool_users(struct store *st, const char *name, int *count)
{
    return store_count(st, "SELECT count(*) FROM vms WHERE pool=?1", name, count, "pool users");
}
