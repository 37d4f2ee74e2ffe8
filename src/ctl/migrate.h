/*
 * migrate.h - moving a VM to another host. The move itself (the
 * vm.migrate task, the migrations row that says which host owns the VM in
 * each phase, the settling of a move a crash interrupted) is migrate*.c;
 * choosing the target and predicting the move before it starts (CPU
 * compatibility, strategy, dirty rate and link measured, pre-copy model)
 * is migrate_plan.c.
 */
#ifndef YUN_CTL_MIGRATE_H
#define YUN_CTL_MIGRATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/yerr.h"

struct ctl;
struct vm_rec;

/* What the operator asked for (POST /v1/vms/{name}/migrate, `yun vm migrate`). */
struct migrate_opts {
    char to[64];            /* target host, id or name ("" = choose by strategy) */
    char strategy[16];      /* least-loaded|round-robin|random|pack|spread ("" = the default) */
    uint64_t max_bandwidth; /* bytes/s, 0 = unlimited */
    int max_downtime_ms;    /* 0 = QEMU's default */
    bool auto_converge, postcopy, dry_run;
};

/* The plan of a move, answered from the loop. err == NULL: go, plan is
 * {"target": {"id", "name"}, "strategy", "cpu_model", "prediction": {...}}
 * (owned by the callee; the callback borrows it). err != NULL: refused or
 * failed; plan (may be NULL) then still carries the numbers behind a
 * refusal. */
typedef void (*migrate_plan_cb)(void *arg, json_t *plan, const struct yerr *err);
void ctl_migrate_plan(struct ctl *c, const struct vm_rec *vm, const struct migrate_opts *o,
                      migrate_plan_cb cb, void *arg);

#endif
