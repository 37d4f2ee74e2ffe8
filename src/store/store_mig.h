/*
 * store_mig.h - the migrations table (schema: the "live migrations" entry of
 * store.c's list): one row per move of a running VM between hosts, written
 * phase by phase by ctl/migrate*.c. The row, not any process, says which
 * host owns the VM while the move is open (docs/cluster.md, "Live
 * migration").
 */
#ifndef YUN_STORE_MIG_H
#define YUN_STORE_MIG_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct migration_rec {
    char id[37];
    char vm_id[37];
    char vm_name[64];
    char source[37], target[37]; /* host ids */
    char phase[16];              /* prepared .. done | rolled_back (ctl/migrate.h) */
    char owner[37];              /* the host that owns the VM now */
    char task[37];
    int64_t started_at, updated_at;
    int32_t target_pid;
    uint32_t target_uid;
    char ports[256];       /* JSON {"address","nbd","migrate","source_pid","source_uid","made"} */
    char options[256];     /* JSON of the request's options */
    char prediction[1024]; /* JSON, the planner's (may be "") */
    char outcome[512];     /* JSON {"total_ms","downtime_ms","bytes",...} once done */
    char error[512];
};

int store_migration_insert(struct store *st, const struct migration_rec *m);
int store_migration_update(struct store *st, const struct migration_rec *m);
int store_migration_get(struct store *st, const char *id, struct migration_rec *out);
/* The rows not done and not rolled back, oldest first. */
int store_migration_list_open(struct store *st, struct migration_rec **out, size_t *n);
/* The open row of a VM (0), STORE_NOTFOUND, or -1. */
int store_migration_open_for(struct store *st, const char *vm_id, struct migration_rec *out);
/* The row of a task (0), STORE_NOTFOUND, or -1. */
int store_migration_by_task(struct store *st, const char *task_id, struct migration_rec *out);

#endif
