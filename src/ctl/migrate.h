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

/* ---- the move itself (migrate.c, migrate_run.c, migrate_settle.c) ---- */
struct migration_rec;
struct task_rec;
/* The phases of a migrations row, in order; rolled_back ends a move that
 * did not commit. The VM's owner is the source until "committed". */
#define MIG_PHASES "prepared target_started mirroring memory switchover committed done rolled_back"

/* The move ended: m is the row as it was left (phase done, or rolled_back /
 * still open with m->error), err NULL when it succeeded. */
typedef void (*migrate_done_fn)(void *arg, const struct migration_rec *m, const struct yerr *err);
/* Starts moving the running VM `name` to o->to (o->to "": the planner hook,
 * migrate_choose_target). The checks (unknown target 404; target down, in
 * maintenance, the VM's own host, without capacity 409; VM not running,
 * with snapshots or volumes 409; options 400) change nothing. 0
 * with the vm.migrate task begun (task_out, may be NULL), cb (may be NULL)
 * later once; -1 with err (cb never runs). */
int ctl_vm_migrate(struct ctl *c, const char *name, const struct migrate_opts *o,
                   migrate_done_fn cb, void *arg, struct task_rec *task_out, struct yerr *err);
/* Settles every open migrations row no live move of this process holds:
 * one that reached "committed" rolls forward (the target conted, the
 * source ended and its files removed), any other rolls back (the target's
 * QEMU ended and its files removed, then the source's migration and
 * mirror cancelled and its QEMU conted). A step whose host cannot be
 * reached leaves the row open for the next call. At the controller's start
 * and on every reconcile pass. */
void ctl_migrations_settle(struct ctl *c);
/* A migration of vm_id is open (its row is not done or rolled back). */
bool ctl_migration_open(struct ctl *c, const char *vm_id);
/* The controller stops: the live moves are dropped (their rows stay open
 * for the next controller's settle). */
void ctl_migrations_shutdown(struct ctl *c);
/* The recover function of the vm.migrate task kind: a row that committed
 * makes the interrupted task succeeded. */
void ctl_migrate_register(struct ctl *c);

#endif
