/*
 * prom.c - /metrics in the Prometheus text exposition format (version
 * 0.0.4): "yun_" names, vm/host labels, HELP and TYPE for every family,
 * counters ending in _total. Every host and VM series has a host label
 * (each host of a cluster its own). Checked by `promtool check metrics`
 * in tests.
 */
#include "monitor/prom.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/place.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', f), fputc(*s, f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* How long placement decisions took: creates' and dry runs'. */
static void placement_histogram(FILE *f, struct monitor *m)
{
    static const char *const kinds[PLACE_T__COUNT] = {"create", "dry-run"};
    if (!m->ctl)
        return;
    family(f, "yun_placement_seconds", "histogram",
           "Time to choose a new VM's host (kind create or dry-run).");
    for (int k = 0; k < PLACE_T__COUNT; k++) {
        struct place_timing t;
        if (ctl_place_timing(m->ctl, k, &t) < 0)
            continue;
        for (int b = 0; b < PLACE_BUCKETS; b++)
            fprintf(f, "yun_placement_seconds_bucket{kind=\"%s\",le=\"%g\"} %llu\n", kinds[k],
                    place_bucket_le[b], (unsigned long long)t.bucket[b]);
        fprintf(f, "yun_placement_seconds_bucket{kind=\"%s\",le=\"+Inf\"} %llu\n", kinds[k],
                (unsigned long long)t.count);
        fprintf(f, "yun_placement_seconds_sum{kind=\"%s\"} %.9g\n", kinds[k], t.sum);
        fprintf(f, "yun_placement_seconds_count{kind=\"%s\"} %llu\n", kinds[k],
                (unsigned long long)t.count);
    }
}

/* The host label of a VM's series: its host's name (the local host's is
 * the one its host series carry). */
static const char *vm_host_name(struct monitor *m, const struct vm_rec *vm)
{
    if (!m->ctl || ctl_host_same(m->ctl, vm->host, ""))
        return m->hostname;
    return ctl_host_label(m->ctl, vm->host);
}

static void host_gauge(FILE *f, struct monitor *m, const char *name, const char *metric,
                       const char *help)
{
    bool header = false;
    double v;
    /* the local host's (the all-in-one's), then every other host's */
    if (series_last(series_get(&m->ss, "host", metric), NULL, &v) == 0) {
        family(f, name, "gauge", help);
        header = true;
        fprintf(f, "%s{host=\"", name);
        esc(f, m->hostname);
        fprintf(f, "\"} %.6g\n", v);
    }
    int64_t now = now_ms();
    for (const struct host_mon *h = m->hosts; h; h = h->next) {
        if (!monitor_host_fresh(m, h, now) ||
            series_last(series_get(&m->ss, h->object, metric), NULL, &v) < 0)
            continue;
        if (!header)
            family(f, name, "gauge", help);
        header = true;
        fprintf(f, "%s{host=\"", name);
        esc(f, h->name);
        fprintf(f, "\"} %.6g\n", v);
    }
}

/* One KSM family (k: 0 run, 1 pages_shared, 2 pages_sharing, 3 saved
 * bytes, 4 ksmd's CPU seconds) over the hosts that reported KSM. */
static double ksm_value(const struct host_prev *p, int k)
{
    return k == 0   ? p->ksm_run
           : k == 1 ? (double)p->ksm_pages_shared
           : k == 2 ? (double)p->ksm_pages_sharing
           : k == 3 ? (double)p->ksm_saved_bytes
                    : p->ksmd_cpu_seconds;
}

static void ksm_families(FILE *f, struct monitor *m)
{
    static const struct {
        const char *name, *type, *help;
    } fams[5] = {
        {"yun_host_ksm_run", "gauge", "KSM's run setting (0 stopped, 1 merging, 2 unmerging)."},
        {"yun_host_ksm_pages_shared", "gauge", "KSM pages in use, each shared by several."},
        {"yun_host_ksm_pages_sharing", "gauge", "Pages mapped onto KSM's shared pages."},
        {"yun_host_ksm_saved_bytes", "gauge",
         "Memory KSM saves: pages_sharing times the page size."},
        {"yun_host_ksm_cpu_seconds_total", "counter", "CPU time ksmd has used."},
    };
    int64_t now = now_ms();
    for (int k = 0; k < 5; k++) {
        bool header = false;
        const struct host_prev *local = m->h.have_ksm ? &m->h : NULL;
        if (local && (k < 4 || local->have_ksmd)) {
            family(f, fams[k].name, fams[k].type, fams[k].help);
            header = true;
            fprintf(f, "%s{host=\"", fams[k].name);
            esc(f, m->hostname);
            fprintf(f, "\"} %.17g\n", ksm_value(local, k));
        }
        for (const struct host_mon *h = m->hosts; h; h = h->next) {
            if (!monitor_host_fresh(m, h, now) || !h->p.have_ksm || (k == 4 && !h->p.have_ksmd))
                continue;
            if (!header)
                family(f, fams[k].name, fams[k].type, fams[k].help);
            header = true;
            fprintf(f, "%s{host=\"", fams[k].name);
            esc(f, h->name);
            fprintf(f, "\"} %.17g\n", ksm_value(&h->p, k));
        }
    }
}

struct vm_line {
    const char *name;
    double v;
};

char *prom_render(struct monitor *m, const struct vm_rec *vms, size_t n, int64_t api_requests,
                  size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    host_gauge(f, m, "yun_host_cpu_percent", "cpu", "Host CPU busy, percent of all CPUs.");
    host_gauge(f, m, "yun_host_load1", "load1", "Host 1-minute load average.");
    host_gauge(f, m, "yun_host_memory_used_bytes", "mem_used", "Host memory in use.");
    host_gauge(f, m, "yun_host_memory_available_bytes", "mem_available", "Host memory available.");
    host_gauge(f, m, "yun_host_disk_read_bytes_per_second", "disk_read_bps",
               "Host disk reads, bytes per second.");
    host_gauge(f, m, "yun_host_disk_write_bytes_per_second", "disk_write_bps",
               "Host disk writes, bytes per second.");
    host_gauge(f, m, "yun_host_network_receive_bytes_per_second", "net_rx_bps",
               "Host network receive, bytes per second.");
    host_gauge(f, m, "yun_host_network_transmit_bytes_per_second", "net_tx_bps",
               "Host network transmit, bytes per second.");
    ksm_families(f, m);

    family(f, "yun_vms", "gauge", "VMs by state.");
    for (int s = 0; s < VM_STATE_COUNT; s++) {
        int count = 0;
        for (size_t i = 0; i < n; i++)
            count += vms[i].state == (enum vm_state)s;
        fprintf(f, "yun_vms{state=\"%s\"} %d\n", vm_state_name((enum vm_state)s), count);
    }

    /* per-VM families: each family's samples together, as the format wants */
    static const struct {
        const char *name, *type, *help;
        int which;
    } fams[] = {
        {"yun_vm_up", "gauge", "1 when the VM's QEMU is running.", 0},
        {"yun_vm_vcpus", "gauge", "Configured vCPUs.", 1},
        {"yun_vm_memory_bytes", "gauge", "Configured guest memory.", 2},
        {"yun_vm_cpu_seconds_total", "counter", "CPU time used by the VM's QEMU.", 3},
        {"yun_vm_resident_memory_bytes", "gauge", "Resident memory of the VM's QEMU.", 4},
        {"yun_vm_balloon_bytes", "gauge", "Guest memory after ballooning.", 5},
        {"yun_vm_disk_read_bytes_total", "counter", "Bytes read by the VM's disks.", 6},
        {"yun_vm_disk_written_bytes_total", "counter", "Bytes written by the VM's disks.", 7},
        {"yun_vm_disk_read_ops_total", "counter", "Read operations of the VM's disks.", 8},
        {"yun_vm_disk_write_ops_total", "counter", "Write operations of the VM's disks.", 9},
        {"yun_vm_cpu_percent", "gauge", "VM CPU use over the last sample, percent of one CPU.", 10},
        {"yun_vm_cpu_wait_ratio", "gauge",
         "Share of its vCPUs' wall time spent runnable but waiting for a host CPU.", 11},
        {"yun_vm_cpu_wait_model_ratio", "gauge",
         "The vCPU wait share the M/M/c//N queueing model predicts from the demand.", 12},
        {"yun_vm_balloon_target_bytes", "gauge",
         "The host balloon policy's target for the guest's memory (ballooned VMs only).", 13},
        {"yun_vm_balloon_actual_bytes", "gauge",
         "Guest memory after ballooning, for the VMs the balloon policy steers.", 14},
    };
    for (size_t k = 0; k < sizeof(fams) / sizeof(fams[0]); k++) {
        bool header = false;
        for (size_t i = 0; i < n; i++) {
            const struct vm_rec *vm = &vms[i];
            struct vm_counters c;
            bool have = vm_state_has_process(vm->state) && monitor_vm_counters(m, vm->id, &c) == 0;
            double v = 0;
            bool emit = true;
            switch (fams[k].which) {
            case 0:
                v = vm->state == VM_RUNNING;
                break;
            case 1:
                v = vm->cpus;
                break;
            case 2:
                v = (double)(vm->memory_mb << 20);
                break;
            case 3:
                emit = have, v = have ? c.cpu_seconds : 0;
                break;
            case 4:
                emit = have, v = have ? (double)c.rss : 0;
                break;
            case 5:
                emit = have && c.balloon, v = have ? (double)c.balloon : 0;
                break;
            case 6:
                emit = have, v = have ? (double)c.rd_bytes : 0;
                break;
            case 7:
                emit = have, v = have ? (double)c.wr_bytes : 0;
                break;
            case 8:
                emit = have, v = have ? (double)c.rd_ops : 0;
                break;
            case 9:
                emit = have, v = have ? (double)c.wr_ops : 0;
                break;
            case 13:
                emit = have && c.balloon_target, v = have ? (double)c.balloon_target : 0;
                break;
            case 14:
                emit = have && c.balloon_target && c.balloon, v = have ? (double)c.balloon : 0;
                break;
            default: {
                static const char *const ser[] = {"cpu", "cpu_wait", "cpu_wait_model"};
                char obj[72];
                snprintf(obj, sizeof(obj), "vm/%s", vm->name);
                emit = have &&
                       series_last(series_get(&m->ss, obj, ser[fams[k].which - 10]), NULL, &v) == 0;
                if (fams[k].which > 10)
                    v /= 100.0;
            }
            }
            if (!emit)
                continue;
            if (!header)
                family(f, fams[k].name, fams[k].type, fams[k].help);
            header = true;
            fprintf(f, "%s{vm=\"", fams[k].name);
            esc(f, vm->name);
            fprintf(f, "\",host=\"");
            esc(f, vm_host_name(m, vm));
            fprintf(f, "\"} %.10g\n", v);
        }
    }
    family(f, "yun_alerts", "gauge", "Alerts by state.");
    int pending = 0, firing = 0;
    for (size_t r = 0; r < m->nrules; r++) {
        int p, fi;
        monitor_rule_counts(m, m->rules[r].id, &p, &fi);
        pending += p;
        firing += fi;
    }
    fprintf(f, "yun_alerts{state=\"pending\"} %d\nyun_alerts{state=\"firing\"} %d\n", pending,
            firing);
    family(f, "yun_alert_rules", "gauge", "Alert rules defined.");
    fprintf(f, "yun_alert_rules %zu\n", m->nrules);
    family(f, "yun_notifications_total", "counter", "Notifications queued for delivery.");
    fprintf(f, "yun_notifications_total %llu\n", (unsigned long long)m->notifications_total);
    family(f, "yun_notification_failures_total", "counter", "Failed delivery attempts.");
    fprintf(f, "yun_notification_failures_total %llu\n",
            (unsigned long long)m->notify_failures_total);
    family(f, "yun_monitor_samples_total", "counter", "Sampling passes done.");
    fprintf(f, "yun_monitor_samples_total %llu\n", (unsigned long long)m->samples_total);
    placement_histogram(f, m);
    family(f, "yun_api_requests_total", "counter", "API requests served.");
    fprintf(f, "yun_api_requests_total %lld\n", (long long)api_requests);
    family(f, "yun_yund_cpu_percent", "gauge", "yund's own CPU use, percent of one CPU.");
    fprintf(f, "yun_yund_cpu_percent %.4g\n", m->self_cpu);
    char *st = read_file("/proc/self/status", 1 << 16, NULL);
    const char *rss = st ? strstr(st, "VmRSS:") : NULL;
    if (rss) {
        family(f, "yun_yund_resident_memory_bytes", "gauge", "yund's resident memory.");
        fprintf(f, "yun_yund_resident_memory_bytes %llu\n", strtoull(rss + 6, NULL, 10) * 1024);
    }
    free(st);
    fclose(f);
    return buf;
}
