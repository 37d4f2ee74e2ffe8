/*
 * monitor.h - yund's VM monitor (controller side): every sample_interval it
 * asks the host's agent for the raw counters of the host and of every VM
 * with a QEMU (host.sample), keeps the rates in memory rings and rollups in
 * the store, evaluates alert rules and hands notifications to the notifier.
 * The API's monitor routes go through monitor_svc.c's functions below.
 */
#ifndef YUN_MONITOR_H
#define YUN_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl/ctl.h"
#include "monitor/alert_rule.h"
#include "monitor/notify.h"
#include "monitor/series.h"

struct vm_mon;
struct alert_slot;
struct mon_sample;

/* A host's previous counters, for rates. */
struct host_prev {
    uint64_t busy, total, rd, wr, rx, tx;
    int64_t ts;
    /* KSM as the host last reported it (machine-wide: several hosts of one
     * machine report the same figures) */
    bool have_ksm, have_ksmd;
    int ksm_run;
    uint64_t ksm_pages_shared, ksm_pages_sharing, ksm_saved_bytes;
    double ksmd_cpu_seconds;
};

/* Another host of the cluster (not this process's own): its series are
 * object "host/NAME" (the local host's stay "host"). */
struct host_mon {
    struct host_mon *next;
    char id[37];
    char name[64];
    char object[72];
    struct host_prev p;
    int64_t last;     /* when its last sample came (this process's clock) */
    uint64_t samples; /* samples taken */
    uint64_t refused; /* samples refused (invalid) */
};

struct monitor {
    struct ctl *ctl; /* the state of record, events, and the hosts' agents (sampling) */
    const struct yun_config *cfg;
    struct series_store ss;
    struct event *timer;
    char hostname[64];
    struct host_prev h;     /* the local host's previous counters */
    struct host_mon *hosts; /* the other hosts sampled, newest first */
    struct vm_mon *vms;
    struct alert_rule *rules;
    size_t nrules;
    struct alert_slot *slots; /* one per (rule, object) being tracked */
    struct notifier *notifier;
    /* the hosts' host.sample calls in flight (NULL: none) and the VM rows
     * they asked for */
    struct mon_sample *samples;
    struct vm_rec *svms;
    size_t nsvms, capsvms;
    bool sprime;
    /* the rows are read a slice a loop turn (a tick never holds the loop
     * for the whole table): reading until the last slice is in */
    struct event *slice;
    char cursor[64];
    bool reading;
    int64_t last_minute; /* start of the last minute rolled up */
    /* yund's own cost */
    int64_t self_us; /* getrusage: user + system time */
    int64_t self_ts;
    double self_cpu;
    uint64_t samples_total, notifications_total, notify_failures_total;
};

int monitor_init(struct monitor *m, struct ctl *c, const struct yun_config *cfg, char *err,
                 size_t errlen);
void monitor_shutdown(struct monitor *m);
/* One sampling + evaluation pass (the timer calls it; exposed for tests). */
void monitor_tick(struct monitor *m);
/* Re-reads the rules from the store (after an API change). */
int monitor_reload_rules(struct monitor *m);
/* Current state of a rule's alerts: how many are pending / firing. */
void monitor_rule_counts(struct monitor *m, const char *rule_id, int *pending, int *firing);

/* Latest per-VM counters for /metrics and `yun top`. */
struct vm_counters {
    double cpu_seconds;
    uint64_t rss, balloon;
    bool have_swap;
    uint64_t swap;           /* the VM's cgroup's swapped-out bytes */
    uint64_t balloon_target; /* the host's balloon policy's target; 0 = not ballooned */
    uint64_t rd_bytes, wr_bytes, rd_ops, wr_ops;
    int nvcpu;
    double vcpu_seconds[64];
    int valid;
};
int monitor_vm_counters(struct monitor *m, const char *vm_id, struct vm_counters *out);
/* The series object of host name ("host" for the local host, by its host
 * row's name or the machine's hostname; "host/NAME" for another host that
 * has been sampled); NULL when none. */
const char *monitor_host_object(struct monitor *m, const char *name);
/* Its samples are recent (the last within three intervals): /metrics and
 * /v1/stats show only those hosts. */
bool monitor_host_fresh(const struct monitor *m, const struct host_mon *h, int64_t now);
/* The memory view of a host (`yun host`, GET /v1/host and /v1/hosts/NAME),
 * from the VM rows the last tick read and the host's last sample:
 * committed, the memory sizes of its VMs with a QEMU; resident, their RSS;
 * ballooned, memory size less the balloon's actual size of those that
 * report one; shared, what KSM saves (machine-wide); swapped, their
 * cgroups' swap. have_ksm: the host reported KSM. */
struct host_memory_view {
    uint64_t committed, resident, ballooned, shared, swapped;
    bool have_ksm;
    int ksm_run;
};
/* host_id: "" = the local host. -1 when the host has not been sampled yet. */
int monitor_host_memory(struct monitor *m, const char *host_id, struct host_memory_view *out);

/* A "host.sample" event another host pushed (ctl.h on_host_sample): checked
 * (sample_push_decode; only the VMs the store has on that host, with that
 * pid, are taken) and made that host's series. Anything refused is logged
 * and counted, nothing changed; a sample read before the last one starts
 * that host's rates over. */
void monitor_host_sample(void *ctx, const char *host_id, json_t *ev);

/* ---- the API's service (monitor_svc.c): routes call these, not the store.
 * Each returns 0, or -1 with err (YE_NOT_FOUND, YE_CONFLICT, YE_INTERNAL). */
int monitor_vms(struct monitor *m, struct vm_rec **out, size_t *n, struct yerr *err);
/* By name or id; NULL when there is none. */
const struct alert_rule *monitor_rule_find(struct monitor *m, const char *name);
/* r (a checked body) gets its id and creation time; *saved is the rule as
 * reloaded (NULL if it went meanwhile). */
int monitor_rule_add(struct monitor *m, struct alert_rule *r, const struct alert_rule **saved,
                     struct yerr *err);
/* until: ms since epoch, 0 lifts the silence. */
int monitor_rule_silence(struct monitor *m, const char *name, int64_t until,
                         const struct alert_rule **out, struct yerr *err);
int monitor_rule_delete(struct monitor *m, const char *name, char *deleted, size_t len,
                        struct yerr *err);
int monitor_alerts(struct monitor *m, const char *state, int limit, struct alert_row **out,
                   size_t *n, struct yerr *err);
int monitor_rollups(struct monitor *m, const char *object, const char *metric, int step,
                    int64_t since, struct rollup_row **out, size_t *n, struct yerr *err);

#endif
