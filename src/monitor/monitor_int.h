/*
 * monitor_int.h - what monitor.c and monitor_hosts.c share inside the
 * monitor: turning one sample's counters into series. Not for other
 * modules (they use monitor.h).
 */
#ifndef YUN_MONITOR_INT_H
#define YUN_MONITOR_INT_H

#include "agent/sample_msg.h"
#include "monitor/monitor.h"

/* One host's counters into object's series. at: when the host read them
 * (the rates' clock, the host's own); now: the series' timestamp (this
 * process's clock). A counter that went backwards gives no rate. */
void mon_apply_host(struct monitor *m, const char *object, struct host_prev *p,
                    const struct host_counters *h, int64_t at, int64_t now);
/* One VM's counters (r NULL: not reported; clk_tck its host's), as above. */
void mon_apply_vm(struct monitor *m, const struct vm_rec *vm, const struct vm_counters_raw *r,
                  int64_t clk_tck, int64_t at, int64_t now);
/* Another host's entry, made on its first sample; NULL when the host has
 * no name (unknown) or out of memory. */
struct host_mon *mon_host_get(struct monitor *m, const char *host_id);
/* Hosts that were removed: their entries and series go. */
void mon_hosts_sweep(struct monitor *m);

#endif
