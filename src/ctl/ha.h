/*
 * ha.h - HA restart (docs/cluster.md, "Shared pools and HA"): when a
 * host's lease lapsed, each of its HA VMs (vms.ha, disk on a shared pool)
 * is started on another host chosen by placement, but only
 * ha_restart_margin_ms after the controller saw the lapse: the host's own
 * agent killed those QEMUs fence_margin_ms BEFORE its lease ended
 * (agent_fence.h), so the old copy is dead before the new one starts.
 *
 * Steps per VM: decide (placement; FAILPOINT ha.after_decide), the intent
 * in one row write (host = the new one, ha_from = the old one, pid 0,
 * state stopped, desired running; FAILPOINT ha.after_prepare after the
 * new host's vm.prepare {existing} made its directory), then ctl_vm_start;
 * ha_from is cleared once that start is answered. A controller killed in
 * between leaves ha_from set: ctl_ha_settle (every full reconcile pass)
 * goes on from the row, so a VM is started once: the row names one host,
 * and the start itself writes its intent (starting) before the launch.
 * Events: vm.ha lease_lapsed, restarting (host and reason), restarted.
 */
#ifndef YUN_CTL_HA_H
#define YUN_CTL_HA_H

#include <stdint.h>

struct ctl;

/* The lease sweep marked host_id down: its HA VMs' restart is scheduled. */
void ctl_ha_host_down(struct ctl *c, const char *host_id, int64_t lease_until);
/* HA restarts a crash left between intent and start: goes on with them. */
void ctl_ha_settle(struct ctl *c);
void ctl_ha_shutdown(struct ctl *c);

#endif
