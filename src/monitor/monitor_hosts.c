/*
 * monitor_hosts.c - the hosts' own series in the controller's monitor.
 *
 * The local host (the all-in-one's) is sampled by monitor.c's tick with a
 * host.sample call, its series are object "host". Every other host samples
 * itself each interval and pushes the reply as a "host.sample" event
 * (role_agent.c, through agent_push.c); monitor_host_sample() takes it as
 * that host's sample: object "host/NAME" for the host, "vm/NAME" for each
 * of its VMs. What another host sends is checked before it is used
 * (sample_push_decode: every figure typed and in range; only VMs the
 * store places on that host, with that pid): a sample that fails is
 * logged and counted, and changes nothing. One read before the last
 * (the host's clock stepped back) starts its rates over.
 */
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "lib/log.h"
#include "lib/util.h"
#include "monitor/monitor_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mon_apply_host(struct monitor *m, const char *object, struct host_prev *p,
                    const struct host_counters *h, int64_t at, int64_t now)
{
    double dt = p->ts && at > p->ts ? (double)(at - p->ts) / 1000.0 : 0;
    if (h->have_cpu) {
        if (p->ts && h->cpu_total > p->total && h->cpu_busy >= p->busy &&
            h->cpu_busy - p->busy <= h->cpu_total - p->total)
            series_add(&m->ss, object, "cpu", now,
                       100.0 * (double)(h->cpu_busy - p->busy) / (double)(h->cpu_total - p->total));
        p->busy = h->cpu_busy;
        p->total = h->cpu_total;
    }
    if (h->have_mem && h->mem_available <= h->mem_total) {
        series_add(&m->ss, object, "mem_used", now, (double)(h->mem_total - h->mem_available));
        series_add(&m->ss, object, "mem_available", now, (double)h->mem_available);
    }
    if (h->have_load)
        series_add(&m->ss, object, "load1", now, h->load1);
    uint64_t rd = 0, wr = 0, rx = 0, tx = 0;
    if (h->have_disk) {
        rd = h->disk_rd_bytes;
        wr = h->disk_wr_bytes;
        if (dt > 0 && rd >= p->rd && wr >= p->wr) {
            series_add(&m->ss, object, "disk_read_bps", now, (double)(rd - p->rd) / dt);
            series_add(&m->ss, object, "disk_write_bps", now, (double)(wr - p->wr) / dt);
        }
    }
    if (h->have_net) {
        rx = h->net_rx_bytes;
        tx = h->net_tx_bytes;
        if (dt > 0 && rx >= p->rx && tx >= p->tx) {
            series_add(&m->ss, object, "net_rx_bps", now, (double)(rx - p->rx) / dt);
            series_add(&m->ss, object, "net_tx_bps", now, (double)(tx - p->tx) / dt);
        }
    }
    p->rd = rd;
    p->wr = wr;
    p->rx = rx;
    p->tx = tx;
    p->ts = at;
    p->have_ksm = h->have_ksm;
    p->have_ksmd = h->have_ksm && h->have_ksmd;
    if (h->have_ksm) {
        p->ksm_run = (int)h->ksm_run;
        p->ksm_pages_shared = h->ksm_pages_shared;
        p->ksm_pages_sharing = h->ksm_pages_sharing;
        p->ksm_saved_bytes = h->ksm_saved_bytes;
        p->ksmd_cpu_seconds = (double)h->ksmd_ticks / (double)h->clk_tck;
        series_add(&m->ss, object, "ksm_saved", now, (double)h->ksm_saved_bytes);
    }
}

struct host_mon *mon_host_get(struct monitor *m, const char *host_id)
{
    const char *name = ctl_host_name(m->ctl, host_id);
    if (!name || !name[0])
        return NULL;
    for (struct host_mon *h = m->hosts; h; h = h->next)
        if (!strcmp(h->id, host_id)) {
            if (strcmp(h->name, name)) { /* renamed: its series start over */
                series_drop_object(&m->ss, h->object);
                snprintf(h->name, sizeof h->name, "%s", name);
                snprintf(h->object, sizeof h->object, "host/%s", name);
            }
            return h;
        }
    struct host_mon *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    snprintf(h->id, sizeof h->id, "%s", host_id);
    snprintf(h->name, sizeof h->name, "%s", name);
    snprintf(h->object, sizeof h->object, "host/%s", name);
    h->next = m->hosts;
    m->hosts = h;
    return h;
}

void mon_hosts_sweep(struct monitor *m)
{
    struct host_mon **pp = &m->hosts;
    while (*pp) {
        struct host_mon *h = *pp;
        const char *name = ctl_host_name(m->ctl, h->id);
        if (name && name[0]) {
            pp = &h->next;
            continue;
        }
        series_drop_object(&m->ss, h->object);
        *pp = h->next;
        free(h);
    }
}

const char *monitor_host_object(struct monitor *m, const char *name)
{
    for (struct host_mon *h = m->hosts; h; h = h->next)
        if (!strcmp(h->name, name))
            return h->object;
    if (m->ctl && !ctl_local_host(m->ctl)[0])
        return NULL; /* a controller: no host of its own */
    const char *local = m->ctl ? ctl_host_name(m->ctl, "") : NULL;
    if (!strcmp(m->hostname, name) || (local && local[0] && !strcmp(local, name)))
        return "host";
    return NULL;
}

bool monitor_host_fresh(const struct monitor *m, const struct host_mon *h, int64_t now)
{
    int64_t interval = (int64_t)(m->cfg ? m->cfg->sample_interval_s : 10) * 1000;
    return h->last && now - h->last <= 3 * interval;
}

static bool sampled(const struct vm_rec *vm)
{
    return vm_state_has_process(vm->state) && vm->pid > 0;
}

void monitor_host_sample(void *ctx, const char *host_id, json_t *ev)
{
    struct monitor *m = ctx;
    if (ctl_host_same(m->ctl, host_id, "")) {
        log_warn("monitor: a pushed host.sample from the local host: ignored");
        return;
    }
    struct host_mon *hm = mon_host_get(m, host_id);
    if (!hm) {
        log_warn("monitor: a host.sample from unknown host %.40s: ignored", host_id);
        return;
    }
    struct host_counters h;
    struct vm_counters_raw *raw = NULL;
    size_t nraw = 0;
    int64_t at = 0;
    struct yerr err = {0};
    if (sample_push_decode(ev, &at, &h, &raw, &nraw, &err) < 0) {
        hm->refused++;
        log_warn("monitor: host %s: its host.sample is refused: %s", hm->name, err.message);
        return;
    }
    if (hm->p.ts && at <= hm->p.ts) {
        /* its clock stepped back (resends never come here: the pusher's
         * sequence numbers drop them): the rates start over from this one */
        log_info("monitor: host %s: a host.sample read at %lld, not after the last (%lld): "
                 "its rates start over",
                 hm->name, (long long)at, (long long)hm->p.ts);
        memset(&hm->p, 0, sizeof hm->p);
    }
    struct vm_rec *vms = NULL;
    size_t n = 0;
    if (nraw && ctl_vm_list_host(m->ctl, host_id, &vms, &n, &err) < 0) {
        log_warn("monitor: host %s: %s", hm->name, err.message);
        free(raw);
        return;
    }
    int64_t now = now_ms();
    mon_apply_host(m, hm->object, &hm->p, &h, at, now);
    hm->last = now;
    hm->samples++;
    size_t taken = 0;
    for (size_t i = 0; i < n; i++) {
        const struct vm_rec *vm = &vms[i];
        if (!sampled(vm) || !ctl_host_same(m->ctl, vm->host, host_id))
            continue;
        const struct vm_counters_raw *r = NULL;
        for (size_t k = 0; k < nraw && !r; k++)
            if (!strcmp(raw[k].vm, vm->id) && raw[k].pid == vm->pid)
                r = &raw[k];
        if (!r)
            continue;
        mon_apply_vm(m, vm, r, h.clk_tck, at, now);
        taken++;
    }
    mon_predict_waits(m, vms, n, host_id, h.ncpus, at, now);
    if (taken < nraw)
        log_debug("monitor: host %s: %zu VM(s) of its sample are not its VMs here: ignored",
                  hm->name, nraw - taken);
    free(vms);
    free(raw);
}
