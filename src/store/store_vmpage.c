/*
 * store_vmpage.c - the vms table read a slice at a time: a page of rows by
 * name (GET /v1/vms?limit=&after=, the reconcile pass's slices) and every
 * host's rows (by the vms_host index), every
 * row's key columns only (id, host, state: the reconcile pass's list of
 * the rows a host has, in one cheap read).
 */
#include "store/store_internal.h"

#include <stdlib.h>
#include <string.h>

static void row_vm(struct db_stmt *s, void *e)
{
    store_read_vm(s, e);
}

int store_vm_list_page(struct store *st, const char *after, size_t limit, struct vm_rec **out,
                       size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!limit)
        return 0;
    struct db_stmt *s =
        store_prep(st, "SELECT " VM_COLS " FROM vms WHERE name > ?1 ORDER BY name LIMIT ?2");
    if (!s)
        return -1;
    db_bind_text(s, 1, after ? after : "");
    db_bind_int64(s, 2, (int64_t)limit);
    return store_collect(st, s, sizeof(**out), row_vm, out, n, "list vms");
}

int store_vm_list_host(struct store *st, const char *host, struct vm_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s = store_prep(st, "SELECT " VM_COLS " FROM vms WHERE host=?1 ORDER BY name");
    if (!s)
        return -1;
    db_bind_text(s, 1, host);
    return store_collect(st, s, sizeof(**out), row_vm, out, n, "list vms");
}

static void row_key(struct db_stmt *s, void *e)
{
    struct vm_key *k = e;
    char buf[32];
    store_col_text(s, 0, k->id, sizeof k->id);
    store_col_text(s, 1, k->host, sizeof k->host);
    store_col_text(s, 2, buf, sizeof buf);
    if (vm_state_parse(buf, &k->state) < 0)
        k->state = VM_STOPPED;
}

int store_vm_keys(struct store *st, struct vm_key **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct db_stmt *s = store_prep(st, "SELECT id,host,state FROM vms ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof(**out), row_key, out, n, "list vm keys");
}

int store_vm_list_ha_pending(struct store *st, struct vm_rec **out, size_t *n)
{
    struct db_stmt *s =
        store_prep(st, "SELECT " VM_COLS " FROM vms WHERE ha_from <> '' ORDER BY name");
    if (!s)
        return -1;
    return store_collect(st, s, sizeof **out, row_vm, out, n, "list pending ha restarts");
}
