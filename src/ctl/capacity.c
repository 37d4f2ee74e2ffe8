/*
 * capacity.c - what a host can hold: the vCPUs and memory of its VMs that
 * have (or, unknown, may have) a QEMU against the host's facts times the
 * overcommit settings. Create refuses a VM that could never fit on its
 * host; start one that does not fit there now.
 *
 * With memory_overcommit above 1 the committed sizes may pass the host's
 * memory, and what must hold is what the balloon cannot take back: the
 * sum of the VMs' floors (memory_min, else their whole memory) plus a
 * safety margin (memory_margin, default 5 % of the usable memory) within
 * the usable memory itself. That is the hard bound a start is admitted
 * by; the measured use (resident, ballooned away, shared: the host's
 * memory view) is the soft one the operator and the balloon policy watch.
 */
#include "ctl/ctl.h"
#include "ctl/hosts.h"

#include <string.h>

int ctl_host_usage(struct ctl *c, const char *host_id, struct host_usage *u, struct yerr *err)
{
    memset(u, 0, sizeof(*u));
    const struct ctl_host *h = ctl_host_facts(c, host_id);
    if (!h)
        return yerr_set(err, YE_UNAVAILABLE, "host %s is not known or not reachable",
                        host_id[0] ? host_id : "(local)");
    struct vm_totals t;
    if (store_vm_totals_host(c->store, host_id, ctl_host_same(c, host_id, ""), &t) != 0)
        return yerr_db(err, store_errmsg(c->store));
    u->cpus_total = h->cpus;
    u->cpus_capacity = h->cpus * c->cfg->cpu_overcommit;
    u->mem_total = h->memory;
    uint64_t usable = h->memory > c->cfg->reserved_memory ? h->memory - c->cfg->reserved_memory : 0;
    u->mem_capacity = (uint64_t)((double)usable * c->cfg->mem_overcommit);
    u->vms_total = t.vms;
    u->vms_running = t.running;
    u->cpus_used = t.cpus;
    u->mem_used = t.memory_mb << 20;
    u->mem_floor_used = t.memory_min_mb << 20;
    uint64_t margin = c->cfg->memory_margin ? c->cfg->memory_margin : usable / 20;
    u->mem_floor_capacity = usable > margin ? usable - margin : 0;
    return 0;
}

uint64_t ctl_vm_floor_bytes(const struct vm_rec *vm)
{
    uint64_t m =
        vm->memory_min_mb && vm->memory_min_mb < vm->memory_mb ? vm->memory_min_mb : vm->memory_mb;
    return m << 20;
}

int ctl_capacity_admit(struct ctl *c, const struct vm_rec *vm, struct yerr *err)
{
    struct host_usage u;
    if (ctl_host_usage(c, vm->host, &u, err) < 0)
        return -1;
    if (u.cpus_used + vm->cpus > u.cpus_capacity ||
        u.mem_used + (vm->memory_mb << 20) > u.mem_capacity)
        return yerr_set(err, YE_INSUFFICIENT_CAPACITY,
                        "vm '%s' needs %d vCPUs and %llu MiB; host has %.0f of %.0f vCPUs and "
                        "%llu of %llu MiB free (overcommit cpu %.1f, memory %.1f)",
                        vm->name, vm->cpus, (unsigned long long)vm->memory_mb,
                        u.cpus_capacity - u.cpus_used, u.cpus_capacity,
                        (unsigned long long)((u.mem_capacity - u.mem_used) >> 20),
                        (unsigned long long)(u.mem_capacity >> 20), c->cfg->cpu_overcommit,
                        c->cfg->mem_overcommit);
    if (c->cfg->mem_overcommit > 1.0 &&
        u.mem_floor_used + ctl_vm_floor_bytes(vm) > u.mem_floor_capacity)
        return yerr_set(
            err, YE_INSUFFICIENT_CAPACITY,
            "vm '%s' keeps at least %llu MiB (its memory_min); the VMs on its host keep "
            "%llu MiB of the %llu MiB that memory overcommit %.1f may not reach into "
            "(usable memory less memory_margin): lower a memory_min or stop a VM",
            vm->name, (unsigned long long)(ctl_vm_floor_bytes(vm) >> 20),
            (unsigned long long)(u.mem_floor_used >> 20),
            (unsigned long long)(u.mem_floor_capacity >> 20), c->cfg->mem_overcommit);
    return 0;
}

int ctl_capacity_could_fit(struct ctl *c, const char *host_id, int cpus, uint64_t memory_mb,
                           struct yerr *err)
{
    struct host_usage u;
    if (ctl_host_usage(c, host_id, &u, err) < 0)
        return -1;
    if (cpus > u.cpus_capacity)
        return yerr_set(err, YE_INSUFFICIENT_CAPACITY,
                        "vm needs %d vCPUs but this host allows at most %.0f (%d cpus x "
                        "overcommit %.1f)",
                        cpus, u.cpus_capacity, u.cpus_total, c->cfg->cpu_overcommit);
    if ((memory_mb << 20) > u.mem_capacity)
        return yerr_set(err, YE_INSUFFICIENT_CAPACITY,
                        "vm needs %llu MiB but this host allows at most %llu MiB (%llu MiB, "
                        "%llu MiB reserved, overcommit %.1f)",
                        (unsigned long long)memory_mb, (unsigned long long)(u.mem_capacity >> 20),
                        (unsigned long long)(u.mem_total >> 20),
                        (unsigned long long)(c->cfg->reserved_memory >> 20),
                        c->cfg->mem_overcommit);
    return 0;
}
