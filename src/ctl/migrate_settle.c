/*
 * migrate_settle.c - how a migration ends when it does not end by itself:
 * a live step that failed or was cancelled, or a row a crash left open
 * (ctl_migrations_settle, at the controller's start and on every reconcile
 * pass). The rule is the row's phase:
 *
 *  - before "committed" the source owns the VM: roll back. First, on the
 *    source, a migration still running is cancelled and the mirror with it
 *    (QEMU resumes a guest it paused itself when its migration is
 *    cancelled; the target, still "inmigrate", cannot run). Then the target
 *    QEMU is ended (vm.end, and its answer waited for) and its files,
 *    cgroup and uid claim removed (vm.remove). Only then, on the source,
 *    the NBD node is deleted and a guest left paused (a migration that had
 *    completed: the target held the whole state) is conted.
 *  - from "committed" on the target owns it: roll forward. The target is
 *    conted, the source QEMU ended and its files removed, the row "done".
 *
 * Every step may run again (a later settle repeats what a crash cut short).
 * A step whose host cannot be reached leaves the row open: the task ends
 * failed at once (naming what waits) and the next settle goes on.
 */
#include "ctl/migrate_int.h"

#include "ctl/hosts.h"
#include "ctl/pools.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB_WAIT_POLLS 100 /* 2 s for a cancelled mirror to go */

/* The host could not be asked (down, its agent gone, no answer): the row
 * stays open for the next settle. A QEMU that is not there (QMP: "yund
 * holds no connection") is not this. */
static bool unreachable(const struct yerr *err)
{
    return err && (err->code == YE_UNAVAILABLE || err->code == YE_TIMEOUT ||
                   err->code == YE_BAD_GATEWAY || err->code == YE_INTERNAL);
}

static void pending(struct mig *m, const char *step, const struct yerr *err)
{
    struct yerr e;
    yerr_set(&e, m->err.code ? m->err.code : err->code, "%s; settling it waits: %s: %s",
             m->err.code ? m->err.message : "interrupted", step, err->message);
    log_warn("migration %s of vm %s: %s", m->row.id, m->row.vm_name, e.message);
    mig_finish(m, &e);
}

static void closed(struct mig *m, const char *phase)
{
    if (!strcmp(phase, "rolled_back"))
        snprintf(m->row.error, sizeof m->row.error, "%s",
                 m->err.code ? m->err.message : "interrupted: the controller restarted");
    mig_save(m, phase);
    if (!strcmp(phase, "done")) {
        mig_finish(m, NULL);
        return;
    }
    struct yerr e = m->err;
    if (!e.code)
        yerr_set(&e, YE_INTERNAL, "interrupted: the controller restarted");
    mig_finish(m, &e);
}

static int32_t src_num(const struct mig *m, const char *key)
{
    json_t *p = json_loads(m->row.ports, 0, NULL);
    json_int_t v = json_integer_value(json_object_get(p, key));
    json_decref(p);
    return (int32_t)v;
}

/* ---- forward ---- */

static void src_vols_removed(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "removing the source's volume files", err);
    if (err)
        log_warn("migration of vm %s: the source's volume files: %s", m->row.vm_name, err->message);
    closed(m, "done");
}

static void src_removed(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "removing the source's files", err);
    if (err)
        log_warn("migration of vm %s: the source's files: %s", m->row.vm_name, err->message);
    mig_volumes_remove(m, false, src_vols_removed); /* their rows name the target now */
}

static void src_ended(struct mig *m, json_t *res, const struct yerr *err)
{
    if (unreachable(err))
        return pending(m, "ending the source's qemu", err);
    if (!err && !json_is_true(json_object_get(res, "ended"))) {
        struct yerr e;
        yerr_set(&e, YE_UNAVAILABLE, "its qemu may still run");
        return pending(m, "ending the source's qemu", &e);
    }
    mig_call(
        m, m->row.source, AV_VM_REMOVE,
        json_pack("{s:s,s:I}", "vm", m->row.vm_id, "uid", (json_int_t)src_num(m, "source_uid")),
        src_removed);
}

/* The guest's pause as the controller saw it, from pre-switchover seen on
 * the source to the target's cont answered (QEMU's downtime ends at the
 * source's completion, before the commit and the cont). */
static void paused_figure(struct mig *m)
{
    json_t *o = m->t_paused ? json_loads(m->row.outcome, 0, NULL) : NULL;
    if (!o)
        return;
    json_object_set_new(o, "paused_ms", json_integer(monotonic_ms() - m->t_paused));
    char *t = json_dumps(o, JSON_COMPACT);
    if (t)
        snprintf(m->row.outcome, sizeof m->row.outcome, "%s", t);
    free(t);
    json_decref(o);
}

static void target_conted(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "resuming the vm on the target", err);
    if (err)
        log_warn("migration of vm %s: cont on the target: %s", m->row.vm_name, err->message);
    else
        paused_figure(m);
    json_t *a =
        json_pack("{s:s,s:I}", "vm", m->row.vm_id, "uid", (json_int_t)src_num(m, "source_uid"));
    int32_t pid = src_num(m, "source_pid");
    if (a && pid > 0)
        json_object_set_new(a, "pid", json_integer(pid));
    mig_call(m, m->row.source, AV_VM_END, a, src_ended);
}

/* ---- back ---- */

static void src_status(struct mig *m, json_t *res, const struct yerr *err);

static void src_conted(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "resuming the vm on the source", err);
    if (err)
        log_warn("migration of vm %s: cont on the source: %s", m->row.vm_name, err->message);
    closed(m, "rolled_back");
}

static void src_status(struct mig *m, json_t *res, const struct yerr *err)
{
    if (unreachable(err))
        return pending(m, "asking the source's qemu", err);
    const char *st = err ? NULL : json_string_value(json_object_get(res, "status"));
    if (!st || !strcmp(st, "running") || !strcmp(st, "shutdown") || !strcmp(st, "guest-panicked") ||
        !strcmp(st, "internal-error")) {
        closed(m, "rolled_back"); /* running again, or no QEMU to resume */
        return;
    }
    mig_qmp(m, m->row.source, "cont", NULL, src_conted);
}

static void ask_src_status(struct mig *m)
{
    mig_qmp(m, m->row.source, "query-status", NULL, src_status);
}

/* The move's names on the source: its mirror jobs (mig-disk0, mig-volN)
 * and NBD client nodes (mig-nbd0, mig-nbdvN), found by asking QEMU, so a
 * settle after a restart needs no list. */
static bool mig_name(const char *n, const char *prefix)
{
    return n && !strncmp(n, prefix, strlen(prefix));
}

static void nodes_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "removing the source's nbd nodes", err);
    /* a node not there is fine */
    const char *n = json_string_value(json_array_get(m->rm, (size_t)m->di));
    if (!n) {
        json_decref(m->rm);
        m->rm = NULL;
        ask_src_status(m);
        return;
    }
    m->di++;
    mig_qmp(m, m->row.source, "blockdev-del", json_pack("{s:s}", "node-name", n), nodes_next);
}

static void src_nodes(struct mig *m, json_t *res, const struct yerr *err)
{
    if (unreachable(err))
        return pending(m, "asking the source's block nodes", err);
    json_decref(m->rm);
    m->rm = json_array();
    size_t i;
    json_t *j;
    json_array_foreach(res, i, j)
    {
        const char *n = json_string_value(json_object_get(j, "node-name"));
        if (mig_name(n, "mig-nbd"))
            json_array_append_new(m->rm, json_string(n));
    }
    m->di = 0;
    nodes_next(m, NULL, NULL);
}

/* Each job of the move still there, force-cancelled (best effort); then. */
static void cancel_jobs(struct mig *m, json_t *res, const struct yerr *err);
static void cancel_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    (void)err;
    const char *job = json_string_value(json_array_get(m->rm, (size_t)m->di));
    if (!job) {
        json_decref(m->rm);
        m->rm = NULL;
        m->disks_then(m, NULL, NULL);
        return;
    }
    m->di++;
    mig_qmp(m, m->row.source, "block-job-cancel", json_pack("{s:s,s:b}", "device", job, "force", 1),
            cancel_next);
}

static void cancel_jobs(struct mig *m, json_t *res, const struct yerr *err)
{
    json_decref(m->rm);
    m->rm = json_array();
    size_t i;
    json_t *j;
    json_array_foreach(err ? NULL : res, i, j)
    {
        const char *d = json_string_value(json_object_get(j, "device"));
        if (mig_name(d, "mig-"))
            json_array_append_new(m->rm, json_string(d));
    }
    m->di = 0;
    cancel_next(m, NULL, NULL);
}

static void src_jobs(struct mig *m, json_t *res, const struct yerr *err);
static void ask_src_jobs(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    (void)err;
    mig_qmp(m, m->row.source, "query-block-jobs", NULL, src_jobs);
}

static void src_jobs(struct mig *m, json_t *res, const struct yerr *err)
{
    if (unreachable(err))
        return pending(m, "asking the source's block jobs", err);
    bool there = false;
    size_t i;
    json_t *j;
    json_array_foreach(res, i, j) there |=
        mig_name(json_string_value(json_object_get(j, "device")), "mig-");
    if (there && ++m->polls < JOB_WAIT_POLLS) {
        if (m->polls == 1) {
            m->disks_then = ask_src_jobs;
            cancel_jobs(m, res, NULL);
        } else {
            mig_later(m, 20, ask_src_jobs);
        }
        return;
    }
    if (err) {
        closed(m, "rolled_back"); /* no QEMU there: its exit is reconcile's */
        return;
    }
    mig_qmp(m, m->row.source, "query-named-block-nodes", json_pack("{s:b}", "flat", 1), src_nodes);
}

static void disk_reclaimed(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "giving the shared disk back to the source", err);
    if (err) /* no QEMU there (reconcile's), or the files: said, the rollback goes on */
        log_warn("migration of vm %s: the shared disk back to the source: %s", m->row.vm_name,
                 err->message);
    m->polls = 0;
    ask_src_jobs(m, NULL, NULL);
}

/* A disk on a shared pool was given to the target's uid at its launch:
 * with the target gone the source's QEMU owns it again. */
static void reclaim_disk(struct mig *m)
{
    struct vm_rec vm;
    struct yerr e = {0};
    if (mig_row_cold(&m->row) || store_vm_get(m->c->store, m->row.vm_id, &vm) != 0 || !vm.pool[0] ||
        ctl_pool_disk_dir(m->c, &vm, &e) < 0) {
        disk_reclaimed(m, NULL, NULL); /* not on a pool (or gone): nothing to give back */
        return;
    }
    mig_call(m, m->row.source, AV_VM_DISK_RECLAIM,
             json_pack("{s:s,s:s}", "vm", m->row.vm_id, "disk_dir", vm.disk_dir), disk_reclaimed);
}

static void target_vols_removed(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "removing the target's volume files", err);
    if (err)
        log_warn("migration of vm %s: the target's volume files: %s", m->row.vm_name, err->message);
    reclaim_disk(m);
}

static void target_removed(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (unreachable(err))
        return pending(m, "removing the target's files", err);
    if (err)
        log_warn("migration of vm %s: the target's files: %s", m->row.vm_name, err->message);
    /* the volume files this move made there (their rows still name the
     * source), once the target's QEMU is gone */
    mig_volumes_remove(m, true, target_vols_removed);
}

static void target_ended(struct mig *m, json_t *res, const struct yerr *err)
{
    if (unreachable(err))
        return pending(m, "ending the target's qemu", err);
    if (err || !json_is_true(json_object_get(res, "ended"))) {
        struct yerr e;
        yerr_set(&e, YE_UNAVAILABLE, "%s", err ? err->message : "its qemu may still run");
        return pending(m, "ending the target's qemu", &e);
    }
    /* gone: no copy but the source's can ever run */
    mig_call(m, m->row.target, AV_VM_REMOVE,
             json_pack("{s:s,s:I}", "vm", m->row.vm_id, "uid", (json_int_t)m->row.target_uid),
             target_removed);
}

static void end_target(struct mig *m)
{
    json_t *a = json_pack("{s:s,s:I}", "vm", m->row.vm_id, "uid", (json_int_t)m->row.target_uid);
    if (a && m->row.target_pid > 0)
        json_object_set_new(a, "pid", json_integer(m->row.target_pid));
    mig_call(m, m->row.target, AV_VM_END, a, target_ended);
}

static void end_target_step(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    (void)err; /* best effort: the target's end stops the mirror as well */
    end_target(m);
}

static void src_cancel_mirror(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    (void)err;
    m->disks_then = end_target_step;
    mig_qmp(m, m->row.source, "query-block-jobs", NULL, cancel_jobs);
}

static void src_migstate(struct mig *m, json_t *res, const struct yerr *err)
{
    const char *st = err ? NULL : json_string_value(json_object_get(res, "status"));
    if (st && !strcmp(st, "completed"))
        m->src_completed = true; /* postmigrate: it stays paused until the target is gone */
    if (err || m->src_completed) {
        end_target(m); /* a source out of reach is asked again after the target */
        return;
    }
    mig_qmp(m, m->row.source, "migrate_cancel", NULL, src_cancel_mirror);
}

void mig_settle(struct mig *m)
{
    m->settling = true;
    m->next_step = NULL;
    if (m->timer)
        evtimer_del(m->timer);
    m->polls = 0;
    if (!strcmp(m->row.phase, "committed")) {
        if (mig_row_cold(&m->row))
            target_conted(m, NULL, NULL); /* no QEMU to resume: the source's files */
        else
            mig_qmp(m, m->row.target, "cont", NULL, target_conted);
        return;
    }
    if (!strcmp(m->row.phase, "done") || !strcmp(m->row.phase, "rolled_back")) {
        closed(m, m->row.phase);
        return;
    }
    mig_qmp(m, m->row.source, "query-migrate", NULL, src_migstate);
}

void mig_fail(struct mig *m, const struct yerr *err)
{
    if (!m->err.code)
        m->err = *err;
    if (m->settling)
        return;
    log_info("migration %s of vm %s: rolling back: %s", m->row.id, m->row.vm_name, err->message);
    mig_settle(m);
}

void ctl_migrations_settle(struct ctl *c)
{
    struct migration_rec *rows;
    size_t n;
    if (store_migration_list_open(c->store, &rows, &n) != 0) {
        log_err("migrations: %s", store_errmsg(c->store));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bool held = false;
        for (struct mig *x = c->migs; x && !held; x = x->next)
            held = !strcmp(x->row.id, rows[i].id);
        if (held)
            continue;
        struct mig *m = mig_new(c);
        if (!m)
            break;
        m->row = rows[i];
        m->retry = true;
        log_info("migration %s of vm %s left %s: settling it", m->row.id, m->row.vm_name,
                 m->row.phase);
        mig_settle(m);
    }
    free(rows);
}
