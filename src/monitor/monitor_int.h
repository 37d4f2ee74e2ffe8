/*
 * monitor_int.h - what monitor.c and monitor_hosts.c share inside the
 * monitor: turning one sample's counters into series. Not for other
 * modules (they use monitor.h).
 */
#ifndef YUN_MONITOR_INT_H
#define YUN_MONITOR_INT_H

#include "agent/sample_msg.h"
#include "monitor/monitor.h"

/* A VM's monitor state: its series object and previous counters. */
struct vm_mon {
    struct vm_mon *next;
    struct monitor *m;
    char id[37];
    char name[64];
    char object[72];
    pid_t pid;
    bool seen;
    /* from here on: reset when the VM gets a new QEMU */
    uint64_t ticks;
    int64_t ts;
    uint64_t rd, wr, rdo, wro, rd_ns, wr_ns;
    int64_t blk_ts;
    bool blk_have;
    struct vm_counters c;
    /* vCPU schedstat: the last counters, and the last interval's figures */
    uint64_t run_ns, wait_ns;
    int64_t sched_ts;
    int64_t runnable_at; /* the sample they came from (its host's clock) */
    double runnable;     /* CPUs' worth of vCPU time runnable (run + wait) */
    int nv;              /* vCPU threads behind it */
};

/* One host's counters into object's series. at: when the host read them
 * (the rates' clock, the host's own); now: the series' timestamp (this
 * process's clock). A counter that went backwards gives no rate. */
void mon_apply_host(struct monitor *m, const char *object, struct host_prev *p,
                    const struct host_counters *h, int64_t at, int64_t now);
/* One VM's counters (r NULL: not reported; clk_tck its host's), as above. */
void mon_apply_vm(struct monitor *m, const struct vm_rec *vm, const struct vm_counters_raw *r,
                  int64_t clk_tck, int64_t at, int64_t now);
/* The vCPU wait the queueing model predicts (sched_mmcn_wait_ratio) for
 * the VMs of host that the sample read at `at` brought vCPU figures for:
 * series "cpu_wait_model", beside the measured "cpu_wait". ncpus: the
 * host's CPUs (0: not reported, nothing predicted). */
void mon_predict_waits(struct monitor *m, const struct vm_rec *vms, size_t n, const char *host,
                       int ncpus, int64_t at, int64_t now);

/* One VM in the wait model (monitor_wait.c, pure): its cpuset ("" = all
 * the host's CPUs), its vCPU threads and how many CPUs' worth of their time
 * was runnable (ran or waited) over the interval. predicted (out): the
 * percent of each vCPU's wall time the model says it waits. */
struct wait_vm {
    const char *cpuset;
    int nvcpu;
    double runnable;
    double predicted;
};
void mon_wait_predict(struct wait_vm *w, size_t n, int ncpus);

/* Another host's entry, made on its first sample; NULL when the host has
 * no name (unknown) or out of memory. */
struct host_mon *mon_host_get(struct monitor *m, const char *host_id);
/* Hosts that were removed: their entries and series go. */
void mon_hosts_sweep(struct monitor *m);

#endif
