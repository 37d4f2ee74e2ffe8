/*
 * agent_attach.c - the host-local half of the controller's reconcile pass
 * (ctl/vms_reconcile.c): finding a VM's QEMU again and holding its event
 * connection, the VM directories with no VM, and the console logs' cap. No
 * store access: the controller sends what it knows of each VM and decides
 * what the answers mean for its rows.
 *
 *   vm.attach  {"vm","name","uid","pid","check","pass","sweep",
 *               "memory_mb","accel","cpu_weight","cpu_quota_us","cpu_period_us","cpuset",
 *               "memory_swap_mb","memory_high_mb","memory_lock" (absent: defaults)}
 *              -> {"seen": "up"|"coming"|"unsure"|"gone", "pid", "status", "asked",
 *                  "error"?, "fresh", "launching", "exiting", "busy", "shutdown_seen"}
 *              The pidfile's fast path, else one /proc walk per pass ("pass": the
 *              walk is made once for every call carrying the same pass number and
 *              kept until another pass number comes). A QEMU found that is not
 *              watched, or whose row disagrees ("check": the row says starting or
 *              no process; "pid": the row's pid), gets its event connection and
 *              pidfile back, a fresh one its VM's cgroup limits (from the spec
 *              fields), and the answer waits for QEMU's query-status reply over
 *              that connection (5 s at most: "status" null, "error" why). "asked"
 *              false: the QEMU is watched and agrees with the row, nothing was
 *              asked. "fresh": the connection was not open before (a re-attach
 *              the controller records). "launching" (a vm.launch holds it),
 *              "exiting" (its exit is being handled), "busy" (an earlier
 *              vm.attach still waits for QEMU): leave the VM alone this pass.
 *              A QEMU gone: the runtime entry goes (unless a restart holds it)
 *              and, with "sweep", the VM's cgroup; "fresh" then says yund held
 *              no connection to it (it died while yund was down).
 *   host.orphans {"known": [id], "pass"} -> {"orphans": [{"vm","seen","pid"}]}
 *              VM directories (names shaped like a VM id) whose id is not
 *              known, and the agent's record's QEMUs (agent_record.c) whose
 *              id is not known, and whether a QEMU of each may live (the controller
 *              ends it with vm.end, then removes the directory with
 *              vm.remove, which refuses while one lives).
 *   host.housekeep {"vms": [id]} -> {"cut": [id]}
 *              Each VM's console.log cut back past console_log_max.
 */
#include "agent/agent_local.h"
#include "agent/agent_power.h"
#include "agent/agent_record.h"
#include "compute/console_log.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "compute/qemu_proc.h"
#include "compute/qmp.h"
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTACH_STATUS_TIMEOUT_MS 5000

/* The /proc walk of the pass in progress. */
struct agent_attach {
    json_int_t pass;
    struct qemu_scan scan;
    bool scanned;
};

void agent_attach_free(struct agent_local *al)
{
    if (!al->attach)
        return;
    if (al->attach->scanned)
        qemu_scan_free(&al->attach->scan);
    free(al->attach);
    al->attach = NULL;
}

/* The walk for pass (made at its first need, reused by its other calls). */
static const struct qemu_scan *pass_scan(struct agent_local *al, struct engine *e, json_int_t pass)
{
    if (!al->attach && !(al->attach = calloc(1, sizeof *al->attach)))
        return NULL; /* qemu_seek makes one for the call */
    struct agent_attach *c = al->attach;
    if (c->scanned && c->pass != pass) {
        qemu_scan_free(&c->scan);
        c->scanned = false;
    }
    if (!c->scanned) {
        qemu_scan_run(e->vms_dir, &c->scan);
        c->scanned = true;
        c->pass = pass;
    }
    return &c->scan;
}

/* The pidfile's pid when it runs as this VM's QEMU, else 0. */
static pid_t pidfile_live(struct engine *e, const char *id, uint32_t uid)
{
    char path[600];
    if (snprintf_checked(path, sizeof(path), "%s/%s/" VMDIR_PIDFILE, e->vms_dir, id) < 0)
        return 0;
    char *s = read_file(path, 64, NULL); /* regular files only: the VM's uid owns the dir */
    if (!s)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    bool ok = v > 1 && v <= INT_MAX && (!*end || *end == '\n');
    free(s);
    return ok && qemu_pid_state((pid_t)v, id, uid) == PID_LIVE ? (pid_t)v : 0;
}

static enum qemu_seen seek(struct agent_local *al, struct engine *e, const char *id, uint32_t uid,
                           json_int_t pass, pid_t *pid)
{
    /* fast path: a pidfile naming a live QEMU of this VM needs no walk
     * (qemu_seek with no scan would make one of its own when it does not) */
    if ((*pid = pidfile_live(e, id, uid)) > 0)
        return QEMU_UP;
    const struct qemu_scan *scan = pass_scan(al, e, pass);
    if (!scan)
        return QEMU_UNSURE; /* out of memory: nothing may be concluded */
    return qemu_seek(e->vms_dir, id, uid, scan, pid);
}

static const char *seen_name(enum qemu_seen s)
{
    switch (s) {
    case QEMU_UP:
        return "up";
    case QEMU_COMING:
        return "coming";
    case QEMU_UNSURE:
        return "unsure";
    case QEMU_GONE:
        break;
    }
    return "gone";
}

static json_int_t int_arg(json_t *args, const char *key, json_int_t max, bool *ok)
{
    json_t *j = json_object_get(args, key);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > max)
        *ok = false;
    return json_integer_value(j);
}

/* The fields of the VM vm.attach needs: names, paths, cgroup limits. */
static int attach_vm(struct agent_op *op, json_t *args, const char *id, struct vm_rec *vm,
                     pid_t *row_pid, json_int_t *pass)
{
    memset(vm, 0, sizeof *vm);
    snprintf(vm->id, sizeof vm->id, "%s", id);
    const char *name = json_string_value(json_object_get(args, "name"));
    const char *accel = json_string_value(json_object_get(args, "accel"));
    const char *cpuset = json_string_value(json_object_get(args, "cpuset"));
    bool ok = (!name || strlen(name) < sizeof vm->name) &&
              (!accel || strlen(accel) < sizeof vm->accel_used) &&
              (!cpuset || strlen(cpuset) < sizeof vm->cpuset);
    snprintf(vm->name, sizeof vm->name, "%s", name ? name : id);
    snprintf(vm->accel_used, sizeof vm->accel_used, "%s", accel ? accel : "");
    snprintf(vm->cpuset, sizeof vm->cpuset, "%s", cpuset ? cpuset : "");
    if (agent_power_uid_arg(op, args, &vm->uid) < 0)
        return -1;
    *row_pid = (pid_t)int_arg(args, "pid", INT_MAX, &ok);
    *pass = int_arg(args, "pass", INT64_MAX, &ok);
    vm->memory_mb = (uint64_t)int_arg(args, "memory_mb", 16LL << 20, &ok);
    vm->cpu_weight = (unsigned)int_arg(args, "cpu_weight", 10000, &ok);
    vm->cpu_quota_us = (uint64_t)int_arg(args, "cpu_quota_us", INT64_MAX, &ok);
    vm->cpu_period_us = (uint64_t)int_arg(args, "cpu_period_us", INT64_MAX, &ok);
    json_t *sw = json_object_get(args, "memory_swap_mb");
    vm->memory_swap_mb =
        json_integer_value(sw) == -1 || !sw ? -1 : int_arg(args, "memory_swap_mb", 16LL << 20, &ok);
    vm->memory_high_mb = (uint64_t)int_arg(args, "memory_high_mb", (json_int_t)vm->memory_mb, &ok);
    vm->memory_lock = json_is_true(json_object_get(args, "memory_lock"));
    if (!ok) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: vm.attach: a field is out of range");
        return -1;
    }
    return 0;
}

/* ---- the query-status of a re-attach ---- */

struct attach_op {
    struct agent_op *op;
    struct engine *e;
    struct event *timer;
    char vm_id[37];
    char name[64];
    pid_t pid;
    bool fresh;
};

static void attach_free(struct attach_op *x, struct vm_rt *rt)
{
    if (rt && rt->pid == x->pid) { /* not a later QEMU's entry */
        rt->reattaching = false;
        qmp_watch_forget(rt->watch, x);
    }
    event_free(x->timer);
    free(x);
}

static json_t *up_reply(pid_t pid, bool asked, bool fresh)
{
    return json_pack("{s:s,s:i,s:b,s:b,s:n}", "seen", "up", "pid", (int)pid, "asked", asked,
                     "fresh", fresh, "status");
}

/* The QEMU asked about is gone meanwhile (its exit is being reported as
 * "vm.exited", or a new start runs): its answer would describe the past. */
static bool attach_stale(struct attach_op *x, struct vm_rt *rt)
{
    if (rt && rt->pid == x->pid && !rt->launch)
        return false;
    agent_op_reply(x->op, json_pack("{s:b}", "exiting", 1), NULL);
    attach_free(x, rt);
    return true;
}

static void on_status(void *ctx, json_t *ret, const char *err)
{
    struct attach_op *x = ctx;
    struct vm_rt *rt = engine_rt_find(x->e, x->vm_id);
    if (attach_stale(x, rt))
        return;
    const char *st = json_string_value(json_object_get(ret, "status"));
    json_t *r = up_reply(x->pid, true, rt ? rt->reattach_fresh : x->fresh);
    if (err || !st) {
        log_warn("vm %s: pid %d alive but QMP unreachable: %s", x->name, (int)x->pid,
                 err ? err : "query-status reply has no status");
        json_object_set_new(r, "error",
                            json_string(err ? err : "query-status reply has no status"));
        agent_op_reply(x->op, r, NULL);
        attach_free(x, rt);
        return;
    }
    json_object_set_new(r, "status", json_string(st));
    if (rt) {
        snprintf(rt->qmp_status, sizeof rt->qmp_status, "%s", st);
        rt->reattach_fresh = false; /* the controller records this re-attach */
    }
    agent_op_reply(x->op, r, NULL);
    attach_free(x, rt);
}

static void on_status_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct attach_op *x = arg;
    struct vm_rt *rt = engine_rt_find(x->e, x->vm_id);
    if (attach_stale(x, rt))
        return;
    /* its connection closed with the command unanswered, or QEMU is stuck */
    log_warn("vm %s: pid %d alive but QMP unreachable: no answer to query-status", x->name,
             (int)x->pid);
    json_t *r = up_reply(x->pid, true, rt ? rt->reattach_fresh : x->fresh);
    json_object_set_new(r, "error", json_string("no answer to query-status"));
    agent_op_reply(x->op, r, NULL);
    attach_free(x, rt);
}

static void attach_cancel(struct agent_op *op, void *arg)
{
    struct attach_op *x = arg;
    agent_op_fail(op, YE_CANCELLED, "vm.attach: cancelled");
    attach_free(x, engine_rt_find(x->e, x->vm_id));
}

/* A fresh QEMU goes back under its VM's limits: after an interrupted start
 * it still has the start-up boost, and one started by an older yund sits in
 * a group of the old naming. */
static void limits_restore(struct engine *e, const struct vm_rec *vm, pid_t pid)
{
    if (e->cg.mode == CG_NONE)
        return;
    char group[48], why[256];
    struct cg_limits lim;
    engine_vm_cgroup(vm, group);
    engine_vm_limits(vm, &lim);
    if (cg_vm_setup(&e->cg, group, &lim, why, sizeof(why)) < 0 ||
        cg_vm_attach(&e->cg, group, pid, why, sizeof(why)) < 0)
        log_warn("vm %s: cgroup: %s", vm->name, why);
}

static void reattach(struct agent_local *al, struct agent_op *op, struct engine *e,
                     struct vm_rec *vm, pid_t pid)
{
    struct vm_rt *rt = engine_rt_get(e, vm);
    if (!rt) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    if (rt->reattaching) {
        /* its status is on the way */
        agent_op_reply(op, json_pack("{s:s,s:i,s:b}", "seen", "up", "pid", (int)pid, "busy", 1),
                       NULL);
        return;
    }
    bool was_watched = rt->watch != NULL;
    rt->pid = pid;
    /* a QEMU found by the process table gets its pidfile back, so later
     * passes take the fast path */
    if (!was_watched && qemu_pidfile_write(e->vms_dir, vm->id, pid) < 0)
        log_warn("vm %s: cannot write its pidfile: %s", vm->name, strerror(errno));
    engine_attach_watch(e, rt, vm);
    /* a QEMU the agent's record misses (it failed to write, or an older
     * yund started it) is in it from now on */
    const struct agent_record_entry *rec = agent_record_find(al->record, vm->id);
    if (al->record && rt->watch && (!rec || rec->pid != pid))
        agent_record_launched(al->record, vm, pid);
    rt->reattach_fresh |= !was_watched;
    if (rt->reattach_fresh)
        limits_restore(e, vm, pid);
    struct attach_op *x = calloc(1, sizeof *x);
    if (x && !(x->timer = evtimer_new(al->base, on_status_timeout, x))) {
        free(x);
        x = NULL;
    }
    if (x) {
        x->op = op;
        x->e = e;
        x->pid = pid;
        x->fresh = rt->reattach_fresh;
        snprintf(x->vm_id, sizeof x->vm_id, "%s", vm->id);
        snprintf(x->name, sizeof x->name, "%s", vm->name);
    }
    /* the rest when QEMU answers on the event connection */
    if (x && rt->watch && qmp_watch_command(rt->watch, "query-status", NULL, on_status, x) == 0) {
        rt->reattaching = true;
        struct timeval tv = {ATTACH_STATUS_TIMEOUT_MS / 1000, 0};
        evtimer_add(x->timer, &tv);
        agent_op_on_cancel(op, attach_cancel, x);
        return;
    }
    if (x) {
        event_free(x->timer);
        free(x);
    }
    log_warn("vm %s: pid %d alive but QMP unreachable", vm->name, (int)pid);
    json_t *r = up_reply(pid, true, rt->reattach_fresh);
    json_object_set_new(r, "error", json_string("no event connection"));
    agent_op_reply(op, r, NULL);
}

static void vm_attach(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    struct vm_rec vm;
    pid_t row_pid;
    json_int_t pass;
    if (!id || attach_vm(op, args, id, &vm, &row_pid, &pass) < 0)
        return;
    struct vm_rt *rt = engine_rt_find(e, id);
    if (rt && rt->exit_timer && evtimer_pending(rt->exit_timer, NULL)) {
        agent_op_reply(op, json_pack("{s:b}", "exiting", 1), NULL); /* being handled now */
        return;
    }
    if (rt && rt->launch) {
        agent_op_reply(op, json_pack("{s:b}", "launching", 1), NULL); /* agent_launch.c's */
        return;
    }
    pid_t pid = 0;
    enum qemu_seen seen = seek(al, e, id, vm.uid, pass, &pid);
    if (seen == QEMU_UP) {
        bool check = json_is_true(json_object_get(args, "check"));
        if (!rt || !rt->watch || check || row_pid != pid)
            reattach(al, op, e, &vm, pid);
        else
            agent_op_reply(op, up_reply(pid, false, false), NULL);
        return;
    }
    if (seen == QEMU_GONE && rt && rt->watch) {
        /* gone, but its EOF is not read yet: the watch reports the exit
         * ("vm.exited"), once; an answer here would report it twice */
        agent_op_reply(op, json_pack("{s:b}", "exiting", 1), NULL);
        return;
    }
    json_t *r = json_pack("{s:s,s:i}", "seen", seen_name(seen), "pid", (int)pid);
    if (seen == QEMU_GONE) {
        json_object_set_new(r, "shutdown_seen", json_boolean(rt && rt->shutdown_seen));
        json_object_set_new(r, "fresh", json_boolean(!rt || !rt->watch));
        if (json_is_true(json_object_get(args, "sweep"))) {
            /* the row said it had a QEMU, or a yund killed between an
             * exit's row and the removal of its cgroup left the group */
            char group[48];
            engine_vm_cgroup(&vm, group);
            engine_cgroup_remove(e, group);
        }
        if (rt && !rt->watch && !rt->launch)
            engine_rt_drop(e, rt); /* a restart's timer is the controller's */
    }
    agent_op_reply(op, r, NULL);
}

/* ---- host.orphans ---- */

static bool in_ids(json_t *arr, const char *key, const char *id)
{
    size_t i;
    json_t *k;
    json_array_foreach(arr, i, k)
    {
        const char *s = json_string_value(key ? json_object_get(k, key) : k);
        if (s && !strcmp(s, id))
            return true;
    }
    return false;
}

/* The agent's record too (agent_record.c): a QEMU it launched whose VM the
 * controller does not know, and whose directory is gone already. */
static void record_orphans(struct agent_record *r, json_t *known, json_t *out)
{
    for (size_t i = 0; i < agent_record_count(r); i++) {
        const struct agent_record_entry *e = agent_record_get(r, i);
        if (in_ids(known, NULL, e->vm) || in_ids(out, "vm", e->vm))
            continue;
        bool alive = agent_record_alive(e);
        json_array_append_new(out,
                              json_pack("{s:s,s:s,s:i}", "vm", e->vm, "seen", alive ? "up" : "gone",
                                        "pid", alive ? (int)e->pid : 0));
    }
}

static void host_orphans(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    if (!e)
        return;
    json_t *known = json_object_get(args, "known");
    if (!json_is_array(known)) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: host.orphans takes \"known\": [id]");
        return;
    }
    bool ok = true;
    json_int_t pass = int_arg(args, "pass", INT64_MAX, &ok);
    json_t *out = json_array();
    DIR *d = opendir(e->vms_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len > 36 || strspn(de->d_name, "0123456789abcdef-") != len) {
            if (de->d_name[0] != '.')
                log_debug("reconcile: %s/%s is not a VM's directory: left alone", e->vms_dir,
                          de->d_name);
            continue; /* yund names VM directories by their ids only */
        }
        bool is_known = false;
        size_t i;
        json_t *k;
        json_array_foreach(known, i, k)
        {
            const char *s = json_string_value(k);
            if (s && !strcmp(s, de->d_name)) {
                is_known = true;
                break;
            }
        }
        if (is_known)
            continue;
        char id[37];
        snprintf(id, sizeof id, "%s", de->d_name);
        pid_t pid = 0;
        enum qemu_seen seen = seek(al, e, id, 0, pass, &pid);
        json_array_append_new(
            out, json_pack("{s:s,s:s,s:i}", "vm", id, "seen", seen_name(seen), "pid", (int)pid));
    }
    if (d)
        closedir(d);
    record_orphans(al->record, known, out);
    agent_op_reply(op, json_pack("{s:o}", "orphans", out), NULL);
}

/* ---- host.housekeep ---- */

static void host_housekeep(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    if (!e)
        return;
    json_t *vms = json_object_get(args, "vms");
    if (!json_is_array(vms)) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: host.housekeep takes \"vms\": [id]");
        return;
    }
    json_t *cut = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(vms, i, v)
    {
        const char *id = json_string_value(v);
        if (!id || !id[0] || strlen(id) > 36 || strspn(id, "0123456789abcdef-") != strlen(id))
            continue;
        struct vm_rec vm = {0};
        snprintf(vm.id, sizeof vm.id, "%s", id);
        char path[512], err[600];
        if (engine_vm_path(e, &vm, VMDIR_CONLOG, path, sizeof(path)) < 0)
            continue;
        int rc = console_log_cap(path, e->cfg->console_log_max, err, sizeof(err));
        if (rc < 0) {
            log_warn("vm %s: console log: %s", id, err);
        } else if (rc > 0) {
            log_debug("vm %s: console log cut back to its last %llu bytes", id,
                      (unsigned long long)(e->cfg->console_log_max / 2));
            json_array_append_new(cut, json_string(id));
        }
    }
    agent_op_reply(op, json_pack("{s:o}", "cut", cut), NULL);
}

const struct agent_verb_def agent_attach_verbs[] = {
    {AV_VM_ATTACH, "vm.attach", vm_attach},
    {AV_HOST_ORPHANS, "host.orphans", host_orphans},
    {AV_HOST_HOUSEKEEP, "host.housekeep", host_housekeep},
};
const size_t agent_attach_verbs_count = sizeof agent_attach_verbs / sizeof agent_attach_verbs[0];
