/*
 * migrate.c - the start of a live migration (ctl/migrate.h): the checks
 * that refuse a move before anything changes, the target chosen
 * (migrate_choose_target, the planner's hook), the vm.migrate task and the
 * migrations row written before any side effect, and what the steps
 * (migrate_run.c, migrate_settle.c) share: the list of moves this process
 * drives, agent and QMP calls, polls, the task's live figures and the end.
 */
#include "ctl/migrate_int.h"
#include "ctl/pools.h"

#include "ctl/hosts.h"
#include "ctl/place.h"
#include "ctl/tasks.h"
#include "ctl/vms_int.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sched/cpu_models.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the list and the helpers ---- */

struct mig *mig_new(struct ctl *c)
{
    struct mig *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->c = c;
    m->t0 = monotonic_ms();
    m->next = c->migs;
    c->migs = m;
    return m;
}

void mig_free(struct mig *m)
{
    struct ctl *c = m->c;
    for (struct mig **pp = &c->migs; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    ctl_agents_forget(c, m);
    if (m->timer)
        event_free(m->timer);
    json_decref(m->detail);
    json_decref(m->prediction);
    json_decref(m->pci);
    json_decref(m->rm);
    free(m->vols);
    free(m);
}

struct mig *mig_find_vm(struct ctl *c, const char *vm_id)
{
    for (struct mig *m = c->migs; m; m = m->next)
        if (!strcmp(m->row.vm_id, vm_id))
            return m;
    return NULL;
}

int mig_save(struct mig *m, const char *phase)
{
    if (phase)
        snprintf(m->row.phase, sizeof m->row.phase, "%s", phase);
    m->row.updated_at = now_ms();
    if (store_migration_update(m->c->store, &m->row) != 0) {
        log_err("migration %s of vm %s: %s", m->row.id, m->row.vm_name, store_errmsg(m->c->store));
        return -1;
    }
    return 0;
}

static void on_reply(void *ctx, json_t *res, const struct yerr *err)
{
    struct mig *m = ctx;
    m->call = 0;
    mig_step s = m->next_step;
    m->next_step = NULL;
    if (s)
        s(m, res, err);
}

void mig_call(struct mig *m, const char *host, enum agent_verb v, json_t *args, mig_step step)
{
    m->next_step = step;
    snprintf(m->call_host, sizeof m->call_host, "%s", host);
    m->call = ctl_host_call(m->c, host, v, args, on_reply, NULL, m);
    if (!m->call) {
        struct yerr e;
        yerr_set(&e, YE_INTERNAL, "agent: the call could not be made");
        m->next_step = NULL;
        step(m, NULL, &e);
    }
}

static void on_qmp(struct mig *m, json_t *res, const struct yerr *err)
{
    mig_step s = m->qmp_step;
    m->qmp_step = NULL;
    s(m, err ? NULL : json_object_get(res, "return"), err);
}

void mig_qmp(struct mig *m, const char *host, const char *cmd, json_t *args, mig_step step)
{
    json_t *a = json_pack("{s:s,s:s}", "vm", m->row.vm_id, "command", cmd);
    if (a && args)
        json_object_set_new(a, "arguments", args);
    else
        json_decref(args);
    m->qmp_step = step;
    mig_call(m, host, AV_VM_QMP, a, on_qmp);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mig *m = arg;
    mig_step s = m->next_step;
    m->next_step = NULL;
    if (s)
        s(m, NULL, NULL);
}

void mig_later(struct mig *m, int ms, mig_step step)
{
    if (!m->timer)
        m->timer = evtimer_new(m->c->base, on_timer, m);
    m->next_step = step;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!m->timer || evtimer_add(m->timer, &tv) < 0) {
        struct yerr e;
        yerr_set(&e, YE_INTERNAL, "out of memory");
        m->next_step = NULL;
        step(m, NULL, &e);
    }
}

void mig_detail(struct mig *m, bool force)
{
    struct ctl *c = m->c;
    int64_t now = monotonic_ms();
    if (!c->tasks || !m->row.task[0] || !m->detail || (!force && now - m->last_detail < 500))
        return;
    m->last_detail = now;
    json_object_set_new(m->detail, "phase", json_string(m->row.phase));
    json_object_set_new(m->detail, "elapsed_ms", json_integer(now - m->t0));
    json_t *p = json_pack("{s:s,s:O}", "migration", m->row.id, "detail", m->detail);
    if (p)
        task_set_params(c->tasks, m->row.task, p);
    json_decref(p);
    json_t *ram = json_object_get(m->detail, "ram");
    json_int_t done = json_integer_value(json_object_get(ram, "transferred"));
    json_int_t left = json_integer_value(json_object_get(ram, "remaining"));
    if (done > 0 || left > 0)
        task_progress(c->tasks, m->row.task, (uint64_t)done, (uint64_t)(done + left));
}

void mig_finish(struct mig *m, const struct yerr *err)
{
    struct ctl *c = m->c;
    const char *src = ctl_host_label(c, m->row.source), *dst = ctl_host_label(c, m->row.target);
    char s_src[64], s_dst[64];
    snprintf(s_src, sizeof s_src, "%s", src);
    snprintf(s_dst, sizeof s_dst, "%s", dst);
    bool open = strcmp(m->row.phase, "done") && strcmp(m->row.phase, "rolled_back");
    if (err && open && m->retry) {
        /* still waiting for a host: said the first time */
    } else if (!err) {
        ctl_event(c, "vm", m->row.vm_name, "migrate", "ok", "%s -> %s: %s", s_src, s_dst,
                  m->row.outcome[0] ? m->row.outcome : "{}");
    } else if (!strcmp(m->row.phase, "rolled_back")) {
        ctl_event(c, "vm", m->row.vm_name, "migrate", "error",
                  "%s -> %s rolled back, the vm stays on %s: %s", s_src, s_dst, s_src,
                  err->message);
    } else {
        ctl_event(c, "vm", m->row.vm_name, "migrate", "error", "%s -> %s failed: %s (%s)", s_src,
                  s_dst, err->message, open ? "settling it waits for a host" : "settled");
    }
    if (m->live && c->tasks && m->row.task[0] && task_live(c->tasks, m->row.task)) {
        mig_detail(m, true);
        if (err) {
            task_fail(c->tasks, m->row.task, err);
        } else {
            json_t *r = json_pack("{s:s,s:s,s:s,s:s}", "vm", m->row.vm_name, "migration", m->row.id,
                                  "from", s_src, "to", s_dst);
            json_t *o = m->row.outcome[0] ? json_loads(m->row.outcome, 0, NULL) : NULL;
            if (r && o)
                json_object_set_new(r, "outcome", o);
            else
                json_decref(o);
            if (r && m->prediction)
                json_object_set(r, "prediction", m->prediction);
            task_succeed(c->tasks, m->row.task, r);
        }
    }
    ctl_place_invalidate(c);
    if (m->done)
        m->done(m->done_arg, &m->row, err);
    mig_free(m);
}

bool ctl_migration_open(struct ctl *c, const char *vm_id)
{
    struct migration_rec r;
    return mig_find_vm(c, vm_id) || store_migration_open_for(c->store, vm_id, &r) == 0;
}

void ctl_migrations_shutdown(struct ctl *c)
{
    while (c->migs) {
        struct mig *m = c->migs;
        struct yerr e;
        yerr_set(&e, YE_CANCELLED, "yund stopped during the migration");
        m->done = NULL;
        if (m->live && c->tasks && m->row.task[0] && task_live(c->tasks, m->row.task))
            task_fail(c->tasks, m->row.task, &e);
        mig_free(m); /* the row stays open: the next controller settles it */
    }
}

/* ---- the task kind ---- */

static int recover_task(void *ctx, struct task_rec *task, struct yerr *err)
{
    (void)err;
    struct ctl *c = ctx;
    struct migration_rec r;
    if (store_migration_by_task(c->store, task->id, &r) == 0 &&
        (!strcmp(r.phase, "committed") || !strcmp(r.phase, "done"))) {
        task->state = TASK_SUCCEEDED; /* it moved; the settle finishes the source's end */
        json_t *j = json_pack("{s:s,s:s,s:b}", "vm", r.vm_name, "migration", r.id, "recovered", 1);
        task->result = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    return 0;
}

void ctl_migrate_register(struct ctl *c)
{
    if (c->tasks)
        tasks_register_kind(c->tasks, "vm.migrate", recover_task, c);
}

/* ---- the checks ---- */

/* THE spot where the target is chosen: o->to, else placement by strategy
 * with the VM's current host excluded (ctl_place_move; the same filters as
 * a create, so capacity and anti-affinity hold after the move). */
static int migrate_choose_target(struct ctl *c, const struct vm_rec *vm,
                                 const struct migrate_opts *o, bool dry, char target[37],
                                 struct yerr *err)
{
    sched_policy pol;
    if (place_strategy_parse(o->strategy, &pol, err) < 0)
        return -1;
    if (o->to[0])
        return ctl_host_resolve(c, o->to, target, err);
    struct yerr perr = {0};
    if (ctl_place_move(c, vm, o->strategy, dry, target, NULL, &perr) < 0)
        return yerr_set(err, perr.code, "no target for vm '%s': %s", vm->name, perr.message);
    return 0;
}

static int check_target(struct ctl *c, const struct vm_rec *vm, const char *target, bool dry,
                        struct yerr *err)
{
    struct host_rec h;
    if (ctl_host_same(c, target, vm->host))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is on host %s already", vm->name,
                        ctl_host_label(c, target));
    if (ctl_host_get(c, target, &h, NULL, err) < 0)
        return -1;
    if (strcmp(h.state, "up"))
        return yerr_set(err, YE_CONFLICT, "host %s is %s: it takes no migrations", h.name, h.state);
    if (!ctl_host_agent(c, target, err))
        return -1;
    /* the same filters as a create (capacity, labels, groups, max VMs) on
     * that host alone */
    struct vm_spec s;
    vm_spec_of_running(&s, vm);
    char chosen[37];
    struct yerr perr = {0};
    json_t *out = NULL;
    if (dry) /* a plan: decided the same, nothing reserved */
        snprintf(s.host, sizeof s.host, "%s", target);
    int rc = dry ? ctl_place_dry(c, &s, &out, NULL, &perr)
                 : ctl_place(c, &s, target, chosen, NULL, &perr);
    json_decref(out);
    if (rc < 0) {
        return yerr_set(err, perr.code == YE_NOT_FOUND ? YE_NOT_FOUND : YE_CONFLICT,
                        "host %s cannot take vm '%s': %s", h.name, vm->name, perr.message);
    }
    return 0;
}

/* A stopped or crashed VM moves cold: nothing of it runs. */
static bool vm_cold(const struct vm_rec *vm)
{
    return vm->state == VM_STOPPED || vm->state == VM_CRASHED;
}

static int check_vm(struct ctl *c, const struct vm_rec *vm, const struct migrate_opts *o,
                    struct yerr *err)
{
    bool cold = vm_cold(vm); /* its files copied, no QEMU (migrate_cold.c) */
    if (!cold && vm->state != VM_RUNNING)
        return yerr_set(err, YE_CONFLICT,
                        "vm '%s' is %s: a running vm moves live, a stopped one cold; try again "
                        "when it has settled",
                        vm->name, vm_state_name(vm->state));
    if (o->postcopy)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "--postcopy is not supported yet (use --auto-converge)");
    /* max and host expose whatever the host has: QEMU calls them not
     * migration-safe (a named model is checked on the target by placement) */
    int model = vm->cpu_model[0] ? sched_cpu_model_index(vm->cpu_model) : -1;
    if (!cold && model >= 0 && !sched_cpu_model_migratable(model))
        return yerr_set(err, YE_CONFLICT,
                        "vm '%s' runs CPU model %s, which shows the host's own CPU and cannot "
                        "move; give it a named model (yun vm create --cpu-model)",
                        vm->name, vm->cpu_model);
    int ns = ctl_vm_snapshot_count(c, vm);
    if (ns < 0)
        return yerr_db(err, store_errmsg(c->store));
    if (ns > 0)
        return yerr_set(err, YE_CONFLICT, "vm '%s' has %d snapshot%s; delete or merge them first",
                        vm->name, ns, ns == 1 ? "" : "s");
    if (mig_volumes_check(c, vm, err) < 0)
        return -1; /* attached volumes move with it (migrate_disks.c) */
    /* a disk on a pool (ctl/pools.h): on a shared one both QEMUs open the
     * one file (each gets it by fd from its agent, so the uids do not
     * matter; the target's is inactive until the switchover: QEMU's image
     * locking holds), nothing is copied. A local pool's disk would have to
     * be copied into the target's pool: not done yet */
    if (vm->pool[0]) {
        struct pool_rec p;
        if (ctl_pool_get(c, vm->pool, &p, err) < 0)
            return -1;
        if (!p.shared)
            return yerr_set(err, YE_CONFLICT,
                            "vm '%s' has its disk on pool %s, which is not shared; moving a disk "
                            "between local pools is not supported yet",
                            vm->name, vm->pool);
    }
    if (strcmp(vm->disk, "disk.qcow2") || vm->disk_parent[0])
        return yerr_set(err, YE_CONFLICT, "vm '%s' has a snapshot layer as its disk (%s)", vm->name,
                        vm->disk);
    if (ctl_migration_open(c, vm->id))
        return yerr_set(err, YE_CONFLICT, "vm '%s': an earlier migration is still being settled",
                        vm->name);
    return 0;
}

int mig_check(struct ctl *c, const struct vm_rec *vm, const struct migrate_opts *o, bool dry,
              char target[37], struct yerr *err)
{
    if (o->max_downtime_ms < 0 || o->max_downtime_ms > 3600 * 1000)
        return yerr_set(err, YE_INVALID_ARGUMENT, "max_downtime_ms must be 0..3600000");
    return migrate_choose_target(c, vm, o, dry, target, err) < 0 || check_vm(c, vm, o, err) < 0 ||
                   check_target(c, vm, target, dry, err) < 0
               ? -1
               : 0;
}

static json_t *opts_json(const struct migrate_opts *o, bool cold)
{
    return json_pack("{s:s,s:s,s:I,s:i,s:b,s:b,s:b}", "to", o->to, "strategy", o->strategy,
                     "max_bandwidth", (json_int_t)o->max_bandwidth, "max_downtime_ms",
                     o->max_downtime_ms, "auto_converge", o->auto_converge, "postcopy", o->postcopy,
                     "cold", cold);
}

static void on_cancel(void *ctx)
{
    struct mig *m = ctx;
    m->cancel = true; /* taken at the next step, until the commit */
    /* a cold move's step may be a long copy (file.send): cancelled now, it
     * answers cancelled and the move rolls back */
    if (m->cold && m->call && !m->settling && strcmp(m->row.phase, "committed"))
        ctl_host_cancel(m->c, m->call_host, m->call);
}

int ctl_vm_migrate(struct ctl *c, const char *name, const struct migrate_opts *o,
                   migrate_done_fn cb, void *arg, struct task_rec *task_out, struct yerr *err)
{
    struct vm_rec vm;
    char target[37];
    if (ctl_vm_get(c, name, &vm, err) < 0)
        return -1;
    if (o->dry_run)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "a dry run is POST /v1/vms/%s/migrate/plan (yun vm migrate --dry-run)",
                        name);
    if (mig_check(c, &vm, o, false, target, err) < 0)
        return -1;
    if (!ctl_vm_agent(c, &vm, err))
        return -1; /* its own host is down */
    struct task_rec task = {0};
    if (ctl_vm_task_begin(c, "vm.migrate", &vm, &task, err) < 0)
        return -1;
    struct mig *m = mig_new(c);
    json_t *oj = opts_json(o, vm_cold(&vm));
    char *ot = oj ? json_dumps(oj, JSON_COMPACT) : NULL;
    json_decref(oj);
    if (!m || !ot) {
        free(ot);
        if (m)
            mig_free(m);
        yerr_set(err, YE_INTERNAL, "out of memory");
        ctl_vm_task_end(c, &task, NULL, err);
        return -1;
    }
    m->live = true;
    m->o = *o;
    m->vm = vm;
    m->shared = vm.pool[0] != 0; /* check_vm let only a shared pool through */
    m->cold = vm_cold(&vm);
    m->done = cb;
    m->done_arg = arg;
    m->detail = json_object();
    struct migration_rec *r = &m->row;
    uuid_generate_str(r->id);
    snprintf(r->vm_id, sizeof r->vm_id, "%s", vm.id);
    snprintf(r->vm_name, sizeof r->vm_name, "%s", vm.name);
    snprintf(r->source, sizeof r->source, "%s", vm.host[0] ? vm.host : ctl_local_host(c));
    snprintf(r->target, sizeof r->target, "%s", target);
    snprintf(r->phase, sizeof r->phase, "prepared");
    snprintf(r->owner, sizeof r->owner, "%s", r->source);
    snprintf(r->task, sizeof r->task, "%s", task.id);
    snprintf(r->options, sizeof r->options, "%s", ot);
    snprintf(r->ports, sizeof r->ports, "{\"source_pid\":%d,\"source_uid\":%u}", (int)vm.pid,
             vm.uid);
    free(ot);
    r->started_at = r->updated_at = now_ms();
    /* the row before any side effect: a crash from here on is settled by it */
    if (store_migration_insert(c->store, r) != 0) {
        yerr_db(err, store_errmsg(c->store));
        mig_free(m);
        ctl_vm_task_end(c, &task, NULL, err);
        return -1;
    }
    if (c->tasks && task.id[0]) {
        json_t *p = json_pack("{s:s}", "migration", r->id);
        task_set_params(c->tasks, task.id, p);
        json_decref(p);
        task_on_cancel(c->tasks, task.id, on_cancel, m);
    }
    ctl_event(c, "vm", vm.name, "migrate", "info", "begin: %s -> %s (migration %s%s)",
              ctl_host_label(c, r->source), ctl_host_label(c, r->target), r->id,
              m->cold ? ", cold: the vm is stopped" : "");
    if (task_out)
        *task_out = task;
    FAILPOINT("migrate.after_prepared");
    if (m->cold)
        mig_run_start(m); /* nothing runs: no dirty rate, no link to predict over */
    else
        mig_predict(m, mig_run_start);
    return 0;
}
