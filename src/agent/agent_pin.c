/*
 * agent_pin.c - pinning a running QEMU's threads (agent_pin.h) and the
 * verb that retunes a running VM:
 *
 *   vm.tune {"vm","name","pid","cpus","memory_mb","accel","cpu_weight",
 *            "cpu_quota_us","cpu_period_us","cpuset","cpu_pin","emulator_pin"}
 *           -> {"vcpus","others"}: the VM's cgroup limits written again
 *           (cg_vm_setup updates a group in place) and its threads pinned
 *           again, on the QEMU with that pid; its QEMU is not restarted.
 *
 * The vCPU thread ids come from QMP query-cpus-fast over the event
 * connection yund keeps open (never blocking the loop); the rest of the
 * process's threads are read from /proc/PID/task. QEMU's later threads
 * (its worker pool) are cloned from the main thread and inherit its
 * affinity, which is why the main thread takes the emulator pin too. A pin
 * is set after the cgroup: writing a v1 cpuset.cpus resets every task's
 * affinity to it. The parsing and the limits are compute/cpupin.c's.
 */
#include "agent/agent_pin.h"
#include "agent/agent_local.h"
#include "agent/agent_record.h"
#include "compute/cgroup.h"
#include "compute/cpupin.h"
#include "compute/engine.h"
#include "compute/qmp.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PIN_TIMEOUT_MS 5000
#define PIN_MAX_TIDS   CPUPIN_MAX_VCPUS

struct pin_op {
    struct engine *e;
    struct event *timer;
    char vm_id[37];
    char name[64];
    pid_t pid;
    int vcpus;
    char cpuset[64];
    char cpu_pin[256];
    char emulator_pin[64];
    agent_pin_fn done;
    void *ctx;
};

static void pin_free(struct pin_op *p)
{
    struct vm_rt *rt = engine_rt_find(p->e, p->vm_id);
    if (rt)
        qmp_watch_forget(rt->watch, p);
    if (p->timer)
        event_free(p->timer);
    free(p);
}

static void pin_end(struct pin_op *p, const char *err, int vcpus, int others)
{
    if (p->done)
        p->done(p->ctx, err, vcpus, others);
    else if (err)
        log_warn("vm %s: its threads are not pinned: %s", p->name, err);
    else
        log_debug("vm %s: pinned %d vCPU and %d other threads", p->name, vcpus, others);
    pin_free(p);
}

static int set_affinity(pid_t tid, const struct cpumask *m)
{
    cpu_set_t cs;
    CPU_ZERO(&cs);
    for (int c = 0; c < CPUPIN_MAX_CPUS && c < CPU_SETSIZE; c++)
        if (cpumask_has(m, c))
            CPU_SET(c, &cs);
    return sched_setaffinity(tid, sizeof cs, &cs);
}

/* The pins onto the threads: vCPU i (tids[i], -1 when QEMU named none) and
 * every other thread of the process. 0, or -1 with why. */
static int pin_threads(struct pin_op *p, const pid_t *tids, int n, int *vcpus, int *others,
                       char *why, size_t len)
{
    struct cpupin pin;
    struct cpumask dflt, emu;
    memset(&dflt, 0, sizeof dflt);
    if (p->cpuset[0]) {
        if (cpumask_parse(p->cpuset, "cpuset", &dflt, why, len) < 0)
            return -1;
    } else {
        int ncpus = p->e->host_cpus > 0 ? p->e->host_cpus : 1;
        long conf = sysconf(_SC_NPROCESSORS_CONF);
        if (conf > ncpus)
            ncpus = (int)conf; /* host_cpus may be configured below the real count */
        for (int c = 0; c < ncpus && c < CPUPIN_MAX_CPUS; c++)
            dflt.w[c / 64] |= 1ULL << (c % 64);
    }
    if (cpupin_parse(p->cpu_pin, &pin, why, len) < 0)
        return -1;
    emu = dflt;
    if (p->emulator_pin[0] && cpumask_parse(p->emulator_pin, "emulator-pin", &emu, why, len) < 0)
        return -1;
    *vcpus = *others = 0;
    for (int i = 0; i < n; i++) {
        if (tids[i] <= 0)
            continue;
        const struct cpumask *m = &dflt;
        for (int k = 0; k < pin.n; k++)
            if (pin.e[k].vcpu == i)
                m = &pin.e[k].cpus;
        if (set_affinity(tids[i], m) < 0) {
            snprintf(why, len, "vCPU %d (thread %d): sched_setaffinity: %s", i, (int)tids[i],
                     strerror(errno));
            return -1;
        }
        (*vcpus)++;
    }
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)p->pid);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, len, "%s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long t = strtol(de->d_name, &end, 10);
        if (*end || t <= 0 || t > INT_MAX)
            continue;
        bool vcpu = false;
        for (int i = 0; i < n; i++)
            vcpu |= tids[i] == (pid_t)t;
        if (vcpu)
            continue;
        /* a worker that ended meanwhile is no failure */
        if (set_affinity((pid_t)t, &emu) < 0 && errno != ESRCH) {
            snprintf(why, len, "thread %ld: sched_setaffinity: %s", t, strerror(errno));
            closedir(d);
            return -1;
        }
        (*others)++;
    }
    closedir(d);
    return 0;
}

static void on_cpus(void *ctx, json_t *ret, const char *err)
{
    struct pin_op *p = ctx;
    struct vm_rt *rt = engine_rt_find(p->e, p->vm_id);
    evtimer_del(p->timer);
    if (!rt || rt->pid != p->pid) {
        pin_end(p, "its QEMU is gone", 0, 0);
        return;
    }
    if (err || !json_is_array(ret)) {
        char why[300];
        snprintf(why, sizeof why, "QMP query-cpus-fast: %s", err ? err : "not a list");
        pin_end(p, why, 0, 0);
        return;
    }
    pid_t tids[PIN_MAX_TIDS];
    int n = 0;
    for (int i = 0; i < PIN_MAX_TIDS; i++)
        tids[i] = -1;
    size_t i;
    json_t *cpu;
    json_array_foreach(ret, i, cpu)
    {
        json_t *idx = json_object_get(cpu, "cpu-index"), *tid = json_object_get(cpu, "thread-id");
        if (!json_is_integer(idx) || !json_is_integer(tid) || json_integer_value(idx) < 0 ||
            json_integer_value(idx) >= PIN_MAX_TIDS || json_integer_value(tid) <= 0 ||
            json_integer_value(tid) > INT_MAX)
            continue;
        int k = (int)json_integer_value(idx);
        tids[k] = (pid_t)json_integer_value(tid);
        if (k + 1 > n)
            n = k + 1;
    }
    char why[300];
    int vc = 0, ot = 0;
    if (pin_threads(p, tids, n, &vc, &ot, why, sizeof why) < 0)
        pin_end(p, why, vc, ot);
    else
        pin_end(p, NULL, vc, ot);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pin_op *p = arg;
    char why[96];
    snprintf(why, sizeof why, "QMP query-cpus-fast: no answer in %d s", PIN_TIMEOUT_MS / 1000);
    pin_end(p, why, 0, 0);
}

static struct pin_op *pin_start(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm,
                                agent_pin_fn done, void *ctx)
{
    if (!rt || !rt->watch || rt->pid <= 0)
        return NULL;
    struct pin_op *p = calloc(1, sizeof *p);
    if (!p || !(p->timer = evtimer_new(e->base, on_timeout, p))) {
        free(p);
        return NULL;
    }
    p->e = e;
    p->pid = rt->pid;
    p->vcpus = vm->cpus;
    p->done = done;
    p->ctx = ctx;
    snprintf(p->vm_id, sizeof p->vm_id, "%s", vm->id);
    snprintf(p->name, sizeof p->name, "%s", vm->name[0] ? vm->name : vm->id);
    snprintf(p->cpuset, sizeof p->cpuset, "%s", vm->cpuset);
    snprintf(p->cpu_pin, sizeof p->cpu_pin, "%s", vm->cpu_pin);
    snprintf(p->emulator_pin, sizeof p->emulator_pin, "%s", vm->emulator_pin);
    if (qmp_watch_command(rt->watch, "query-cpus-fast", NULL, on_cpus, p) < 0) {
        event_free(p->timer);
        free(p);
        return NULL;
    }
    struct timeval tv = {PIN_TIMEOUT_MS / 1000, 0};
    evtimer_add(p->timer, &tv);
    return p;
}

int agent_pin_apply(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm, agent_pin_fn done,
                    void *ctx)
{
    return pin_start(e, rt, vm, done, ctx) ? 0 : -1;
}

void agent_pin_launched(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm)
{
    if ((vm->cpu_pin[0] || vm->emulator_pin[0]) && agent_pin_apply(e, rt, vm, NULL, NULL) < 0)
        log_warn("vm %s: its threads are not pinned: QMP is not reachable", vm->name);
}

/* ---- vm.tune ---- */

struct tune_op {
    struct agent_op *op;
    struct agent_local *al;
    struct vm_rec vm;
    struct pin_op *pin; /* NULL once it ended */
};

static void on_tuned(void *ctx, const char *err, int vcpus, int others)
{
    struct tune_op *t = ctx;
    t->pin = NULL;
    if (err) {
        agent_op_fail(t->op, YE_QEMU_ERROR, "vm %s: pins: %s", t->vm.name, err);
    } else {
        /* an agent restarted puts these back (vm.attach from its record) */
        if (t->al->record)
            agent_record_launched(t->al->record, &t->vm, t->vm.pid);
        if (t->vm.memory_min_mb)
            agent_balloon_set_min(t->al, &t->vm);
        agent_op_reply(t->op, json_pack("{s:i,s:i}", "vcpus", vcpus, "others", others), NULL);
    }
    free(t);
}

static void tune_cancel(struct agent_op *op, void *arg)
{
    struct tune_op *t = arg;
    /* the pins are being set: they finish, nobody is told */
    if (t->pin)
        t->pin->done = NULL;
    agent_op_fail(op, YE_CANCELLED, "vm.tune: cancelled");
    free(t);
}

static const char *str_arg(json_t *args, const char *key, char *out, size_t len, bool *ok)
{
    const char *s = json_string_value(json_object_get(args, key));
    if (!s || strlen(s) >= len)
        *ok = false;
    snprintf(out, len, "%s", s && strlen(s) < len ? s : "");
    return out;
}

static uint64_t int_arg(json_t *args, const char *key, int64_t lo, int64_t hi, bool *ok)
{
    json_t *j = json_object_get(args, key);
    if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi) {
        *ok = false;
        return (uint64_t)lo;
    }
    return (uint64_t)json_integer_value(j);
}

static void vm_tune(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    struct tune_op *t = calloc(1, sizeof *t);
    if (!t) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    struct vm_rec *vm = &t->vm;
    bool ok = true;
    snprintf(vm->id, sizeof vm->id, "%s", id);
    str_arg(args, "name", vm->name, sizeof vm->name, &ok);
    str_arg(args, "accel", vm->accel_used, sizeof vm->accel_used, &ok);
    str_arg(args, "cpuset", vm->cpuset, sizeof vm->cpuset, &ok);
    str_arg(args, "cpu_pin", vm->cpu_pin, sizeof vm->cpu_pin, &ok);
    str_arg(args, "emulator_pin", vm->emulator_pin, sizeof vm->emulator_pin, &ok);
    vm->pid = (pid_t)int_arg(args, "pid", 1, INT_MAX, &ok);
    vm->uid = (uint32_t)int_arg(args, "uid", 0, UINT32_MAX, &ok);
    vm->cpus = (int)int_arg(args, "cpus", 1, CPUPIN_MAX_VCPUS, &ok);
    vm->memory_mb = int_arg(args, "memory_mb", 16, 16LL << 20, &ok);
    vm->cpu_weight = (unsigned)int_arg(args, "cpu_weight", 0, 10000, &ok);
    vm->cpu_quota_us = int_arg(args, "cpu_quota_us", 0, 1LL << 40, &ok);
    vm->cpu_period_us = int_arg(args, "cpu_period_us", 0, 1LL << 40, &ok);
    /* the memory policy, which the cgroup write keeps (absent: the
     * defaults, as a controller from before it sends) */
    json_t *sw = json_object_get(args, "memory_swap_mb"),
           *hi = json_object_get(args, "memory_high_mb"),
           *lk = json_object_get(args, "memory_lock");
    vm->memory_swap_mb = sw ? (int64_t)int_arg(args, "memory_swap_mb", -1, 16LL << 20, &ok) : -1;
    vm->memory_high_mb = hi ? int_arg(args, "memory_high_mb", 0, 16LL << 20, &ok) : 0;
    if (lk && !json_is_boolean(lk))
        ok = false;
    vm->memory_lock = json_is_true(lk);
    /* the balloon's floor (absent: a controller from before it, which
     * leaves the balloon loop's floor as the launch gave it) */
    json_t *mn = json_object_get(args, "memory_min_mb");
    vm->memory_min_mb = mn ? int_arg(args, "memory_min_mb", 1, (int64_t)vm->memory_mb, &ok) : 0;
    char why[256];
    struct cg_limits lim;
    engine_vm_limits(vm, &lim);
    if (!ok) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.tune: a field is missing or out of range");
        free(t);
        return;
    }
    /* this host's own CPUs: the controller checked its facts, this is the
     * host itself */
    if (cg_limits_validate(&lim, e->host_cpus, cg_swap_accounting(&e->cg), why, sizeof why) < 0 ||
        cpupin_validate(vm->cpu_pin, vm->emulator_pin, vm->cpus, vm->cpuset, e->host_cpus, why,
                        sizeof why) < 0) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "%s", why);
        free(t);
        return;
    }
    struct vm_rt *rt = engine_rt_find(e, id);
    if (!rt || !rt->watch || rt->pid != vm->pid || rt->launch) {
        agent_op_fail(op, YE_CONFLICT,
                      "vm %s: its QEMU (pid %d) is not the one this host runs and watches now",
                      vm->name, (int)vm->pid);
        free(t);
        return;
    }
    char group[48];
    engine_vm_cgroup(vm, group);
    if (e->cg.mode != CG_NONE && cg_vm_setup(&e->cg, group, &lim, why, sizeof why) < 0) {
        agent_op_fail(op, YE_CGROUP_ERROR, "%s", why);
        free(t);
        return;
    }
    t->op = op;
    t->al = al;
    if (!(t->pin = pin_start(e, rt, vm, on_tuned, t))) {
        agent_op_fail(op, YE_QEMU_ERROR, "vm %s: QMP query-cpus-fast could not be sent", vm->name);
        free(t);
        return;
    }
    agent_op_on_cancel(op, tune_cancel, t);
}

const struct agent_verb_def agent_pin_verbs[] = {
    {AV_VM_TUNE, "vm.tune", vm_tune},
};
const size_t agent_pin_verbs_count = sizeof agent_pin_verbs / sizeof agent_pin_verbs[0];
