/*
 * host_drain.c - the host.drain task (ctl/host_drain.h): the host in
 * maintenance first (nothing new is placed there), then every running VM
 * on it moved (ctl_vm_migrate, at most `parallel` at once, each a
 * vm.migrate task of its own, the target chosen by placement with the host
 * excluded): a running one live, a stopped one cold (its files copied,
 * migrate_cold.c), the task's detail listing every VM with its state. All
 * moved: the host stays in maintenance, the task succeeds. Any VM that
 * could not move: the task fails naming each with its reason, and the host
 * is set back to what it was (up). ("stays" is kept in the detail's counts
 * for its readers; no VM is left there now.)
 */
#include "ctl/host_drain.h"

#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/migrate.h"
#include "ctl/place.h"
#include "ctl/tasks.h"
#include "lib/log.h"
#include "sched/sched.h"
#include "store/store_mig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum dv_state { DV_QUEUED, DV_MOVING, DV_MOVED, DV_FAILED, DV_STAYS, DV_CANCELLED };
static const char *const dv_names[] = {"queued", "moving", "moved", "failed", "stays", "cancelled"};

struct drain;
struct drain_vm {
    struct drain *d;
    char id[37], name[64];
    enum dv_state state;
    char to[64];
    char task[37];
    char reason[300];
};

struct drain {
    struct ctl *c;
    struct drain *next;
    char host_id[37], host_name[64], strategy[16];
    bool was_maintenance; /* before the drain: what a failed drain goes back to */
    int parallel, moving;
    size_t n, next_i;
    struct drain_vm *vms;
    struct task_rec task;
    bool cancel, pumping;
};

static struct drain *drains; /* the drains this process runs */

bool ctl_drain_strategy_valid(const char *s)
{
    sched_policy p;
    return !s[0] || !strcmp(s, "least-loaded") || sched_policy_parse(s, &p) == 0;
}

static void drain_free(struct drain *d)
{
    for (struct drain **pp = &drains; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    free(d->vms);
    free(d);
}

static size_t count(const struct drain *d, enum dv_state s)
{
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++)
        k += d->vms[i].state == s;
    return k;
}

/* {"host", "parallel", "strategy", "vms": [{"vm", "id", "state", "to",
 * "task", "reason"}], "moved", "failed", "stays"} */
static json_t *drain_json(const struct drain *d)
{
    json_t *vms = json_array();
    for (size_t i = 0; vms && i < d->n; i++) {
        const struct drain_vm *v = &d->vms[i];
        json_t *o =
            json_pack("{s:s,s:s,s:s}", "vm", v->name, "id", v->id, "state", dv_names[v->state]);
        if (o && v->to[0])
            json_object_set_new(o, "to", json_string(v->to));
        if (o && v->task[0])
            json_object_set_new(o, "task", json_string(v->task));
        if (o && v->reason[0])
            json_object_set_new(o, "reason", json_string(v->reason));
        json_array_append_new(vms, o);
    }
    return json_pack("{s:s,s:i,s:s,s:o,s:I,s:I,s:I}", "host", d->host_name, "parallel", d->parallel,
                     "strategy", d->strategy, "vms", vms ? vms : json_array(), "moved",
                     (json_int_t)count(d, DV_MOVED), "failed",
                     (json_int_t)(count(d, DV_FAILED) + count(d, DV_CANCELLED)), "stays",
                     (json_int_t)count(d, DV_STAYS));
}

static void drain_detail(struct drain *d)
{
    struct ctl *c = d->c;
    if (!c->tasks)
        return;
    json_t *p = json_pack("{s:s,s:o}", "host", d->host_id, "detail", drain_json(d));
    if (p)
        task_set_params(c->tasks, d->task.id, p);
    json_decref(p);
    size_t live = d->n - count(d, DV_STAYS);
    task_progress(c->tasks, d->task.id, live - count(d, DV_QUEUED) - count(d, DV_MOVING), live);
}

/* Every VM has its end: the host's state and the task's. */
static void drain_finish(struct drain *d)
{
    struct ctl *c = d->c;
    size_t failed = count(d, DV_FAILED) + count(d, DV_CANCELLED);
    drain_detail(d);
    if (!failed) {
        ctl_event(c, "host", d->host_name, "drain", "ok",
                  "host %s drained: %zu vm%s moved; it stays in maintenance", d->host_name,
                  count(d, DV_MOVED), count(d, DV_MOVED) == 1 ? "" : "s");
        task_succeed(c->tasks, d->task.id, drain_json(d));
        drain_free(d);
        return;
    }
    /* some could not move: the host takes VMs again (as it did before) */
    struct yerr e = {0};
    struct host_rec h;
    char state[16] = "?";
    if (ctl_host_maintenance(c, d->host_id, d->was_maintenance, &h, &e) == 0)
        snprintf(state, sizeof state, "%s", h.state);
    else
        log_warn("drain of %s: setting it back: %s", d->host_name, e.message);
    char why[400] = "";
    size_t off = 0;
    for (size_t i = 0; i < d->n && off < sizeof why; i++) {
        const struct drain_vm *v = &d->vms[i];
        if (v->state != DV_FAILED && v->state != DV_CANCELLED)
            continue;
        int w =
            snprintf(why + off, sizeof why - off, "%s%s: %s", off ? "; " : "", v->name, v->reason);
        off += w > 0 ? (size_t)w : 0;
    }
    struct yerr te;
    yerr_set(&te, d->cancel ? YE_CANCELLED : YE_CONFLICT,
             "host %s not drained: %zu vm%s could not move (%s); the host is %s again",
             d->host_name, failed, failed == 1 ? "" : "s", why, state);
    ctl_event(c, "host", d->host_name, "drain", "error", "%s", te.message);
    task_fail(c->tasks, d->task.id, &te);
    drain_free(d);
}

/* The target of one VM: the placement's choice among the hosts that take
 * VMs (the drained host is in maintenance, so never itself). */
/* The VM's target by the drain's strategy, through the same placement as a
 * move without --to (ctl_place_move: the drained host is refused twice,
 * as the source and as a host in maintenance). The move's own target check
 * then charges the VM there, so parallel moves see each other. */
static int drain_target(struct drain *d, const struct vm_rec *vm, char target[37], struct yerr *err)
{
    struct yerr perr = {0};
    if (ctl_place_move(d->c, vm, d->strategy, false, target, NULL, &perr) < 0)
        return yerr_set(err, YE_CONFLICT, "no host can take it: %s", perr.message);
    return 0;
}

static void pump(struct drain *d);

static void on_moved(void *arg, const struct migration_rec *m, const struct yerr *err)
{
    struct drain_vm *v = arg;
    struct drain *d = v->d;
    d->moving--;
    if (err) {
        v->state = d->cancel && err->code == YE_CANCELLED ? DV_CANCELLED : DV_FAILED;
        snprintf(v->reason, sizeof v->reason, "%s", err->message);
    } else {
        v->state = DV_MOVED;
        snprintf(v->to, sizeof v->to, "%s", ctl_host_label(d->c, m->target));
    }
    if (!d->pumping)
        pump(d);
}

/* Starts moves until `parallel` run; the end once none runs or waits. */
static void pump(struct drain *d)
{
    struct ctl *c = d->c;
    d->pumping = true;
    while (d->next_i < d->n && (d->moving < d->parallel || d->cancel)) {
        struct drain_vm *v = &d->vms[d->next_i++];
        if (v->state != DV_QUEUED)
            continue;
        if (d->cancel) {
            v->state = DV_CANCELLED;
            snprintf(v->reason, sizeof v->reason, "the drain was cancelled before its move");
            continue;
        }
        struct yerr e = {0};
        struct vm_rec vm;
        struct migrate_opts o = {0};
        char target[37];
        snprintf(o.strategy, sizeof o.strategy, "%s", d->strategy);
        if (ctl_vm_get(c, v->id, &vm, &e) < 0 || drain_target(d, &vm, target, &e) < 0) {
            v->state = DV_FAILED;
            snprintf(v->reason, sizeof v->reason, "%s", e.message);
            continue;
        }
        if (!ctl_host_same(c, vm.host, d->host_id)) {
            v->state = DV_MOVED; /* gone meanwhile by another move */
            snprintf(v->to, sizeof v->to, "%s", ctl_host_label(c, vm.host));
            continue;
        }
        snprintf(o.to, sizeof o.to, "%s", target);
        struct task_rec mt = {0};
        v->state = DV_MOVING;
        snprintf(v->to, sizeof v->to, "%s", ctl_host_label(c, target));
        d->moving++;
        if (ctl_vm_migrate(c, vm.name, &o, on_moved, v, &mt, &e) < 0) {
            d->moving--;
            v->state = DV_FAILED;
            v->to[0] = 0;
            snprintf(v->reason, sizeof v->reason, "%s", e.message);
            continue;
        }
        if (v->state == DV_MOVING)
            snprintf(v->task, sizeof v->task, "%s", mt.id);
    }
    d->pumping = false;
    drain_detail(d);
    if (d->moving == 0 && d->next_i >= d->n)
        drain_finish(d);
}

static void on_cancel(void *ctx)
{
    struct drain *d = ctx;
    d->cancel = true;
    struct task_rec k = {0};
    for (size_t i = 0; i < d->n; i++) {
        struct yerr e;
        if (d->vms[i].state == DV_MOVING && d->vms[i].task[0] &&
            tasks_cancel(d->c->tasks, d->vms[i].task, &k, &e) == 0)
            task_rec_clear(&k);
    }
    if (!d->pumping && d->moving == 0)
        pump(d); /* the queued ones end as cancelled, then the end */
}

int ctl_host_drain(struct ctl *c, const char *name, int parallel, const char *strategy,
                   struct task_rec *task_out, struct yerr *err)
{
    if (parallel < 1 || parallel > DRAIN_MAX_PARALLEL)
        return yerr_set(err, YE_INVALID_ARGUMENT, "parallel must be 1..%d, not %d",
                        DRAIN_MAX_PARALLEL, parallel);
    if (!strategy)
        strategy = "";
    if (strlen(strategy) >= 16 || !ctl_drain_strategy_valid(strategy))
        return yerr_set(err, YE_INVALID_ARGUMENT, "unknown strategy '%s'", strategy);
    if (!c->tasks)
        return yerr_set(err, YE_UNAVAILABLE, "tasks are not available");
    struct host_rec h;
    if (ctl_host_get(c, name, &h, NULL, err) < 0)
        return -1;
    if (!strcmp(h.state, "down"))
        return yerr_set(err, YE_CONFLICT, "host %s is down: its vms cannot move live", h.name);
    struct vm_rec *rows = NULL;
    size_t n = 0, k = 0;
    if (ctl_vm_list(c, &rows, &n, err) < 0)
        return -1;
    struct drain *d = calloc(1, sizeof *d);
    if (d)
        d->vms = calloc(n ? n : 1, sizeof *d->vms);
    if (!d || !d->vms) {
        free(d);
        free(rows);
        return yerr_set(err, YE_INTERNAL, "out of memory");
    }
    d->c = c;
    d->parallel = parallel;
    d->was_maintenance = h.maintenance != 0;
    snprintf(d->host_id, sizeof d->host_id, "%s", h.id);
    snprintf(d->host_name, sizeof d->host_name, "%s", h.name);
    snprintf(d->strategy, sizeof d->strategy, "%s", strategy);
    for (size_t i = 0; i < n; i++) {
        if (!ctl_host_same(c, rows[i].host, h.id))
            continue;
        struct drain_vm *v = &d->vms[k++];
        v->d = d;
        snprintf(v->id, sizeof v->id, "%s", rows[i].id);
        snprintf(v->name, sizeof v->name, "%s", rows[i].name);
    }
    d->n = k;
    free(rows);
    if (task_begin(c->tasks, "host.drain", "host", h.id, h.name, &d->task, err) < 0) {
        free(d->vms);
        free(d);
        return -1;
    }
    /* first: nothing new is placed there while its VMs leave */
    struct host_rec after;
    if (ctl_host_maintenance(c, h.id, true, &after, err) < 0) {
        task_fail(c->tasks, d->task.id, err);
        free(d->vms);
        free(d);
        return -1;
    }
    d->next = drains;
    drains = d;
    task_on_cancel(c->tasks, d->task.id, on_cancel, d);
    ctl_event(c, "host", h.name, "drain", "info", "begin: %zu vm%s on %s, %d at once", d->n,
              d->n == 1 ? "" : "s", h.name, parallel);
    if (task_out)
        *task_out = d->task;
    pump(d);
    return 0;
}

static int recover_task(void *ctx, struct task_rec *task, struct yerr *err)
{
    (void)ctx;
    (void)task;
    (void)err;
    return 0; /* failed "interrupted"; the host stays in maintenance, its moves settle */
}

void ctl_host_drain_register(struct ctl *c)
{
    if (c->tasks)
        tasks_register_kind(c->tasks, "host.drain", recover_task, c);
}

void ctl_host_drains_shutdown(struct ctl *c)
{
    struct drain **pp = &drains;
    while (*pp) {
        struct drain *d = *pp;
        if (d->c != c) {
            pp = &d->next;
            continue;
        }
        struct yerr e;
        yerr_set(&e, YE_CANCELLED, "yund stopped during the drain");
        if (c->tasks && task_live(c->tasks, d->task.id))
            task_fail(c->tasks, d->task.id, &e);
        drain_free(d); /* its moves' callbacks are dropped with them */
    }
}
