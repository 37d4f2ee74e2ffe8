/*
 * agent_balloon.c - the host's balloon loop: every balloon_interval_ms it
 * reads the host's memory (/proc/meminfo, /proc/pressure/memory where the
 * kernel has it) and, over the QMP event connection, each running VM's
 * balloon (query-balloon) and guest memory figures (qom-get guest-stats on
 * /machine/peripheral/balloon0, polled by QEMU every second: qemu_argv.c), lets
 * the pure policy (sched/balloon_policy.h) decide, and sends `balloon` where
 * a target changed. Each change is the agent event "vm.balloon" {vm, target,
 * actual, reason} (the controller's event log) and the target is in
 * host.sample (metrics).
 *
 * What a VM may be ballooned to comes with its vm.launch: the spec's
 * memory_min_mb (absent: the memory size, so never ballooned); vm.tune
 * (a live `vm update --memory-min`) changes it. A VM this
 * agent did not launch (found again after a restart) is left alone. All on
 * the loop: procfs reads are what host.sample does there too, and QMP is the
 * non-blocking watch; a round whose QEMUs do not answer within ROUND_MS
 * decides without them.
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/qmp.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/procfs.h"
#include "lib/util.h"
#include "sched/balloon_policy.h"
#include "store/records.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIB      (1ULL << 20)
#define ROUND_MS 1000 /* a round waits at most this long for the QEMUs */

struct bvm {
    struct bvm *next;
    struct agent_balloon *b;
    char vm[37];
    uint64_t size, min; /* bytes */
    pid_t pid;          /* the QEMU this is for (0 until seen running) */
    uint64_t target;    /* the target sent last (0: none, the size) */
    uint64_t actual;
    bool have_stats, in_round;
    uint64_t gfree, gavail;
    int64_t last_update; /* guest-stats "last-update", s since the epoch */
    int since_giveback;
    int waiting; /* QMP answers still to come this round */
};

struct agent_balloon {
    struct agent_local *al;
    struct event *tick, *deadline;
    struct bvm *vms;
    int waiting;
};

static struct bvm *bvm_find(struct agent_balloon *b, const char *vm)
{
    for (struct bvm *v = b ? b->vms : NULL; v; v = v->next)
        if (!strcmp(v->vm, vm))
            return v;
    return NULL;
}

static void bvm_drop(struct agent_balloon *b, struct bvm **pp)
{
    struct bvm *v = *pp;
    struct engine *e = b->al->host;
    struct vm_rt *rt = e ? engine_rt_find(e, v->vm) : NULL;
    if (rt && rt->watch)
        qmp_watch_forget(rt->watch, v);
    b->waiting -= v->waiting;
    *pp = v->next;
    free(v);
}

static struct agent_balloon *balloon_get(struct agent_local *al)
{
    if (!al->balloon && (al->balloon = calloc(1, sizeof *al->balloon)))
        al->balloon->al = al;
    return al->balloon;
}

int agent_balloon_spec(struct agent_local *al, const struct vm_rec *vm, struct yerr *err)
{
    const char *id = vm->id;
    /* agent_wire.c checked memory_min_mb against memory_mb; 0 is a
     * controller from before it: the whole memory, never ballooned */
    uint64_t min_mb =
        vm->memory_min_mb && vm->memory_min_mb < vm->memory_mb ? vm->memory_min_mb : vm->memory_mb;
    struct agent_balloon *b = balloon_get(al);
    struct bvm *v = bvm_find(b, id);
    if (!b || (!v && !(v = calloc(1, sizeof *v)))) {
        log_warn("vm %s: out of memory: its balloon is left alone", id);
        return 0;
    }
    if (!v->b) {
        v->b = b;
        snprintf(v->vm, sizeof v->vm, "%s", id);
        v->next = b->vms;
        b->vms = v;
    }
    /* a new QEMU starts with its balloon empty: everything else is the
     * last QEMU's */
    struct agent_balloon *keep = v->b;
    struct bvm *next = v->next;
    int waiting = v->waiting;
    memset(v, 0, sizeof *v);
    v->b = keep;
    v->next = next;
    v->waiting = waiting;
    snprintf(v->vm, sizeof v->vm, "%s", id);
    v->size = vm->memory_mb * MIB;
    v->min = min_mb * MIB;
    v->since_giveback = 1 << 20;
    return 0;
}

bool agent_balloon_target(struct agent_local *al, const char *vm, pid_t pid, uint64_t *target)
{
    struct bvm *v = bvm_find(al->balloon, vm);
    if (!v || v->pid != pid || v->min >= v->size)
        return false;
    *target = v->target ? v->target : v->size;
    return true;
}

/* ---- a round ---- */

static void read_host(struct balloon_host *h)
{
    memset(h, 0, sizeof *h);
    char *mi = read_file("/proc/meminfo", 1 << 20, NULL);
    if (procfs_meminfo(mi, &h->mem_total, &h->mem_available) < 0)
        h->mem_total = h->mem_available = 0;
    free(mi);
    char *psi = read_file("/proc/pressure/memory", 1 << 16, NULL);
    h->have_psi = procfs_psi(psi, &h->psi_some_avg10, &h->psi_full_avg10) == 0;
    free(psi);
}

static void on_set(void *ctx, json_t *ret, const char *err)
{
    struct bvm *v = ctx;
    if (err)
        log_warn("vm %s: balloon %llu MiB: %s", v->vm, (unsigned long long)(v->target / MIB), err);
}

static void apply(struct agent_balloon *b, struct bvm *v, const struct balloon_decision *d)
{
    struct engine *e = b->al->host;
    struct vm_rt *rt = e ? engine_rt_find(e, v->vm) : NULL;
    json_t *args = json_pack("{s:I}", "value", (json_int_t)d->target);
    int rc = rt && rt->watch ? qmp_watch_command(rt->watch, "balloon", args, on_set, v) : -1;
    json_decref(args);
    if (rc < 0)
        return; /* the next round tries again */
    uint64_t was = v->target ? v->target : v->size;
    v->since_giveback = d->target > was ? 0 : v->since_giveback;
    v->target = d->target;
    json_t *ev = json_pack("{s:s,s:I,s:I,s:I,s:I,s:s}", "vm", v->vm, "target",
                           (json_int_t)d->target, "actual", (json_int_t)v->actual, "min",
                           (json_int_t)v->min, "size", (json_int_t)v->size, "reason", d->reason);
    if (ev)
        agent_emit(&b->al->pub, "vm.balloon", ev);
    json_decref(ev);
}

void agent_balloon_set_min(struct agent_local *al, const struct vm_rec *vm)
{
    struct agent_balloon *b = al->balloon;
    if (!b || !b->tick || !vm->memory_min_mb)
        return; /* no loop: nothing is ballooned */
    struct bvm *v = bvm_find(b, vm->id);
    if (!v) {
        /* launched unballooned (its floor was its size): from now on it is
         * one, for its running QEMU (the launch's spec, without a launch) */
        if (vm->memory_min_mb >= vm->memory_mb || agent_balloon_spec(al, vm, NULL) < 0 ||
            !(v = bvm_find(b, vm->id)))
            return;
        v->pid = vm->pid;
        return;
    }
    if (v->pid && v->pid != vm->pid)
        return; /* another QEMU than the one tuned */
    uint64_t min = vm->memory_min_mb * MIB;
    v->min = min < v->size ? min : v->size;
    uint64_t cur = v->target ? v->target : v->size;
    if (cur >= v->min)
        return; /* the next round decides within the new floor */
    struct balloon_decision d = {
        .target = v->min,
        .changed = true,
        .reason = v->min >= v->size ? "memory_min raised to its size: given back, not ballooned"
                                    : "memory_min raised: given back to the new minimum"};
    apply(b, v, &d);
    if (v->min >= v->size)
        v->target = 0;
}

static void knobs_of(const struct yun_config *cfg, struct balloon_knobs *k)
{
    balloon_knobs_default(k);
    if (!cfg)
        return;
    k->host_reserve = cfg->balloon_host_reserve;
    k->guest_reserve = cfg->balloon_guest_reserve;
    k->psi_some = cfg->balloon_psi_some;
    k->step_pct = cfg->balloon_step_pct;
    /* the guest figures come every second: stale after a few rounds, or 10 s */
    int rounds_s = cfg->balloon_interval_ms * 3 / 1000;
    k->stats_max_age_s = rounds_s > 10 ? rounds_s : 10;
}

static void decide(struct agent_balloon *b)
{
    evtimer_del(b->deadline);
    size_t n = 0;
    for (struct bvm *v = b->vms; v; v = v->next)
        n += v->in_round;
    struct balloon_vm *in = n ? calloc(n, sizeof *in) : NULL;
    struct balloon_decision *out = n ? calloc(n, sizeof *out) : NULL;
    struct bvm **who = n ? calloc(n, sizeof *who) : NULL;
    if (n && (!in || !out || !who)) {
        free(in);
        free(out);
        free(who);
        return;
    }
    struct balloon_host h;
    read_host(&h);
    int64_t now = (int64_t)time(NULL);
    size_t i = 0;
    for (struct bvm *v = b->vms; v; v = v->next) {
        if (!v->in_round)
            continue;
        v->in_round = false;
        who[i] = v;
        /* a QEMU that came with its balloon inflated (a live migration's
         * target: the balloon's state moves with the guest) starts from
         * there, so the policy gives it back rather than taking it for full */
        if (!v->target && v->actual && v->actual < v->size)
            v->target = v->actual - v->actual % MIB;
        in[i] = (struct balloon_vm){.size = v->size,
                                    .min = v->min,
                                    .actual = v->actual,
                                    .target = v->target,
                                    .have_stats = v->have_stats,
                                    .guest_free = v->gfree,
                                    .guest_available = v->gavail,
                                    .stats_age_s = (int)(now - v->last_update),
                                    .since_giveback = v->since_giveback};
        if (v->since_giveback < (1 << 20))
            v->since_giveback++;
        i++;
    }
    if (n && h.mem_total) {
        struct balloon_knobs k;
        knobs_of(b->al->cfg, &k);
        balloon_decide(&k, &h, in, n, out);
        for (i = 0; i < n; i++)
            if (out[i].changed)
                apply(b, who[i], &out[i]);
    }
    free(in);
    free(out);
    free(who);
}

static void answered(struct bvm *v)
{
    struct agent_balloon *b = v->b;
    v->waiting--;
    if (--b->waiting == 0)
        decide(b);
}

static int64_t jnum(json_t *o, const char *k)
{
    json_t *x = json_object_get(o, k);
    return json_is_integer(x) ? json_integer_value(x) : -1; /* QEMU's "none" reads as -1 */
}

static void on_stats(void *ctx, json_t *ret, const char *err)
{
    struct bvm *v = ctx;
    json_t *s = json_object_get(ret, "stats");
    int64_t fr = jnum(s, "stat-free-memory"), av = jnum(s, "stat-available-memory");
    int64_t up = jnum(ret, "last-update");
    v->have_stats = fr >= 0 && av >= 0 && up > 0;
    v->gfree = fr > 0 ? (uint64_t)fr : 0;
    v->gavail = av > 0 ? (uint64_t)av : 0;
    v->last_update = up;
    answered(v);
}

static void on_query(void *ctx, json_t *ret, const char *err)
{
    struct bvm *v = ctx;
    int64_t a = jnum(ret, "actual");
    v->actual = a > 0 ? (uint64_t)a : 0;
    answered(v);
}

static void ask(struct bvm *v, struct qmp_watch *w, const char *cmd, json_t *args, qmp_reply_cb cb)
{
    if (qmp_watch_command(w, cmd, args, cb, v) == 0) {
        v->waiting++;
        v->b->waiting++;
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct agent_balloon *b = arg;
    struct engine *e = b->al->host;
    /* the late answers are not waited for: a VM without both is out of this round */
    for (struct bvm *v = b->vms; v; v = v->next)
        if (v->waiting) {
            struct vm_rt *rt = e ? engine_rt_find(e, v->vm) : NULL;
            if (rt && rt->watch)
                qmp_watch_forget(rt->watch, v);
            v->waiting = 0;
            v->in_round = false;
        }
    b->waiting = 0;
    decide(b);
}

static void arm(struct agent_balloon *b)
{
    const struct yun_config *cfg = b->al->cfg;
    int ms = cfg ? cfg->balloon_interval_ms : 5000;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(b->tick, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct agent_balloon *b = arg;
    struct engine *e = b->al->host;
    arm(b);
    if (b->waiting > 0 || !e)
        return; /* the last round is still asking (its deadline ends it) */
    json_t *stats =
        json_pack("{s:s,s:s}", "path", "/machine/peripheral/balloon0", "property", "guest-stats");
    for (struct bvm **pp = &b->vms; *pp;) {
        struct bvm *v = *pp;
        struct vm_rt *rt = engine_rt_find(e, v->vm);
        if (!rt) {
            bvm_drop(b, pp); /* its QEMU is gone: a start brings a new spec */
            continue;
        }
        pp = &v->next;
        if (!rt->watch || rt->pid <= 0 || rt->launch || strcmp(rt->qmp_status, "running"))
            continue; /* starting, paused, migrating in: not now */
        if (!v->pid)
            v->pid = rt->pid;
        if (v->pid != rt->pid || v->min >= v->size)
            continue; /* another QEMU than the launch told of, or not ballooned */
        v->in_round = true;
        ask(v, rt->watch, "qom-get", stats, on_stats);
        ask(v, rt->watch, "query-balloon", NULL, on_query);
        if (v->waiting < 2)
            v->in_round = false; /* no room on its connection: not this round */
    }
    json_decref(stats);
    if (b->waiting == 0) {
        decide(b);
        return;
    }
    struct timeval tv = {ROUND_MS / 1000, (ROUND_MS % 1000) * 1000};
    evtimer_add(b->deadline, &tv);
}

void agent_balloon_start(struct agent_local *al)
{
    if (!al->host || !al->cfg || !al->cfg->balloon_policy)
        return;
    struct agent_balloon *b = balloon_get(al);
    if (!b || b->tick)
        return;
    b->tick = evtimer_new(al->base, on_tick, b);
    b->deadline = evtimer_new(al->base, on_deadline, b);
    if (!b->tick || !b->deadline) {
        log_warn("balloon policy: no timer: off");
        return;
    }
    arm(b);
}

void agent_balloon_free(struct agent_local *al)
{
    struct agent_balloon *b = al->balloon;
    if (!b)
        return;
    while (b->vms)
        bvm_drop(b, &b->vms);
    if (b->tick)
        event_free(b->tick);
    if (b->deadline)
        event_free(b->deadline);
    free(b);
    al->balloon = NULL;
}
