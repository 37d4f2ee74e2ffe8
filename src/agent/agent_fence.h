/*
 * agent_fence.h - the self-fencing keeper: a thread with its own timer
 * that kills this host's HA VMs' QEMUs (SIGKILL) when the host lease the
 * controller granted is about to end without a renewal (its expiry minus
 * fence_margin_ms), so that the controller may restart them elsewhere
 * once the lease plus ha_restart_margin_ms has passed. The decision is
 * fence_plan.c (pure).
 *
 * Why a thread and not a forked keeper process: the thread shares the
 * agent's memory (the leases and the watched pids need no file and no
 * protocol), it dies with the agent (an agent killed -9 leaves no keeper
 * behind to confuse a new one; its QEMUs then have no renewals either, and
 * the controller's margin covers them: see docs/cluster.md, "HA"), and it
 * does not depend on the event loop: it sleeps on a condition variable
 * with a CLOCK_MONOTONIC deadline, so a loop stuck on anything still
 * fences on time. Only the report of a fence (the vm.fenced event) goes
 * through the loop, by a pipe, when the loop runs again.
 */
#ifndef YUN_AGENT_FENCE_H
#define YUN_AGENT_FENCE_H

#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct agent_fence;

/* On the loop, once per QEMU the keeper killed (or found gone): the VM's
 * id, its pid, when it was killed (ms, CLOCK_REALTIME), the lease's end as
 * the agent counted it (ms, CLOCK_REALTIME) and whether the kill was sent
 * (0: the process was already gone or another one held the pid). */
typedef void (*agent_fence_fn)(void *ctx, const char *vm_id, pid_t pid, int64_t fenced_at,
                               int64_t lease_end, int killed);

/* margin_ms: how long before the lease's end to fence (>= 0). NULL when
 * the thread or its pipe cannot be made. */
struct agent_fence *agent_fence_new(struct event_base *base, int64_t margin_ms, agent_fence_fn fn,
                                    void *ctx);
void agent_fence_free(struct agent_fence *f);
/* A heartbeat sent at sent_ms (monotonic_ms()) was answered with lease_ms. */
void agent_fence_renewed(struct agent_fence *f, int64_t sent_ms, int64_t lease_ms);
/* An HA VM's QEMU (pid, its start time from job_proc_start_time) to kill
 * when the lease lapses; a VM watched again replaces its entry. 0, or -1
 * when the table is full. */
int agent_fence_watch(struct agent_fence *f, const char *vm_id, pid_t pid, uint64_t start);
/* The same for a QEMU just launched (its start time read here); a failure
 * is logged (the VM runs, unfenced). f NULL: no keeper, nothing done. */
void agent_fence_watch_qemu(struct agent_fence *f, const char *vm_id, const char *name, pid_t pid);
void agent_fence_unwatch(struct agent_fence *f, const char *vm_id);
/* How many lapses the keeper has fenced so far. */
uint64_t agent_fence_lapses(struct agent_fence *f);

#endif
