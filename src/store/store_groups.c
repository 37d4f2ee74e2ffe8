/*
 * store_groups.c - the placement groups' table (vm_groups): a name, its
 * policy (affinity or anti-affinity), hard or soft, and a limit of members
 * per host (store_place.h).
 */
#include "store/store_internal.h"
#include "store/store_place.h"

#include <string.h>

#define GROUP_COLS "name,policy,hard,max_per_host,created_at"

int store_group_insert(struct store *st, const struct group_rec *g)
{
    struct db_stmt *s = store_prep(st, "INSERT INTO vm_groups(" GROUP_COLS ") VALUES(?,?,?,?,?)");
    if (!s)
        return -1;
    db_bind_text(s, 1, g->name);
    db_bind_text(s, 2, g->policy);
    db_bind_int(s, 3, g->hard ? 1 : 0);
    db_bind_int(s, 4, g->max_per_host);
    db_bind_int64(s, 5, g->created_at);
    return store_step_done(st, s, "insert group");
}

static void row_group(struct db_stmt *s, void *e)
{
    struct group_rec *g = e;
    store_col_text(s, 0, g->name, sizeof(g->name));
    store_col_text(s, 1, g->policy, sizeof(g->policy));
    g->hard = db_col_int(s, 2);
    g->max_per_host = db_col_int(s, 3);
    g->created_at = db_col_int64(s, 4);
}

int store_group_get(struct store *st, const char *name, struct group_rec *out)
{
    return store_get_one(st, "SELECT " GROUP_COLS " FROM vm_groups WHERE name=?", name, sizeof *out,
                         row_group, out, "get group");
}

int store_group_list(struct store *st, struct group_rec **out, size_t *n)
{
    struct db_stmt *s = store_prep(st, "SELECT " GROUP_COLS " FROM vm_groups ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), row_group, out, n, "list groups");
}

int store_group_delete(struct store *st, const char *name)
{
    struct db_stmt *s = store_prep(st, "DELETE FROM vm_groups WHERE name=?");
    if (!s)
        return -1;
    db_bind_text(s, 1, name);
    return store_step_done(st, s, "delete group");
}

int store_group_members(struct store *st, const char *name, int *count)
{
    return store_count(st, "SELECT count(*) FROM vms WHERE grp=?", name, count,
                       "count group members");
}
