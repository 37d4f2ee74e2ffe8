/*
 * vms_create.c - the controller's side of creating a VM: the spec checked,
 * the row written "creating" before any file exists, the agent asked for
 * the host's part (vm.prepare: directory, overlay, seed; on failure it
 * leaves nothing), the row made "stopped", the event, the task, and the
 * start when asked for. A create yund did not finish is rolled back by
 * reconcile (vms_delete.c).
 */
#include "agent/agent.h"
#include "compute/qemu_argv.h"
#include "ctl/pools.h"
#include "ctl/hosts.h"
#include "ctl/images_fetch.h"
#include "ctl/place.h"
#include "ctl/vms_int.h"
#include "lib/failpoint.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void create_fail(struct ctl_vmop *op, const struct yerr *err)
{
    store_vm_delete(op->c->store, op->vm.id);
    ctl_event(op->c, "vm", op->vm.name, "create", "error", "%s", err->message);
    ctl_vmop_finish(op, NULL, err);
}

static void on_prepared(void *ctx, json_t *r, const struct yerr *aerr)
{
    struct ctl_vmop *op = ctx;
    struct ctl *c = op->c;
    if (aerr) {
        create_fail(op, aerr);
        return;
    }
    FAILPOINT("vm_create.after_files");
    struct vm_rec vm = op->vm;
    vm.state = VM_STOPPED;
    vm.updated_at = now_ms();
    if (store_vm_update(c->store, &vm) != 0) {
        struct yerr err;
        yerr_db(&err, store_errmsg(c->store));
        /* its files go too (vm.remove); nobody waits for that */
        ctl_vm_call(c, &vm, AV_VM_REMOVE, ctl_vm_remove_args(c, &vm), NULL, NULL, NULL);
        create_fail(op, &err);
        return;
    }
    FAILPOINT("vm_create.after_stopped");
    ctl_event(c, "vm", vm.name, "create", "ok", "%d vCPU, %llu MiB, image %s", vm.cpus,
              (unsigned long long)vm.memory_mb, vm.image);
    ctl_vm_task_end(c, &op->task, &vm, NULL);
    op->task.id[0] = 0;
    if (op->start) {
        struct yerr serr = {0};
        /* The VM exists and is kept (as a user of virsh/Proxmox expects)
         * when it does not start; the error says why. The start answers
         * the caller (ctl_vm_start, asynchronous): this operation is done. */
        if (ctl_vm_start(c, vm.id, 0, op->done, op->ctx, &serr) < 0) {
            ctl_vmop_finish(op, NULL, &serr);
        } else {
            op->done = NULL;
            ctl_vmop_finish(op, &vm, NULL);
        }
        return;
    }
    ctl_vmop_finish(op, &vm, NULL);
}

/* The image is on the host now (or could not be put there). */
static void image_ready(void *ctx, const struct yerr *err)
{
    struct ctl_vmop *op = ctx;
    json_t *args = op->args;
    op->args = NULL;
    if (err) {
        json_decref(args);
        return create_fail(op, err);
    }
    op->call = ctl_vm_call(op->c, &op->vm, AV_VM_PREPARE, args, on_prepared, NULL, op);
    if (!op->call) {
        struct yerr e;
        ctl_vmop_no_call(&e);
        create_fail(op, &e);
    }
}

static json_t *prepare_args(const struct vm_rec *vm, const struct image_rec *img,
                            const struct vm_spec *spec)
{
    json_t *a = json_pack("{s:s,s:s,s:I,s:s,s:s,s:b}", "vm", vm->id, "name", vm->name, "disk_bytes",
                          (json_int_t)vm->disk_bytes, "image_path", img->path, "image_format",
                          img->format, "seed", vm->seed);
    if (a && vm->disk_dir[0])
        json_object_set_new(a, "disk_dir", json_string(vm->disk_dir));
    if (a && vm->seed) {
        json_object_set_new(a, "hostname", json_string(vm->hostname));
        if (spec->user_data)
            json_object_set_new(a, "user_data", json_string(spec->user_data));
        if (spec->ssh_keys)
            json_object_set_new(a, "ssh_keys", json_string(spec->ssh_keys));
    }
    return a;
}

/* THE spot where a new VM's host is chosen: placement (ctl_place, src/sched;
 * the row written after it is the reservation). Its agent must be there: a
 * host that is down is 503 and nothing is made. */
static int create_pick_host(struct ctl *c, const struct vm_spec *spec, char host[37],
                            struct yerr *err)
{
    if (ctl_place(c, spec, spec->host, host, NULL, err) < 0)
        return -1;
    return ctl_host_agent(c, host, err) ? 0 : -1;
}

int ctl_vm_create(struct ctl *c, const struct vm_spec *spec, ctl_vm_fn done, void *ctx,
                  struct yerr *err)
{
    struct image_rec img;
    char host[37];
    struct vm_rec same;
    if (ctl_vm_validate_spec(c, spec, NULL, &img, err) < 0)
        return -1;
    if (store_vm_get(c->store, spec->name, &same) == 0)
        return yerr_set(err, YE_CONFLICT, "vm '%s' already exists", spec->name);
    if (create_pick_host(c, spec, host, err) < 0 ||
        ctl_vm_validate_spec(c, spec, host, &img, err) < 0)
        return -1;
    struct vm_rec vm = {0};
    /* the model placement just filtered the hosts by */
    if (ctl_cpu_model_for(c, spec, vm.cpu_model, err) < 0)
        return -1;
    snprintf(vm.host, sizeof vm.host, "%s", host);
    uuid_generate_str(vm.id);
    if (ctl_pool_for_create(c, spec, &vm, err) < 0)
        return -1;
    snprintf(vm.name, sizeof(vm.name), "%s", spec->name);
    snprintf(vm.image, sizeof(vm.image), "%s", img.name);
    vm.cpus = spec->cpus;
    vm.memory_mb = spec->memory_mb;
    vm.memory_min_mb = spec->memory_min_mb ? spec->memory_min_mb : spec->memory_mb;
    /* a locked VM never swaps: its swap is 0, not the host's default */
    vm.memory_swap_mb = spec->memory_lock ? 0 : spec->memory_swap_mb;
    vm.memory_high_mb = spec->memory_high_mb;
    vm.memory_lock = spec->memory_lock;
    vm.no_merge = spec->no_merge;
    vm.disk_bytes = spec->disk_bytes ? spec->disk_bytes : img.virtual_size;
    snprintf(vm.cmdline, sizeof(vm.cmdline), "%s", spec->cmdline);
    snprintf(vm.machine, sizeof(vm.machine), "%s", spec->machine);
    snprintf(vm.accel, sizeof(vm.accel), "%s", spec->accel);
    vm.restart = spec->restart;
    vm.cpu_weight = spec->cpu_weight;
    vm.cpu_quota_us = spec->cpu_quota_us;
    vm.cpu_period_us = spec->cpu_period_us;
    snprintf(vm.cpuset, sizeof(vm.cpuset), "%s", spec->cpuset);
    snprintf(vm.cpu_pin, sizeof(vm.cpu_pin), "%s", spec->cpu_pin);
    snprintf(vm.emulator_pin, sizeof(vm.emulator_pin), "%s", spec->emulator_pin);
    snprintf(vm.hostname, sizeof(vm.hostname), "%s", spec->hostname);
    vm.seed = spec->hostname[0] || spec->user_data || spec->ssh_keys;
    snprintf(vm.disk, sizeof(vm.disk), VMDIR_DISK);
    vm.desired = WANT_STOPPED;
    vm.state = VM_CREATING;
    vm.created_at = vm.updated_at = now_ms();

    snprintf(vm.group, sizeof(vm.group), "%s", spec->group);
    snprintf(vm.requires, sizeof(vm.requires), "%s", spec->requires);
    struct image_rec himg = img; /* its paths on the VM's host */
    ctl_image_on_host(c, host, &himg);
    json_t *args = prepare_args(&vm, &himg, spec);
    struct ctl_vmop *op = args ? ctl_vmop_new(c, &vm, done, ctx) : NULL;
    if (!op) {
        json_decref(args);
        return yerr_set(err, YE_INTERNAL, "out of memory");
    }
    op->start = spec->start;
    if (ctl_vm_task_begin(c, "vm.create", &vm, &op->task, err) < 0) {
        json_decref(args);
        ctl_vmop_free(op);
        return -1;
    }
    /* Intent first: the row exists before any file does. */
    int rc = store_vm_insert(c->store, &vm);
    if (rc != 0) {
        if (rc == STORE_CONFLICT)
            yerr_set(err, YE_CONFLICT, "vm '%s' already exists", vm.name);
        else
            yerr_db(err, store_errmsg(c->store));
        json_decref(args);
        ctl_vm_task_end(c, &op->task, NULL, err);
        ctl_vmop_free(op);
        return -1;
    }
    FAILPOINT("vm_create.after_row");
    /* A host with a library of its own gets the image first (the task
     * image.fetch, shared by every create that needs it there); the
     * create's task waits for it, then the host's part is made. */
    rc = ctl_image_ensure(c, host, &img, image_ready, op, err);
    if (rc == 1) {
        op->args = args;
        return 0;
    }
    if (rc < 0) {
        json_decref(args);
        op->done = NULL;
        create_fail(op, err);
        return -1;
    }
    op->call = ctl_vm_call(c, &vm, AV_VM_PREPARE, args, on_prepared, NULL, op);
    if (!op->call) {
        /* not begun after all: the row goes, done never runs */
        ctl_vmop_no_call(err);
        op->done = NULL;
        create_fail(op, err);
        return -1;
    }
    return 0;
}
