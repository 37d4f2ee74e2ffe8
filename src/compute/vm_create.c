/*
 * vm_create.c - creating and deleting VMs.
 *
 * Create writes the row in state "creating" before touching the disk; the
 * overlay is made; only then does the row become "stopped". Any failure
 * removes what was made. A crash in between leaves a "creating" row that the
 * reconcile pass rolls back. Delete mirrors it with "deleting".
 */
#include "lib/failpoint.h"
#include "compute/confine.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "compute/vm_disks.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "compute/qmp.h"
#include "compute/qemu_proc.h"
#include "lib/util.h"
#include "storage/seed.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_VCPUS     64
#define MIN_MEMORY_MB 16
#define MAX_DISK      (16ULL << 40)

void vm_spec_defaults(struct vm_spec *s)
{
    memset(s, 0, sizeof(*s));
    s->cpus = 1;
    s->memory_mb = 256;
    snprintf(s->machine, sizeof(s->machine), "pc");
    snprintf(s->accel, sizeof(s->accel), "auto");
    s->restart = RESTART_NO;
}

static int validate_spec(struct engine *e, const struct vm_spec *s, struct image_rec *img,
                         struct yerr *err)
{
    char why[256];
    if (!name_valid(s->name, why, sizeof(why)))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (s->cpus < 1 || s->cpus > MAX_VCPUS)
        return yerr_set(err, YE_INVALID_ARGUMENT, "cpus must be 1..%d, not %d", MAX_VCPUS, s->cpus);
    if (s->memory_mb < MIN_MEMORY_MB)
        return yerr_set(err, YE_INVALID_ARGUMENT, "memory must be at least %d MiB, not %llu MiB",
                        MIN_MEMORY_MB, (unsigned long long)s->memory_mb);
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
    struct vm_rec probe = {.memory_mb = s->memory_mb,
                           .cpu_weight = s->cpu_weight,
                           .cpu_quota_us = s->cpu_quota_us,
                           .cpu_period_us = s->cpu_period_us};
    snprintf(probe.cpuset, sizeof(probe.cpuset), "%s", s->cpuset);
    struct cg_limits l;
    engine_vm_limits(&probe, &l);
    if (seed_validate(s->hostname, s->user_data, s->ssh_keys, why, sizeof(why)) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (cg_limits_validate(&l, e->host_cpus, why, sizeof(why)) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);

    /* A VM that could never run here is refused now, with the numbers. */
    struct host_usage u;
    if (engine_host_usage(e, &u) < 0)
        return yerr_db(err, store_errmsg(e->store));
    if (s->cpus > u.cpus_capacity)
        return yerr_set(err, YE_INSUFFICIENT_CAPACITY,
                        "vm needs %d vCPUs but this host allows at most %.0f (%d cpus x "
                        "overcommit %.1f)",
                        s->cpus, u.cpus_capacity, u.cpus_total, e->cfg->cpu_overcommit);
    if ((s->memory_mb << 20) > u.mem_capacity)
        return yerr_set(
            err, YE_INSUFFICIENT_CAPACITY,
            "vm needs %llu MiB but this host allows at most %llu MiB (%llu MiB, "
            "%llu MiB reserved, overcommit %.1f)",
            (unsigned long long)s->memory_mb, (unsigned long long)(u.mem_capacity >> 20),
            (unsigned long long)(u.mem_total >> 20),
            (unsigned long long)(e->cfg->reserved_memory >> 20), e->cfg->mem_overcommit);

    int rc = store_image_get(e->store, s->image, img);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "image '%s' does not exist (see: yun image list)",
                        s->image);
    if (rc != 0)
        return yerr_db(err, store_errmsg(e->store));
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

static int make_overlay(struct engine *e, const struct vm_rec *vm, const struct image_rec *img,
                        struct yerr *err)
{
    char disk[512], size[32];
    if (engine_vm_path(e, vm, VMDIR_DISK, disk, sizeof(disk)) < 0)
        return yerr_set(err, YE_INTERNAL, "path too long");
    snprintf(size, sizeof(size), "%llu", (unsigned long long)vm->disk_bytes);
    char *argv[] = {
        (char *)e->cfg->qemu_img, "create", "-q", "-f", "qcow2", "-F", (char *)img->format, "-b",
        (char *)img->path,        disk,     size, NULL};
    struct proc_result r;
    int st = proc_run(argv, 60000, &r);
    char line[300];
    proc_last_line(r.err, line, sizeof(line));
    proc_result_free(&r);
    if (st != 0)
        return yerr_disk(err, "qemu-img create failed: %s", line[0] ? line : "no output");
    return 0;
}

int engine_vm_create(struct engine *e, const struct vm_spec *spec, struct vm_rec *out,
                     struct yerr *err)
{
    struct image_rec img;
    if (validate_spec(e, spec, &img, err) < 0)
        return -1;
    struct vm_rec vm = {0};
    uuid_generate_str(vm.id);
    snprintf(vm.name, sizeof(vm.name), "%s", spec->name);
    snprintf(vm.image, sizeof(vm.image), "%s", img.name);
    vm.cpus = spec->cpus;
    vm.memory_mb = spec->memory_mb;
    vm.disk_bytes = spec->disk_bytes ? spec->disk_bytes : img.virtual_size;
    snprintf(vm.cmdline, sizeof(vm.cmdline), "%s", spec->cmdline);
    snprintf(vm.machine, sizeof(vm.machine), "%s", spec->machine);
    snprintf(vm.accel, sizeof(vm.accel), "%s", spec->accel);
    vm.restart = spec->restart;
    vm.cpu_weight = spec->cpu_weight;
    vm.cpu_quota_us = spec->cpu_quota_us;
    vm.cpu_period_us = spec->cpu_period_us;
    snprintf(vm.cpuset, sizeof(vm.cpuset), "%s", spec->cpuset);
    snprintf(vm.hostname, sizeof(vm.hostname), "%s", spec->hostname);
    vm.seed = spec->hostname[0] || spec->user_data || spec->ssh_keys;
    snprintf(vm.disk, sizeof(vm.disk), VMDIR_DISK);
    vm.desired = WANT_STOPPED;
    vm.state = VM_CREATING;
    vm.created_at = vm.updated_at = now_ms();

    /* Intent first: the row exists before any file does. */
    int rc = store_vm_insert(e->store, &vm);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "vm '%s' already exists", vm.name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(e->store));
    FAILPOINT("create.after_row");

    char dir[512];
    engine_vm_path(e, &vm, NULL, dir, sizeof(dir));
    if (mkdir_p(dir, 0700) < 0) {
        yerr_set(err, YE_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
        goto undo;
    }
    if (make_overlay(e, &vm, &img, err) < 0)
        goto undo;
    if (vm.seed) {
        char why[300];
        if (seed_build("genisoimage", dir, vm.id, vm.hostname[0] ? vm.hostname : vm.name,
                       spec->user_data, spec->ssh_keys, why, sizeof(why)) < 0) {
            yerr_set(err, YE_SEED_ERROR, "cloud-init seed: %s", why);
            goto undo;
        }
    }

    FAILPOINT("create.after_files");
    vm.state = VM_STOPPED;
    if (engine_store_update(e, &vm) != 0) {
        yerr_db(err, store_errmsg(e->store));
        goto undo;
    }
    engine_event(e, "vm", vm.name, "create", "ok", "%d vCPU, %llu MiB, image %s", vm.cpus,
                 (unsigned long long)vm.memory_mb, vm.image);
    *out = vm;
    if (spec->start) {
        struct yerr serr;
        if (engine_vm_action(e, vm.name, ACT_START, false, out, &serr) < 0) {
            /* The VM exists and is kept (as a user of virsh/Proxmox expects);
             * the error says why it did not start. */
            *err = serr;
            return -1;
        }
    }
    return 0;

undo:
    remove_tree(dir);
    store_vm_delete(e->store, vm.id);
    engine_event(e, "vm", vm.name, "create", "error", "%s", err->message);
    return -1;
}

/* Ends a VM's QEMU: QMP quit, then SIGKILL if it lingers. Blocks up to ~5 s.
 * Returns 0 once that pid is gone (or was never ours), -1 when it may live. */
int engine_qemu_kill(struct engine *e, const struct vm_rec *vm, pid_t pid)
{
    enum pid_state ps = qemu_pid_state(pid, vm->id, vm->uid);
    if (ps == PID_GONE)
        return 0;
    if (ps == PID_UNKNOWN) {
        /* Never signal a pid we could not identify: it may be recycled. */
        log_err("vm %s: cannot tell whether pid %d is its qemu (/proc unreadable)", vm->name,
                (int)pid);
        return -1;
    }
    char qmp[512], err[256];
    if (engine_vm_path(e, vm, VMDIR_QMP, qmp, sizeof(qmp)) == 0)
        qmp_command(qmp, "quit", NULL, NULL, 2000, err, sizeof(err));
    /* the pid is checked to be this VM's QEMU each time: once it exits it
     * may be recycled by another program, which must never get the SIGKILL */
    for (int i = 0; i < 300 && qemu_pid_state(pid, vm->id, vm->uid) != PID_GONE; i++) {
        if (i == 200 && qemu_pid_state(pid, vm->id, vm->uid) == PID_LIVE)
            kill(pid, SIGKILL);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (qemu_pid_state(pid, vm->id, vm->uid) != PID_GONE) {
        log_err("qemu pid %d of vm %s does not die", (int)pid, vm->name);
        return -1;
    }
    return 0;
}

int engine_qemu_end(struct engine *e, const struct vm_rec *vm)
{
    struct qemu_scan scan;
    int rc = qemu_scan_run(e->vms_dir, &scan);
    pid_t pids[16];
    size_t n = qemu_scan_pids(&scan, vm->id, vm->uid, pids, 16);
    pid_t known = 0;
    /* the pidfile's pid too: a scan that missed it must not let it live */
    enum qemu_seen seen = qemu_seek(e->vms_dir, vm->id, vm->uid, &scan, &known);
    qemu_scan_free(&scan);
    if (n > 16)
        rc = -1;
    for (size_t i = 0; i < n && i < 16; i++)
        if (engine_qemu_kill(e, vm, pids[i]) < 0)
            rc = -1;
    if (seen == QEMU_UP && engine_qemu_kill(e, vm, known) < 0)
        rc = -1;
    if (seen == QEMU_UNSURE)
        rc = -1;
    return rc;
}

/* Removes everything a VM owns. Used by delete and by crash recovery. Its
 * files go only once no QEMU of it is left: removing the directory under a
 * live QEMU would leave a VM running that nothing can reach. */
static int destroy_vm(struct engine *e, struct vm_rec *vm)
{
    struct vm_rt *rt = engine_rt_find(e, vm->id);
    if (rt)
        engine_rt_drop(e, rt);
    if (engine_qemu_end(e, vm) < 0)
        return -1;
    char group[48];
    engine_vm_cgroup(vm, group);
    cg_vm_destroy(&e->cg, group);
    char dir[512];
    if (engine_vm_path(e, vm, NULL, dir, sizeof(dir)) == 0 && remove_tree(dir) < 0)
        log_warn("cannot remove %s: %s", dir, strerror(errno));
    return 0;
}

int engine_vm_finish_delete(struct engine *e, struct vm_rec *vm)
{
    if (destroy_vm(e, vm) < 0) {
        /* The row stays "deleting"; the next reconcile pass tries again. */
        log_warn("vm %s: a qemu may still run; delete is retried by reconcile", vm->name);
        return -1;
    }
    vm_confine_release(e, vm);
    vm_disks_forget(e, vm);
    if (store_vm_delete(e->store, vm->id) != 0) {
        log_err("cannot delete vm row %s: %s", vm->name, store_errmsg(e->store));
        return -1;
    }
    return 0;
}

int engine_vm_delete(struct engine *e, const char *name, bool force, struct yerr *err)
{
    struct vm_rec vm;
    if (engine_vm_get(e, name, &vm, err) < 0)
        return -1;
    char why[256];
    if (vm.state != VM_DELETING && vm_action_check(&vm, ACT_DELETE, force, why, sizeof(why)) < 0)
        return yerr_set(err, YE_CONFLICT, "%s", why);
    vm.state = VM_DELETING;
    vm.desired = WANT_DELETED;
    if (engine_store_update(e, &vm) != 0)
        return yerr_db(err, store_errmsg(e->store));
    if (engine_vm_finish_delete(e, &vm) < 0) {
        engine_event(e, "vm", vm.name, "delete", "error",
                     "its qemu could not be ended yet; retried by reconcile");
        return yerr_set(err, YE_UNAVAILABLE,
                        "vm '%s': its qemu could not be ended yet; the delete is retried", name);
    }
    engine_event(e, "vm", vm.name, "delete", "ok", "%s", force ? "forced" : "");
    return 0;
}
