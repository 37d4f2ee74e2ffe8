/*
 * vms_reconcile.c - the controller's reconcile pass: making the VM rows
 * agree with what the host has. Runs once at start-up (re-attaching to
 * every QEMU that survived yund; ctl_vms_reconcile_settle waits for those
 * answers), then every reconcile_interval seconds, and "soon" when a pass
 * saw something half-way (a start between fork and exec, /proc unreadable)
 * or the agent asks (its event "host.reconcile"):
 *  - "creating" rows are rolled back and "deleting" ones finished
 *    (ctl_vm_finish_delete: vm.end, vm.remove);
 *  - every other VM is asked of the agent (vm.attach, agent_attach.c): a
 *    live QEMU is watched again and its QMP status becomes the state
 *    (reattach.c: the mapping), an interrupted start is let run (vm.qmp
 *    cont) or ended (vm.end) as the VM's desired state says, a QEMU that is
 *    coming holds the row in "starting", and a row that says it has a QEMU
 *    whose QEMU is gone goes through the exit (ctl_vm_exited);
 *  - a VM directory with no row is an orphan (host.orphans, vms_orphans.c): its QEMU is
 *    ended, then its directory removed (vm.remove);
 *  - the VMs' disks (volumes, snapshot rows), their console logs
 *    (host.housekeep) and the event log's retention get their turn.
 * The agent never sees a row; this file writes them, and the events. A pass
 * reads the rows a slice at a time by name (a slice a loop turn), and the
 * ids for host.orphans at once at its end.
 *
 * Each host is asked about its own rows (vm_rec.host) and, for orphans,
 * with its own rows' ids; a host that is down (no agent) is skipped: its
 * rows stay as they are ("unknown", vms_hosts.c) until it is back, when a
 * pass settles them. "host.reconcile" from a host (its agent restarted)
 * and a host back up or joined again ask for a pass soon over that host
 * only (ctl_vms_reconcile_host_soon: its rows, its orphans, its console
 * logs, its VMs' snapshots; an event "host NAME reconcile" says how many VMs
 * it asked about); the periodic pass still goes over every host that is up
 * (and alone settles volumes and prunes the event log).
 */
#include "ctl/ha.h"
#include "ctl/migrate.h"
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "compute/engine.h"
#include "ctl/reattach.h"
#include "ctl/snapshots.h"
#include "ctl/vms_orphans.h"
#include "ctl/vms_int.h"
#include "ctl/volumes.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A row "starting" this recently, with no process of its VM in sight, may
 * be a start whose child has not exec'ed QEMU yet: it is given this long. */
#define START_HOLD_MS 15000
#define SOON_MS       250
/* Hosts waiting for a pass of their own; more than this at once: a full pass. */
#define SOON_HOSTS 64

/* One vm.attach (and an interrupted start's cont) in flight. */
struct rc_vm {
    struct rc_vm *next;
    struct ctl_reconcile *r;
    char id[37];
    char host[37]; /* its host: the agent asked */
    char name[64];
    char status[32]; /* QEMU's, from the attach */
    pid_t pid;
    bool fresh;
    /* the row as it was when the question went out: a reply about a row
     * that has moved since (a stop, an exit, a new start) is stale */
    enum vm_state st0;
    enum vm_desired want0;
    pid_t pid0;
};

struct ctl_reconcile {
    struct ctl *c;
    struct event *timer, *soon;
    json_int_t pass; /* the agent walks /proc once per pass number */
    bool swept;      /* the first pass asked for stopped VMs' cgroups to go */
    struct rc_vm *vms;
    int inflight; /* vm.attach calls out now */
    /* the pass's rows still to ask about: at most ATTACH_INFLIGHT calls are
     * out at once, so a pass over thousands of rows costs bounded memory
     * and each loop turn a bounded amount of work */
    struct vm_rec *queue;
    size_t nqueue, next, capqueue;
    bool first; /* the queue's pass is the first */
    /* a pass reads the rows SLICE_ROWS at a time by name, one slice a loop
     * turn and SLICE_GAP_MS apart, so no turn holds the loop for the whole
     * table; a pass asked for while one is reading runs when it is done */
    struct event *slice;
    char cursor[64]; /* the last name read */
    bool slicing, again;
    char only[SOON_HOSTS][37]; /* the reading pass's hosts (nonly 0: every host) */
    size_t nonly;
    size_t asked[SOON_HOSTS];       /* its rows asked about, per host of only */
    struct rc_orphans orphans;      /* host.orphans questions, removals (vms_orphans.c) */
    struct event *soon_hosts;       /* the passes of single hosts, soon */
    char soon_host[SOON_HOSTS][37]; /* their ids */
    size_t nsoon;
};

#define ATTACH_INFLIGHT 16
#define SLICE_ROWS      250
#define SLICE_GAP_MS    5 /* between slices: the pass takes a share of the loop, not all */

static void attach_ask(struct ctl_reconcile *r, const struct vm_rec *vm, bool first);

/* Asks about the queue's next rows while there is room. */
static void queue_pump(struct ctl_reconcile *r)
{
    while (r->inflight < ATTACH_INFLIGHT && r->next < r->nqueue)
        attach_ask(r, &r->queue[r->next++], r->first);
    if (r->next >= r->nqueue && r->queue) {
        free(r->queue);
        r->queue = NULL;
        r->nqueue = r->next = r->capqueue = 0;
    }
}

static void rc_vm_free(struct rc_vm *x)
{
    struct ctl_reconcile *r = x->r;
    for (struct rc_vm **pp = &r->vms; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            r->inflight--;
            break;
        }
    free(x);
    queue_pump(r);
}

static void row_save(struct ctl *c, struct vm_rec *vm)
{
    vm->updated_at = now_ms();
    if (store_vm_update(c->store, vm) != 0)
        log_err("cannot update vm %s: %s", vm->name, store_errmsg(c->store));
}

/* A stopping VM's deadline (a row from before deadlines gets one now). */
static void stop_rearm(struct ctl *c, struct vm_rec *vm)
{
    if (vm->state != VM_STOPPING)
        return;
    if (!vm->stop_deadline) {
        vm->stop_deadline = now_ms() + (int64_t)c->cfg->stop_timeout_s * 1000;
        row_save(c, vm);
    }
    ctl_stop_deadline_arm(c, vm);
}

/* The row after a re-attach, from QEMU's status (and cont's outcome). */
static void reattach_finish(struct rc_vm *x, struct vm_rec *vm, enum vm_state ns,
                            const char *status)
{
    struct ctl *c = x->r->c;
    if (x->fresh && vm->pid == x->pid && ns == vm->state && vm->started_at)
        log_info("vm %s: re-attached to running qemu pid %d (%s)", vm->name, (int)x->pid, status);
    if (ns != vm->state || vm->pid != x->pid) {
        if (x->fresh)
            ctl_event(c, "vm", vm->name, "reattach", "info", "qemu pid %d, %s -> %s", (int)x->pid,
                      vm_state_name(vm->state), vm_state_name(ns));
        vm->state = ns;
        vm->pid = x->pid;
        if (!vm->started_at)
            vm->started_at = now_ms();
        row_save(c, vm);
    }
    stop_rearm(c, vm);
}

/* The row as it is now (the reply came a loop turn or more after the ask);
 * false when it went or is a create's or delete's. */
static bool row_now(struct ctl *c, const char *id, struct vm_rec *vm)
{
    return store_vm_get(c->store, id, vm) == 0 && vm->state != VM_CREATING &&
           vm->state != VM_DELETING;
}

static void row_mark(struct rc_vm *x, const struct vm_rec *vm)
{
    x->st0 = vm->state;
    x->want0 = vm->desired;
    x->pid0 = vm->pid;
}

/* The row moved while the agent was asked (a stop, an exit, a start came
 * meanwhile): its answer describes the VM as it was, so nothing is decided
 * on it; a pass shortly asks again. */
static bool row_moved(struct rc_vm *x, const struct vm_rec *vm)
{
    if (vm->state == x->st0 && vm->desired == x->want0 && vm->pid == x->pid0)
        return false;
    log_debug("reconcile: vm %s moved while the agent was asked (%s -> %s): asking again", vm->name,
              vm_state_name(x->st0), vm_state_name(vm->state));
    ctl_vms_reconcile_soon(x->r->c);
    return true;
}

static void on_cont(void *ctx, json_t *res, const struct yerr *err)
{
    (void)res;
    struct rc_vm *x = ctx;
    struct ctl *c = x->r->c;
    struct vm_rec vm;
    if (row_now(c, x->id, &vm) && !row_moved(x, &vm)) {
        enum vm_state ns = vm_reattach_state(vm.state, x->status);
        if (!err) {
            ns = VM_RUNNING;
            snprintf(x->status, sizeof x->status, "running");
            ctl_event(c, "vm", vm.name, "start", "ok", "start finished after yund restart");
        }
        reattach_finish(x, &vm, ns, x->status);
    }
    rc_vm_free(x);
}

/* QEMU answered query-status: what it says becomes the row. true when x
 * stays in flight (a cont on the way). */
static bool reattach_decide(struct rc_vm *x, struct vm_rec *vm)
{
    struct ctl *c = x->r->c;
    if (!vm_reattach_interrupted(vm->state, x->status)) {
        reattach_finish(x, vm, vm_reattach_state(vm->state, x->status), x->status);
        return false;
    }
    if (vm->desired == WANT_STOPPED) {
        /* a start yund did not finish, and since then the VM was asked to
         * stop: the guest never ran, so end its QEMU; the next pass sees it
         * gone and says stopped */
        ctl_event(c, "vm", vm->name, "stop", "info",
                  "ending the qemu of an interrupted start: the vm is to be stopped");
        ctl_vm_end_qemu(c, vm);
        return false;
    }
    /* yund died between spawning QEMU and letting the guest run */
    row_mark(x, vm); /* cont's answer is taken only for this row */
    if (vm->desired == WANT_RUNNING &&
        ctl_vm_call(c, vm, AV_VM_QMP, json_pack("{s:s,s:s}", "vm", vm->id, "command", "cont"),
                    on_cont, NULL, x))
        return true;
    reattach_finish(x, vm, vm_reattach_state(vm->state, x->status), x->status);
    return false;
}

static void on_attach(void *ctx, json_t *res, const struct yerr *err)
{
    struct rc_vm *x = ctx;
    struct ctl_reconcile *r = x->r;
    struct ctl *c = r->c;
    struct vm_rec vm;
    if (err) {
        log_warn("reconcile: vm %s: %s", x->name, err->message);
        rc_vm_free(x);
        return;
    }
    if (json_is_true(json_object_get(res, "launching")) ||
        json_is_true(json_object_get(res, "exiting")) || !row_now(c, x->id, &vm) ||
        row_moved(x, &vm)) {
        rc_vm_free(x); /* a start in progress, or its exit, settles it */
        return;
    }
    const char *seen = json_string_value(json_object_get(res, "seen"));
    pid_t pid = (pid_t)json_integer_value(json_object_get(res, "pid"));
    const char *status = json_string_value(json_object_get(res, "status"));
    x->pid = pid;
    x->fresh = json_is_true(json_object_get(res, "fresh"));
    if (!seen || json_is_true(json_object_get(res, "busy"))) {
        /* its status is on the way (an earlier attach) */
    } else if (!strcmp(seen, "up")) {
        if (status) {
            snprintf(x->status, sizeof x->status, "%s", status);
            if (reattach_decide(x, &vm))
                return; /* until cont is answered */
        } else {
            /* not asked (watched, and the row agrees), or QMP unreachable:
             * still, the row names that pid (so a stop can end it), and a
             * stop in progress keeps its deadline */
            if (json_is_true(json_object_get(res, "asked")) && vm.pid != pid &&
                vm_state_has_process(vm.state)) {
                vm.pid = pid;
                row_save(c, &vm);
            }
            stop_rearm(c, &vm);
        }
    } else if (!strcmp(seen, "coming")) {
        /* A start that yund did not see finish (it died in it, or a wrapper
         * has yet to exec QEMU): a row that says no QEMU is held in
         * "starting" so no second start can run (a stopping one stays
         * stopping: its deadline ends what comes), and looked at again
         * shortly. */
        ctl_vms_reconcile_soon(c);
        stop_rearm(c, &vm);
        if (vm.state == VM_STOPPED || vm.state == VM_CRASHED) {
            ctl_event(c, "vm", vm.name, "reattach", "info",
                      "a qemu of this vm is starting (pid %d): %s -> starting", (int)pid,
                      vm_state_name(vm.state));
            vm.state = VM_STARTING;
            row_save(c, &vm);
        }
    } else if (!strcmp(seen, "unsure")) {
        log_warn("reconcile: cannot tell whether vm %s has a qemu (/proc unreadable); "
                 "leaving it as %s",
                 vm.name, vm_state_name(vm.state));
        ctl_vms_reconcile_soon(c);
    } else if (vm.state == VM_STARTING && now_ms() - vm.updated_at < START_HOLD_MS) {
        /* gone: between fork and exec the child still wears yund's command
         * line, so a start this recent may yet show its QEMU */
        ctl_vms_reconcile_soon(c);
    } else if (vm_state_has_process(vm.state)) {
        ctl_vm_exited(c, vm.id, 0, json_is_true(json_object_get(res, "shutdown_seen")), x->fresh);
    }
    rc_vm_free(x);
}

static void attach_ask(struct ctl_reconcile *r, const struct vm_rec *vm, bool first)
{
    for (struct rc_vm *x = r->vms; x; x = x->next)
        if (!strcmp(x->id, vm->id))
            return; /* its answer is on the way */
    struct rc_vm *x = calloc(1, sizeof *x);
    if (!x)
        return;
    x->r = r;
    snprintf(x->id, sizeof x->id, "%s", vm->id);
    snprintf(x->name, sizeof x->name, "%s", vm->name);
    snprintf(x->host, sizeof x->host, "%s", vm->host);
    row_mark(x, vm);
    bool proc = vm_state_has_process(vm->state);
    json_t *a = json_pack("{s:s,s:s,s:I,s:i,s:b,s:I,s:b,s:I,s:s,s:i,s:I,s:I,s:s}", "vm", vm->id,
                          "name", vm->name, "uid", (json_int_t)vm->uid, "pid", (int)vm->pid,
                          "check", vm->state == VM_STARTING || vm->state == VM_UNKNOWN || !proc,
                          "pass", r->pass, "sweep", first || proc, "memory_mb",
                          (json_int_t)vm->memory_mb, "accel", vm->accel_used, "cpu_weight",
                          (int)vm->cpu_weight, "cpu_quota_us", (json_int_t)vm->cpu_quota_us,
                          "cpu_period_us", (json_int_t)vm->cpu_period_us, "cpuset", vm->cpuset);
    /* the memory policy a fresh re-attach writes again (agent_attach.c) */
    if (a)
        json_object_update_new(a, json_pack("{s:I,s:I,s:b}", "memory_swap_mb",
                                            (json_int_t)vm->memory_swap_mb, "memory_high_mb",
                                            (json_int_t)vm->memory_high_mb, "memory_lock",
                                            vm->memory_lock != 0));
    x->next = r->vms;
    r->vms = x;
    r->inflight++;
    if (!ctl_vm_call(r->c, vm, AV_VM_ATTACH, a, on_attach, NULL, x))
        rc_vm_free(x);
}

/* ---- the pass ---- */

/* One host's share of a pass: its rows' ids for host.orphans, the live
 * ones for host.housekeep. */
struct pass_host {
    struct ctl_reconcile *r;
    const struct vm_key *vms;
    size_t n;
    const char (*only)[37]; /* the hosts of this pass (NULL: every host) */
    size_t nonly;
};

/* host (a row's, "" the local one) is among the pass's hosts. */
static bool in_pass(struct ctl *c, const struct pass_host *p, const char *host)
{
    if (!p->only)
        return true;
    for (size_t i = 0; i < p->nonly; i++)
        if (ctl_host_same(c, host, p->only[i]))
            return true;
    return false;
}

static void pass_host(struct ctl *c, const char *host_id, struct agent *a, void *arg)
{
    struct pass_host *p = arg;
    struct yerr down = {0};
    if (!a || !ctl_host_agent(c, host_id, &down) || !in_pass(c, p, host_id))
        return; /* down: its rows wait for it; or not this pass's */
    json_t *known = json_array(), *live = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const struct vm_key *vm = &p->vms[i];
        if (!ctl_host_same(c, vm->host, host_id))
            continue;
        json_array_append_new(known, json_string(vm->id));
        if (vm->state != VM_CREATING && vm->state != VM_DELETING)
            json_array_append_new(live, json_string(vm->id));
    }
    rc_orphans_ask(&p->r->orphans, host_id, known, p->r->pass);
    json_decref(known);
    ctl_host_call(c, host_id, AV_HOST_HOUSEKEEP, json_pack("{s:o}", "vms", live), NULL, NULL, NULL);
}

/* The end of a pass, once every slice is read: each of its hosts that is
 * up is told the ids of its rows as they are now, read at once (the
 * orphans' question must not miss a row made during the pass); a pass
 * over every host gives the volumes and the event log their turn. */
static void pass_end(struct ctl_reconcile *r)
{
    struct ctl *c = r->c;
    r->slicing = false;
    const char(*only)[37] = r->nonly ? (const char(*)[37])r->only : NULL;
    struct pass_host p = {.r = r, .only = only, .nonly = r->nonly};
    struct vm_key *keys;
    size_t n;
    if (store_vm_keys(c->store, &keys, &n) != 0) {
        log_err("reconcile: %s", store_errmsg(c->store));
    } else {
        p.vms = keys;
        p.n = n;
        ctl_hosts_each(c, pass_host, &p);
        free(keys);
    }
    if (!only) {
        ctl_volumes_settle(c);
        ctl_migrations_settle(c); /* moves a crash left open (ctl/migrate_settle.c) */
        ctl_ha_settle(c);         /* HA restarts a crash left half done (ctl/ha.c) */
        /* A few batches per pass: a backlog (a first start with a large
         * table) drains over several passes instead of in one long step. */
        ctl_events_prune(c, 4);
    }
    for (size_t h = 0; h < r->nonly; h++)
        ctl_event(c, "host", ctl_host_label(c, r->only[h]), "reconcile", "info",
                  "a reconcile pass for this host: %zu vm%s asked about", r->asked[h],
                  r->asked[h] == 1 ? "" : "s");
    if (r->again) {
        r->again = false;
        ctl_vms_reconcile(c);
    }
}

/* Room for one more queued row: 0, or -1 when out of memory (the row
 * waits for the next pass). */
static int queue_room(struct ctl_reconcile *r)
{
    if (r->nqueue < r->capqueue)
        return 0;
    size_t nc = r->capqueue ? r->capqueue * 2 : SLICE_ROWS;
    struct vm_rec *nq = realloc(r->queue, nc * sizeof *nq);
    if (!nq)
        return -1;
    r->queue = nq;
    r->capqueue = nc;
    return 0;
}

/* One slice of the pass: the next SLICE_ROWS rows by name. Rows of other
 * hosts than the pass's, or of hosts that are down, wait; a create's or a
 * delete's row is finished through the agent (vm.end, vm.remove), never
 * waiting here; the others are queued for vm.attach, and their snapshots
 * settled. */
static void slice_read(struct ctl_reconcile *r)
{
    struct ctl *c = r->c;
    struct pass_host p = {
        .r = r, .only = r->nonly ? (const char(*)[37])r->only : NULL, .nonly = r->nonly};
    struct vm_rec *vms;
    size_t n;
    if (store_vm_list_page(c->store, r->cursor, SLICE_ROWS, &vms, &n) != 0) {
        log_err("reconcile: %s", store_errmsg(c->store));
        pass_end(r);
        return;
    }
    if (n)
        snprintf(r->cursor, sizeof r->cursor, "%s", vms[n - 1].name);
    size_t nup = 0;
    for (size_t i = 0; i < n; i++) {
        struct vm_rec *vm = &vms[i];
        struct yerr down = {0};
        if (!in_pass(c, &p, vm->host) || !ctl_vm_agent(c, vm, &down))
            continue;
        vms[nup++] = *vm;
        for (size_t h = 0; h < r->nonly; h++)
            r->asked[h] += ctl_host_same(c, vm->host, r->only[h]);
        if (vm->state == VM_CREATING || vm->state == VM_DELETING) {
            ctl_vm_finish_delete(c, vm);
            continue;
        }
        if (queue_room(r) == 0)
            r->queue[r->nqueue++] = *vm;
    }
    queue_pump(r);
    ctl_snapshots_settle_all(c, vms, nup);
    free(vms);
    if (n < SLICE_ROWS) {
        pass_end(r);
        return;
    }
    struct timeval gap = {0, SLICE_GAP_MS * 1000};
    evtimer_add(r->slice, &gap); /* the next slice after what is waiting */
}

static void on_slice(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    slice_read(arg);
}

/* A pass over the hosts in only[0..nonly) (only NULL: every host). */
static void pass(struct ctl *c, const char (*only)[37], size_t nonly)
{
    struct ctl_reconcile *r = c->reconcile;
    if (!r)
        return;
    r->pass++;
    struct pass_host p = {.r = r, .only = only, .nonly = nonly};
    /* the rows to ask about; a previous pass's queue not yet asked is
     * dropped for this pass's hosts: this pass has their rows as they are
     * now (a pass of one host keeps the others' rows still to ask) */
    size_t keep = 0;
    if (only && r->queue)
        for (size_t i = r->next; i < r->nqueue; i++)
            if (!in_pass(c, &p, r->queue[i].host))
                r->queue[keep++] = r->queue[i];
    bool first = !r->swept && !only;
    bool carry = r->queue && r->first; /* the first pass's sweep still owed */
    if (!keep) {
        free(r->queue);
        r->queue = NULL;
        r->capqueue = 0;
    }
    r->nqueue = keep;
    r->next = 0;
    r->first = first || carry;
    if (!only)
        r->swept = true;
    r->nonly = only ? nonly : 0;
    if (only)
        memcpy(r->only, only, nonly * sizeof r->only[0]);
    memset(r->asked, 0, sizeof r->asked);
    r->slicing = true;
    r->cursor[0] = 0;
    slice_read(r);
}

void ctl_vms_reconcile(struct ctl *c)
{
    struct ctl_reconcile *r = c->reconcile;
    if (r && r->slicing) {
        r->again = true; /* a pass is still reading: one over every host after it */
        return;
    }
    pass(c, NULL, 0);
}

static void on_hosts_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ctl *c = arg;
    struct ctl_reconcile *r = c->reconcile;
    if (r->slicing) { /* a pass is still reading: these hosts' after it */
        struct timeval tv = {0, SOON_MS * 1000};
        evtimer_add(r->soon_hosts, &tv);
        return;
    }
    char only[SOON_HOSTS][37];
    size_t n = r->nsoon;
    memcpy(only, r->soon_host, n * sizeof only[0]);
    r->nsoon = 0;
    pass(c, (const char(*)[37])only, n);
}

void ctl_vms_reconcile_host_soon(struct ctl *c, const char *host_id)
{
    /* its own pass even when one over every host comes first: the host's
     * event then tells what its pass asked, always */
    struct ctl_reconcile *r = c->reconcile;
    if (!r)
        return;
    for (size_t i = 0; i < r->nsoon; i++)
        if (!strcmp(r->soon_host[i], host_id))
            return;
    if (r->nsoon == SOON_HOSTS || strlen(host_id) > 36) {
        ctl_vms_reconcile_soon(c);
        return;
    }
    snprintf(r->soon_host[r->nsoon++], sizeof r->soon_host[0], "%s", host_id);
    if (!evtimer_pending(r->soon_hosts, NULL)) {
        struct timeval tv = {0, SOON_MS * 1000};
        evtimer_add(r->soon_hosts, &tv);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ctl_vms_reconcile(arg);
}

void ctl_vms_reconcile_soon(struct ctl *c)
{
    struct ctl_reconcile *r = c->reconcile;
    if (!r || evtimer_pending(r->soon, NULL))
        return;
    struct timeval tv = {0, SOON_MS * 1000};
    evtimer_add(r->soon, &tv);
}

int ctl_vms_reconcile_init(struct ctl *c)
{
    struct ctl_reconcile *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->c = c;
    r->orphans.c = c;
    r->timer = event_new(c->base, -1, EV_PERSIST, on_tick, c);
    r->soon = evtimer_new(c->base, on_tick, c);
    r->soon_hosts = evtimer_new(c->base, on_hosts_tick, c);
    r->slice = evtimer_new(c->base, on_slice, r);
    if (!r->timer || !r->soon || !r->soon_hosts || !r->slice) {
        if (r->timer)
            event_free(r->timer);
        if (r->soon)
            event_free(r->soon);
        if (r->soon_hosts)
            event_free(r->soon_hosts);
        if (r->slice)
            event_free(r->slice);
        free(r);
        return -1;
    }
    struct timeval tv = {c->cfg->reconcile_interval_s, 0};
    event_add(r->timer, &tv);
    c->reconcile = r;
    return 0;
}

static void settle_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

void ctl_vms_reconcile_settle(struct ctl *c, int timeout_ms)
{
    struct ctl_reconcile *r = c->reconcile;
    bool expired = false;
    struct event *t = r ? evtimer_new(c->base, settle_expired, &expired) : NULL;
    if (!t)
        return;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (!expired && (r->vms || r->queue || r->slicing) &&
           event_base_loop(c->base, EVLOOP_ONCE) == 0)
        ;
    event_free(t);
}

void ctl_vms_reconcile_shutdown(struct ctl *c)
{
    struct ctl_reconcile *r = c->reconcile;
    if (!r)
        return;
    c->reconcile = NULL;
    while (r->vms) {
        struct rc_vm *x = r->vms;
        r->vms = x->next;
        ctl_agents_forget(c, x);
        free(x);
    }
    free(r->queue);
    rc_orphans_shutdown(&r->orphans);
    event_free(r->timer);
    event_free(r->soon);
    event_free(r->soon_hosts);
    event_free(r->slice);
    free(r);
}
