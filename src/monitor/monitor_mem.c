/*
 * monitor_mem.c - a host's memory view (monitor.h monitor_host_memory):
 * what its VMs were promised (committed), hold (resident), gave back to
 * their balloons, have swapped, and what KSM saves. Read from the VM rows
 * and the monitor's last counters: no host is asked here, so `yun host` is
 * as fresh as the last sample (sample_interval).
 */
#include "ctl/ctl.h"
#include "monitor/monitor_int.h"

#include <stdlib.h>
#include <string.h>

static const struct host_prev *host_of(struct monitor *m, const char *host_id)
{
    if (!host_id[0] || ctl_host_same(m->ctl, host_id, ""))
        return m->h.ts ? &m->h : NULL;
    for (struct host_mon *h = m->hosts; h; h = h->next)
        if (!strcmp(h->id, host_id))
            return h->p.ts ? &h->p : NULL;
    return NULL;
}

static const struct vm_mon *vm_of(struct monitor *m, const struct vm_rec *vm)
{
    for (const struct vm_mon *v = m->vms; v; v = v->next)
        if (!strcmp(v->id, vm->id) && v->pid == vm->pid)
            return v;
    return NULL;
}

int monitor_host_memory(struct monitor *m, const char *host_id, struct host_memory_view *out)
{
    memset(out, 0, sizeof *out);
    const struct host_prev *p = host_of(m, host_id);
    if (!p)
        return -1;
    out->have_ksm = p->have_ksm;
    out->ksm_run = p->ksm_run;
    out->shared = p->have_ksm ? p->ksm_saved_bytes : 0;
    struct vm_rec *vms = NULL;
    size_t n = 0;
    struct yerr err = {0};
    if (ctl_vm_list(m->ctl, &vms, &n, &err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct vm_rec *vm = &vms[i];
        if (!vm_state_has_process(vm->state) || vm->pid <= 0 ||
            !ctl_host_same(m->ctl, vm->host, host_id))
            continue;
        uint64_t size = vm->memory_mb << 20;
        out->committed += size;
        const struct vm_mon *v = vm_of(m, vm);
        if (!v)
            continue; /* not sampled yet */
        out->resident += v->c.rss;
        if (v->c.balloon && v->c.balloon < size)
            out->ballooned += size - v->c.balloon;
        if (v->c.have_swap)
            out->swapped += v->c.swap;
    }
    free(vms);
    return 0;
}
