/*
 * agent_ksm.h - the host side of KSM (/sys/kernel/mm/ksm): its counters for
 * the host sample, and the controller that switches it on and tunes it
 * (agent/ksm_policy.c decides; this writes).
 *
 * KSM is one per kernel, and several yunds may share a kernel (a cluster's
 * agents in network namespaces of one machine): only the yund holding
 * KSM_LOCK_PATH (flock, never waited for: tried again on every tick) runs the
 * controller. ksm = off never takes the lock and never writes.
 */
#ifndef YUN_AGENT_KSM_H
#define YUN_AGENT_KSM_H

#include <stdbool.h>

struct event_base;
struct yun_config;
struct host_counters;
struct agent_ksm;

#define KSM_LOCK_PATH  "/run/yun-ksm.lock"
#define KSM_SYSFS      "/sys/kernel/mm/ksm"
#define KSM_INTERVAL_S 5

/* The controller, ticking every KSM_INTERVAL_S on base; NULL with ksm = off
 * (nothing to do) or when out of memory (logged). */
struct agent_ksm *agent_ksm_new(struct event_base *base, const struct yun_config *cfg);
/* Releases the lock; KSM stays as last decided (documented). */
void agent_ksm_free(struct agent_ksm *k);
/* It holds the machine's KSM lock. */
bool agent_ksm_holder(const struct agent_ksm *k);

/* KSM's counters into h (have_ksm; have_ksmd with ksmd's CPU ticks): a few
 * small sysfs and /proc reads, cheap enough for the loop. */
void agent_ksm_read(struct host_counters *h);

#endif
