/*
 * vms.c - the controller's side of VMs: specs validated, the VM task kinds,
 * start (transitional: the engine's call), pause/resume/reboot, show and
 * exec through the agent. Create, stop and delete are vms_create.c,
 * vms_stop.c and vms_delete.c.
 */
#include "agent/agent.h"
#include "compute/cgroup.h"
#include "compute/cpupin.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/tasks.h"
#include "ctl/vms_int.h"
#include "lib/failpoint.h"
#include "lib/util.h"
#include "sched/cpu_models.h"
#include "storage/seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VCPUS          64
#define MIN_MEMORY_MB      16
#define MAX_MEMORY_SWAP_MB (16ULL << 20) /* 16 TiB */
#define MAX_DISK           (16ULL << 40)

/* ---- every VM operation is a task: one at a time per VM ---- */

static const char *const vm_kinds[] = {"vm.create", "vm.start", "vm.stop",   "vm.force-stop",
                                       "vm.reboot", "vm.pause", "vm.resume", "vm.delete"};

/* A task a killed yund left: its row is settled by reconcile (creating
 * rolled back, deleting finished, a start re-attached or stopped, a stop's
 * deadline re-armed), so the task itself is only marked interrupted. */
static int vm_task_recover(void *ctx, struct task_rec *task, struct yerr *err)
{
    return 0;
}

void ctl_vm_tasks_register(struct ctl *c)
{
    if (!c->tasks)
        return;
    for (size_t i = 0; i < sizeof vm_kinds / sizeof vm_kinds[0]; i++)
        tasks_register_kind(c->tasks, vm_kinds[i], vm_task_recover, c);
}

/* 0 with task->id set (empty without a task table), or -1 with the
 * conflict naming the running task. */
static int vm_task_begin(struct ctl *c, const char *kind, const struct vm_rec *vm,
                         struct task_rec *task, struct yerr *err)
{
    task->id[0] = 0;
    if (!c->tasks)
        return 0;
    return task_begin(c->tasks, kind, "vm", vm->id, vm->name, task, err);
}

static void vm_task_end(struct ctl *c, const struct task_rec *task, const struct vm_rec *vm,
                        const struct yerr *err)
{
    if (!c->tasks || !task->id[0])
        return;
    if (err && err->code)
        task_fail(c->tasks, task->id, err);
    else
        task_succeed(c->tasks, task->id,
                     vm ? json_pack("{s:s,s:s}", "vm", vm->name, "state", vm_state_name(vm->state))
                        : NULL);
}

/* For vms_create.c, vms_stop.c, vms_delete.c. */
int ctl_vm_task_begin(struct ctl *c, const char *kind, const struct vm_rec *vm,
                      struct task_rec *task, struct yerr *err)
{
    return vm_task_begin(c, kind, vm, task, err);
}

void ctl_vm_task_end(struct ctl *c, const struct task_rec *task, const struct vm_rec *vm,
                     const struct yerr *err)
{
    vm_task_end(c, task, vm, err);
}

void vm_spec_defaults(struct vm_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->cpus = 1;
    s->memory_mb = 256;
    snprintf(s->machine, sizeof(s->machine), "pc");
    snprintf(s->accel, sizeof(s->accel), "auto");
    s->restart = RESTART_NO;
    s->memory_swap_mb = -1;
}

void vm_spec_of_running(struct vm_spec *s, const struct vm_rec *vm)
{
    vm_spec_defaults(s);
    snprintf(s->name, sizeof s->name, "%s", vm->name);
    s->cpus = vm->cpus;
    s->memory_mb = vm->memory_mb;
    s->memory_min_mb = vm->memory_min_mb;
    snprintf(s->cpu_model, sizeof s->cpu_model, "%s", vm->cpu_model);
    snprintf(s->group, sizeof s->group, "%s", vm->group);
    snprintf(s->requires, sizeof s->requires, "%s", vm->requires);
    s->start = true;
}

/* The memory policy against the VM's own size (the host's part is in
 * ctl_vm_validate_spec): every limit named with both numbers. */
static int vm_spec_check_memory(const struct vm_spec *s, struct yerr *err)
{
    unsigned long long mem = s->memory_mb;
    if (s->memory_min_mb > s->memory_mb)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_min %llu MiB is above memory %llu MiB (the balloon's floor must "
                        "be at most the VM's memory)",
                        (unsigned long long)s->memory_min_mb, mem);
    if (s->memory_high_mb > s->memory_mb)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_high %llu MiB is above memory %llu MiB (the soft limit must be at "
                        "most the VM's memory)",
                        (unsigned long long)s->memory_high_mb, mem);
    if (s->memory_swap_mb > (int64_t)MAX_MEMORY_SWAP_MB)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_swap must be at most %llu MiB, not %lld MiB",
                        (unsigned long long)MAX_MEMORY_SWAP_MB, (long long)s->memory_swap_mb);
    /* locked pages can be neither swapped nor reclaimed: a swap allowance
     * or a soft limit on a locked VM could never be honoured */
    if (s->memory_lock && s->memory_swap_mb > 0)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_lock keeps the VM resident: memory_swap must be 0, not %lld MiB",
                        (long long)s->memory_swap_mb);
    if (s->memory_lock && s->memory_high_mb)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_lock keeps the VM resident: it cannot have a memory_high soft "
                        "limit (%llu MiB)",
                        (unsigned long long)s->memory_high_mb);
    return 0;
}

int ctl_vm_check_spec(const struct vm_spec *s, struct yerr *err)
{
    char why[256];
    if (!name_valid(s->name, why, sizeof(why)))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (s->cpus < 1 || s->cpus > MAX_VCPUS)
        return yerr_set(err, YE_INVALID_ARGUMENT, "cpus must be 1..%d, not %d", MAX_VCPUS, s->cpus);
    if (s->memory_mb < MIN_MEMORY_MB)
        return yerr_set(err, YE_INVALID_ARGUMENT, "memory must be at least %d MiB, not %llu MiB",
                        MIN_MEMORY_MB, (unsigned long long)s->memory_mb);
    if (vm_spec_check_memory(s, err) < 0)
        return -1;
    if (s->disk_bytes > MAX_DISK)
        return yerr_set(err, YE_INVALID_ARGUMENT, "disk must be at most 16T");
    if (strcmp(s->accel, "auto") && strcmp(s->accel, "kvm") && strcmp(s->accel, "tcg"))
        return yerr_set(err, YE_INVALID_ARGUMENT, "accel must be auto, kvm or tcg, not '%s'",
                        s->accel);
    static const char *const machines[] = {"pc", "q35", "microvm"};
    bool machine_ok = false;
    for (size_t i = 0; i < 3; i++)
        machine_ok |= !strcmp(s->machine, machines[i]);
    if (!machine_ok)
        return yerr_set(err, YE_INVALID_ARGUMENT, "machine must be pc, q35 or microvm, not '%s'",
                        s->machine);
    for (const char *p = s->cmdline; *p; p++)
        if ((unsigned char)*p < 0x20)
            return yerr_set(err, YE_INVALID_ARGUMENT, "cmdline has a control character");
    if (seed_validate(s->hostname, s->user_data, s->ssh_keys, why, sizeof(why)) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (s->cpu_model[0] && sched_cpu_model_index(s->cpu_model) < 0) {
        char known[400];
        sched_cpu_models_list(~0u, known, sizeof known);
        return yerr_set(err, YE_INVALID_ARGUMENT, "cpu_model '%.63s' is not one yun knows (%s)",
                        s->cpu_model, known);
    }
    /* the host's CPUs are checked with its facts (ctl_vm_validate_spec) */
    if (cpupin_validate(s->cpu_pin, s->emulator_pin, s->cpus, s->cpuset, 0, why, sizeof why) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    return 0;
}

int ctl_vm_validate_spec(struct ctl *c, const struct vm_spec *s, const char *host_id,
                         struct image_rec *img, struct yerr *err)
{
    char why[256];
    if (ctl_vm_check_spec(s, err) < 0)
        return -1;
    if (!host_id)
        goto image; /* the spec alone: before placement */
    struct vm_rec probe = {.memory_mb = s->memory_mb,
                           .cpu_weight = s->cpu_weight,
                           .cpu_quota_us = s->cpu_quota_us,
                           .cpu_period_us = s->cpu_period_us,
                           .memory_swap_mb = s->memory_swap_mb,
                           .memory_high_mb = s->memory_high_mb,
                           .memory_lock = s->memory_lock};
    snprintf(probe.cpuset, sizeof(probe.cpuset), "%s", s->cpuset);
    const struct ctl_host *h = ctl_host_facts(c, host_id);
    if (!h)
        return yerr_set(err, YE_UNAVAILABLE, "host %s is not known or not reachable",
                        host_id[0] ? host_id : "(local)");
    /* the limits as this host's launch would write them (its accel) */
    snprintf(probe.accel_used, sizeof probe.accel_used, "%s",
             strcmp(s->accel, "auto") ? s->accel : h->accel);
    struct cg_limits l;
    engine_vm_limits(&probe, &l);
    if (cg_limits_validate(&l, h->cpus, (enum cg_swap_acct)h->swap_acct, why, sizeof(why)) < 0 ||
        cpupin_validate(s->cpu_pin, s->emulator_pin, s->cpus, s->cpuset, h->cpus, why, sizeof why) <
            0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    /* mlockall needs RLIMIT_MEMLOCK for all of QEMU: its cgroup limit */
    if (s->memory_lock && h->memlock_max >= 0 && l.memory_bytes > (uint64_t)h->memlock_max)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "memory_lock needs RLIMIT_MEMLOCK of %llu MiB for this VM's QEMU, but its "
                        "host can raise it to %llu MiB only (yund lacks CAP_IPC_LOCK and "
                        "CAP_SYS_RESOURCE)",
                        (unsigned long long)(l.memory_bytes >> 20),
                        (unsigned long long)((uint64_t)h->memlock_max >> 20));

    /* A VM that could never run there is refused now, with the numbers. */
    if (ctl_capacity_could_fit(c, host_id, s->cpus, s->memory_mb, err) < 0)
        return -1;

image:;
    int rc = store_image_get(c->store, s->image, img);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "image '%s' does not exist (see: yun image list)",
                        s->image);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    if (engine_image_memory_check(img, s->memory_mb, err) < 0)
        return -1;
    if (s->disk_bytes && s->disk_bytes < img->virtual_size) {
        char a[32], b[32];
        format_size(s->disk_bytes, a, sizeof(a));
        format_size(img->virtual_size, b, sizeof(b));
        return yerr_set(err, YE_INVALID_ARGUMENT, "disk %s is smaller than image '%s' (%s)", a,
                        img->name, b);
    }
    return 0;
}

int ctl_vm_get(struct ctl *c, const char *name, struct vm_rec *out, struct yerr *err)
{
    int rc = store_vm_get(c->store, name, out);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "vm '%s' does not exist", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_vm_list(struct ctl *c, struct vm_rec **out, size_t *n, struct yerr *err)
{
    if (store_vm_list(c->store, out, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_vm_list_page(struct ctl *c, const char *after, size_t limit, struct vm_rec **out, size_t *n,
                     struct yerr *err)
{
    if (store_vm_list_page(c->store, after, limit, out, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_vm_list_host(struct ctl *c, const char *host_id, struct vm_rec **out, size_t *n,
                     struct yerr *err)
{
    if (store_vm_list_host(c->store, host_id, out, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

uint64_t ctl_vm_generation(struct ctl *c)
{
    return store_vm_generation(c->store);
}

/* Paths of the VM's files on its host, as that host's facts place them. */
void ctl_vm_paths(struct ctl *c, const struct vm_rec *vm, struct ctl_vm_paths *p)
{
    memset(p, 0, sizeof *p);
    const char *d = ctl_vm_facts(c, vm)->vms_dir;
    if (!d[0])
        return; /* its host is not known: no paths */
    if (snprintf_checked(p->dir, sizeof p->dir, "%s/%s", d, vm->id) < 0)
        p->dir[0] = 0;
    if (snprintf_checked(p->console_socket, sizeof p->console_socket, "%s/%s/%s", d, vm->id,
                         VMDIR_CONSOLE) < 0)
        p->console_socket[0] = 0;
    if (snprintf_checked(p->console_log, sizeof p->console_log, "%s/%s/%s", d, vm->id,
                         VMDIR_CONLOG) < 0)
        p->console_log[0] = 0;
}

json_t *ctl_vm_volume_names(struct ctl *c, const struct vm_rec *vm)
{
    json_t *arr = json_array();
    struct volume_rec *vs;
    size_t n;
    if (arr && store_volume_list_attached(c->store, vm->id, &vs, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_string(vs[i].name));
        free(vs);
    }
    return arr;
}

int ctl_vm_snapshot_count(struct ctl *c, const struct vm_rec *vm)
{
    struct snapshot_rec *ss;
    size_t n;
    if (store_snapshot_list(c->store, vm->id, &ss, &n) != 0)
        return -1;
    free(ss);
    return (int)n;
}

void ctl_vm_status(struct ctl *c, const struct vm_rec *vm, ctl_json_fn done, void *ctx)
{
    /* a host that is down answers with its error (503), from the loop */
    ctl_vm_call(c, vm, AV_VM_STATUS, json_pack("{s:s}", "vm", vm->id), done, NULL, ctx);
}

void ctl_vm_qmp_status(const struct vm_rec *vm, json_t *status, char *out, size_t len)
{
    const char *q = json_string_value(json_object_get(status, "qmp"));
    if (!vm_state_has_process(vm->state))
        snprintf(out, len, "%s", "");
    else
        snprintf(out, len, "%s", q ? q : "unreachable");
}

uint64_t ctl_vm_exec(struct ctl *c, const struct vm_rec *vm, json_t *argv, int timeout_s,
                     const char *input, ctl_json_fn done, void *ctx)
{
    json_t *args = json_pack("{s:s,s:s,s:O}", "vm", vm->id, "name", vm->name, "argv", argv);
    if (args && timeout_s > 0)
        json_object_set_new(args, "timeout", json_integer(timeout_s));
    if (args && input)
        json_object_set_new(args, "input", json_string(input));
    return ctl_vm_call(c, vm, AV_GUEST_EXEC, args, done, NULL, ctx);
}

void ctl_cancel(struct ctl *c, const char *host_id, uint64_t call)
{
    if (call)
        ctl_host_cancel(c, host_id, call);
}

/* ---- pause, resume, reboot: vm.qmp ---- */

struct ctl_call {
    struct ctl_call *next;
    struct ctl *c;
    struct task_rec task;
    int action;
    char vm_id[37], vm_name[64], host[37];
    ctl_vm_fn done;
    void *ctx;
    uint64_t call;
};

bool ctl_vm_action_is_qmp(int a)
{
    return a == ACT_PAUSE || a == ACT_RESUME || a == ACT_REBOOT;
}

static void call_unlink(struct ctl *c, struct ctl_call *k)
{
    for (struct ctl_call **pp = &c->calls; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            return;
        }
}

static void on_action_reply(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct ctl_call *k = ctx;
    struct ctl *c = k->c;
    call_unlink(c, k);
    const char *an = vm_action_name((enum vm_action)k->action);
    struct yerr err = {0};
    struct vm_rec vm;
    int rc = -1;
    if (aerr) {
        err = *aerr;
        ctl_event(c, "vm", k->vm_name, an, "error", "%s", err.message);
    } else if (ctl_vm_get(c, k->vm_id, &vm, &err) == 0) {
        /* The row as it is now: only the state the action started from is
         * moved on (a stop that came meanwhile keeps its own). */
        bool apply = (k->action == ACT_PAUSE && vm.state == VM_RUNNING) ||
                     (k->action == ACT_RESUME && vm.state == VM_PAUSED) ||
                     (k->action == ACT_PAUSE && vm.state == VM_PAUSED) ||
                     (k->action == ACT_RESUME && vm.state == VM_RUNNING);
        if (apply && k->action != ACT_REBOOT) {
            vm.state = k->action == ACT_PAUSE ? VM_PAUSED : VM_RUNNING;
            vm.desired = k->action == ACT_PAUSE ? WANT_PAUSED : WANT_RUNNING;
            vm.updated_at = now_ms();
            if (store_vm_update(c->store, &vm) != 0)
                yerr_db(&err, store_errmsg(c->store));
        }
        ctl_event(c, "vm", vm.name, an, "ok", "%s", "");
        rc = err.code ? -1 : 0;
    }
    vm_task_end(c, &k->task, rc == 0 ? &vm : NULL, rc == 0 ? NULL : &err);
    if (k->done)
        k->done(k->ctx, rc == 0 ? &vm : NULL, rc == 0 ? NULL : &err);
    free(k);
}

int ctl_vm_action_qmp(struct ctl *c, const char *name, int a, ctl_vm_fn done, void *ctx,
                      struct yerr *err)
{
    static const char *const cmd[] = {
        [ACT_PAUSE] = "stop", [ACT_RESUME] = "cont", [ACT_REBOOT] = "system_reset"};
    if (!ctl_vm_action_is_qmp(a))
        return yerr_set(err, YE_INVALID_ARGUMENT, "not a QMP action");
    struct vm_rec vm;
    char why[256];
    if (ctl_vm_get(c, name, &vm, err) < 0)
        return -1;
    if (vm_action_check(&vm, (enum vm_action)a, false, why, sizeof(why)) < 0)
        return yerr_set(err, YE_CONFLICT, "%s", why);
    if (!ctl_vm_agent(c, &vm, err))
        return -1; /* its host is down: 503, nothing changed */
    struct ctl_call *k = calloc(1, sizeof(*k));
    if (!k)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    k->c = c;
    k->action = a;
    snprintf(k->vm_id, sizeof(k->vm_id), "%s", vm.id);
    snprintf(k->vm_name, sizeof(k->vm_name), "%s", vm.name);
    snprintf(k->host, sizeof(k->host), "%s", vm.host);
    k->done = done;
    k->ctx = ctx;
    char kind[32];
    snprintf(kind, sizeof kind, "vm.%s", vm_action_name((enum vm_action)a));
    if (vm_task_begin(c, kind, &vm, &k->task, err) < 0) {
        free(k);
        return -1;
    }
    k->call = ctl_vm_call(c, &vm, AV_VM_QMP, json_pack("{s:s,s:s}", "vm", vm.id, "command", cmd[a]),
                          on_action_reply, NULL, k);
    if (!k->call) {
        yerr_set(err, YE_INTERNAL, "agent: the call could not be made");
        vm_task_end(c, &k->task, NULL, err);
        free(k);
        return -1;
    }
    k->next = c->calls;
    c->calls = k;
    return 0;
}

void ctl_calls_forget(struct ctl *c, void *ctx)
{
    for (struct ctl_call *k = c->calls; k; k = k->next)
        if (k->ctx == ctx)
            k->done = NULL;
}

void ctl_calls_shutdown(struct ctl *c)
{
    while (c->calls) {
        struct ctl_call *k = c->calls;
        c->calls = k->next;
        ctl_agents_forget(c, k);
        ctl_host_cancel(c, k->host, k->call);
        struct yerr e;
        yerr_set(&e, YE_CANCELLED, "yund stopped");
        vm_task_end(c, &k->task, NULL, &e);
        free(k);
    }
}
