/*
 * vms_update.c - `yun vm update`: a VM's CPU weight, quota, cpuset,
 * thread pins and balloon minimum (memory_min) changed in place. A stopped VM gets only its row
 * (its next start uses it); a running or paused one also gets them live through its host's agent
 * (vm.tune: the cgroup files written again, the vCPU and emulator threads pinned again, the balloon
 * loop given the new floor), without a restart. Nothing is half applied: every value is checked
 * before the row is written, and a live step that fails puts the row's old values back.
 */
#include "agent/agent.h"
#include "compute/cgroup.h"
#include "compute/cpupin.h"
#include "compute/engine.h"
#include "ctl/hosts.h"
#include "ctl/vms_int.h"
#include "lib/log.h"
#include "lib/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The fields an update may change, copied from one row to another. */
static void tunables_copy(struct vm_rec *to, const struct vm_rec *from)
{
    to->cpu_weight = from->cpu_weight;
    to->cpu_quota_us = from->cpu_quota_us;
    to->cpu_period_us = from->cpu_period_us;
    snprintf(to->cpuset, sizeof to->cpuset, "%s", from->cpuset);
    snprintf(to->cpu_pin, sizeof to->cpu_pin, "%s", from->cpu_pin);
    snprintf(to->emulator_pin, sizeof to->emulator_pin, "%s", from->emulator_pin);
    to->memory_min_mb = from->memory_min_mb;
}

static bool tunables_equal(const struct vm_rec *a, const struct vm_rec *b)
{
    return a->cpu_weight == b->cpu_weight && a->cpu_quota_us == b->cpu_quota_us &&
           a->cpu_period_us == b->cpu_period_us && !strcmp(a->cpuset, b->cpuset) &&
           !strcmp(a->cpu_pin, b->cpu_pin) && !strcmp(a->emulator_pin, b->emulator_pin) &&
           a->memory_min_mb == b->memory_min_mb;
}

/* "cpu_weight 100 -> 200, cpu_pin '' -> '0:0'" (the event's reason). */
static void what_changed(const struct vm_rec *o, const struct vm_rec *n, char *out, size_t len)
{
    size_t k = 0;
    out[0] = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (k < len)                                                                               \
            k += (size_t)snprintf(out + k, len - k, "%s", k ? ", " : "");                          \
        if (k < len)                                                                               \
            k += (size_t)snprintf(out + k, len - k, __VA_ARGS__);                                  \
    } while (0)
    if (o->cpu_weight != n->cpu_weight)
        ADD("cpu_weight %u -> %u", o->cpu_weight, n->cpu_weight);
    if (o->cpu_quota_us != n->cpu_quota_us || o->cpu_period_us != n->cpu_period_us)
        ADD("cpu_max %" PRIu64 "/%" PRIu64 " -> %" PRIu64 "/%" PRIu64, o->cpu_quota_us,
            o->cpu_period_us, n->cpu_quota_us, n->cpu_period_us);
    if (strcmp(o->cpuset, n->cpuset))
        ADD("cpuset '%s' -> '%s'", o->cpuset, n->cpuset);
    if (strcmp(o->cpu_pin, n->cpu_pin))
        ADD("cpu_pin '%s' -> '%s'", o->cpu_pin, n->cpu_pin);
    if (strcmp(o->emulator_pin, n->emulator_pin))
        ADD("emulator_pin '%s' -> '%s'", o->emulator_pin, n->emulator_pin);
    if (o->memory_min_mb != n->memory_min_mb)
        ADD("memory_min %llu MiB -> %llu MiB", (unsigned long long)o->memory_min_mb,
            (unsigned long long)n->memory_min_mb);
#undef ADD
    if (!out[0])
        snprintf(out, len, "nothing changed");
}

/* The old values go back on the row, unless someone changed them since. */
static void row_restore(struct ctl *c, const struct vm_rec *old, const struct vm_rec *applied)
{
    struct vm_rec now;
    if (store_vm_get(c->store, old->id, &now) != 0 || !tunables_equal(&now, applied))
        return;
    tunables_copy(&now, old);
    now.updated_at = now_ms();
    if (store_vm_update(c->store, &now) != 0)
        log_warn("vm %s: cannot put its old limits back: %s", now.name, store_errmsg(c->store));
}

static void on_tuned(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct ctl_vmop *op = ctx;
    struct ctl *c = op->c;
    struct vm_rec old = op->vm, now;
    struct yerr err = {0};
    /* op->args holds the row's values before the update */
    json_t *o = op->args;
    old.cpu_weight = (unsigned)json_integer_value(json_object_get(o, "cpu_weight"));
    old.cpu_quota_us = (uint64_t)json_integer_value(json_object_get(o, "cpu_quota_us"));
    old.cpu_period_us = (uint64_t)json_integer_value(json_object_get(o, "cpu_period_us"));
    snprintf(old.cpuset, sizeof old.cpuset, "%s",
             json_string_value(json_object_get(o, "cpuset")) ?: "");
    snprintf(old.cpu_pin, sizeof old.cpu_pin, "%s",
             json_string_value(json_object_get(o, "cpu_pin")) ?: "");
    snprintf(old.emulator_pin, sizeof old.emulator_pin, "%s",
             json_string_value(json_object_get(o, "emulator_pin")) ?: "");
    old.memory_min_mb = (uint64_t)json_integer_value(json_object_get(o, "memory_min_mb"));
    if (aerr) {
        row_restore(c, &old, &op->vm);
        ctl_event(c, "vm", op->vm.name, "updated", "error", "%s", aerr->message);
        ctl_vmop_finish(op, NULL, aerr);
        return;
    }
    char what[600];
    what_changed(&old, &op->vm, what, sizeof what);
    ctl_event(c, "vm", op->vm.name, "updated", "ok", "%s (live: %d vCPU, %d other threads pinned)",
              what, (int)json_integer_value(json_object_get(r, "vcpus")),
              (int)json_integer_value(json_object_get(r, "others")));
    if (ctl_vm_get(c, op->vm.id, &now, &err) < 0) {
        ctl_vmop_finish(op, NULL, &err);
        return;
    }
    ctl_vmop_finish(op, &now, NULL);
}

static void apply(const struct vm_update *u, struct vm_rec *v)
{
    if (u->has_weight)
        v->cpu_weight = u->cpu_weight;
    if (u->has_quota) {
        v->cpu_quota_us = u->cpu_quota_us;
        v->cpu_period_us = u->cpu_period_us;
    }
    if (u->has_cpuset)
        snprintf(v->cpuset, sizeof v->cpuset, "%s", u->cpuset);
    if (u->has_pin)
        snprintf(v->cpu_pin, sizeof v->cpu_pin, "%s", u->cpu_pin);
    if (u->has_epin)
        snprintf(v->emulator_pin, sizeof v->emulator_pin, "%s", u->emulator_pin);
    if (u->has_min)
        v->memory_min_mb = u->memory_min_mb;
}

/* A minimum within the VM's memory, and, raised on a VM with a QEMU while
 * memory is overcommitted, within what its host's floors may keep
 * (capacity.c: the bound a start is admitted by). */
static int min_check(struct ctl *c, const struct vm_rec *old, const struct vm_rec *vm, bool live,
                     struct yerr *err)
{
    if (vm->memory_min_mb > vm->memory_mb)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_min %llu MiB is above memory %llu MiB (the balloon's floor must "
                        "be within the VM's memory)",
                        (unsigned long long)vm->memory_min_mb, (unsigned long long)vm->memory_mb);
    uint64_t was = ctl_vm_floor_bytes(old), now = ctl_vm_floor_bytes(vm);
    if (!live || now <= was || c->cfg->mem_overcommit <= 1.0)
        return 0;
    struct host_usage hu;
    if (ctl_host_usage(c, vm->host, &hu, err) < 0)
        return -1;
    uint64_t others = hu.mem_floor_used > was ? hu.mem_floor_used - was : 0;
    if (others + now > hu.mem_floor_capacity)
        return yerr_set(err, YE_INSUFFICIENT_CAPACITY,
                        "vm '%s' would keep at least %llu MiB; its host's other VMs keep %llu MiB "
                        "of the %llu MiB that memory overcommit %.1f may not reach into (usable "
                        "memory less memory_margin)",
                        vm->name, (unsigned long long)(now >> 20),
                        (unsigned long long)(others >> 20),
                        (unsigned long long)(hu.mem_floor_capacity >> 20), c->cfg->mem_overcommit);
    return 0;
}

int ctl_vm_update(struct ctl *c, const char *name, const struct vm_update *u, ctl_vm_fn done,
                  void *ctx, struct vm_rec *now, struct yerr *err)
{
    struct vm_rec old, vm;
    if (ctl_vm_get(c, name, &old, err) < 0)
        return -1;
    bool live = old.state == VM_RUNNING || old.state == VM_PAUSED;
    if (!live && old.state != VM_STOPPED && old.state != VM_CRASHED)
        return yerr_set(err, YE_CONFLICT,
                        "vm '%s' is %s: it can be updated when running, paused or stopped",
                        old.name, vm_state_name(old.state));
    vm = old;
    apply(u, &vm);

    /* every value against the host's CPUs first: nothing is written yet */
    const struct ctl_host *h = ctl_host_facts(c, vm.host);
    if (live && !h)
        return yerr_set(err, YE_UNAVAILABLE, "host %s is not known or not reachable",
                        vm.host[0] ? vm.host : "(local)");
    int ncpus = h ? h->cpus : 0;
    char why[256];
    struct cg_limits l;
    engine_vm_limits(&vm, &l);
    if (cg_limits_validate(&l, ncpus, h ? (enum cg_swap_acct)h->swap_acct : CG_SWAP_UNKNOWN, why,
                           sizeof why) < 0 ||
        cpupin_validate(vm.cpu_pin, vm.emulator_pin, vm.cpus, vm.cpuset, ncpus, why, sizeof why) <
            0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (min_check(c, &old, &vm, live, err) < 0)
        return -1;
    if (ctl_vmop_busy(c, vm.id))
        return yerr_set(err, YE_CONFLICT, "vm '%s' has an operation in flight", vm.name);
    if (live && !ctl_vm_agent(c, &vm, err))
        return -1; /* its host is down: 503, nothing changed */

    struct ctl_vmop *op = ctl_vmop_new(c, &vm, done, ctx);
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    if (ctl_vm_task_begin(c, "vm.update", &vm, &op->task, err) < 0) {
        ctl_vmop_free(op);
        return -1;
    }
    vm.updated_at = now_ms();
    if (store_vm_update(c->store, &vm) != 0) {
        yerr_db(err, store_errmsg(c->store));
        ctl_vm_task_end(c, &op->task, NULL, err);
        ctl_vmop_free(op);
        return -1;
    }
    op->vm = vm;
    if (!live) {
        char what[600];
        what_changed(&old, &vm, what, sizeof what);
        ctl_event(c, "vm", vm.name, "updated", "ok", "%s", what);
        ctl_vm_task_end(c, &op->task, &vm, NULL);
        ctl_vmop_free(op);
        *now = vm;
        return 1;
    }
    op->args =
        json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:I}", "cpu_weight", (json_int_t)old.cpu_weight,
                  "cpu_quota_us", (json_int_t)old.cpu_quota_us, "cpu_period_us",
                  (json_int_t)old.cpu_period_us, "cpuset", old.cpuset, "cpu_pin", old.cpu_pin,
                  "emulator_pin", old.emulator_pin, "memory_min_mb", (json_int_t)old.memory_min_mb);
    json_t *a = json_pack(
        "{s:s,s:s,s:I,s:I,s:i,s:I,s:s,s:I,s:I,s:I,s:s,s:s,s:s}", "vm", vm.id, "name", vm.name,
        "uid", (json_int_t)vm.uid, "pid", (json_int_t)vm.pid, "cpus", vm.cpus, "memory_mb",
        (json_int_t)vm.memory_mb, "accel", vm.accel_used, "cpu_weight", (json_int_t)vm.cpu_weight,
        "cpu_quota_us", (json_int_t)vm.cpu_quota_us, "cpu_period_us", (json_int_t)vm.cpu_period_us,
        "cpuset", vm.cpuset, "cpu_pin", vm.cpu_pin, "emulator_pin", vm.emulator_pin);
    /* the memory policy as it is: the cgroup is written whole again */
    if (a)
        json_object_update_new(a, json_pack("{s:I,s:I,s:b,s:I}", "memory_swap_mb",
                                            (json_int_t)vm.memory_swap_mb, "memory_high_mb",
                                            (json_int_t)vm.memory_high_mb, "memory_lock",
                                            vm.memory_lock != 0, "memory_min_mb",
                                            (json_int_t)(ctl_vm_floor_bytes(&vm) >> 20)));
    op->call = a && op->args ? ctl_vm_call(c, &op->vm, AV_VM_TUNE, a, on_tuned, NULL, op) : 0;
    if (!op->call) {
        ctl_vmop_no_call(err);
        row_restore(c, &old, &vm);
        ctl_vm_task_end(c, &op->task, NULL, err);
        ctl_vmop_free(op);
        return -1;
    }
    return 0;
}
