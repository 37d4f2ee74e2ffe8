/*
 * fence_plan.h - the self-fencing keeper's decision, pure (no clock, no
 * I/O): given the leases the controller granted (each heartbeat's start on
 * the agent's monotonic clock plus the lease_ms it answered) and a fence
 * margin, when must this host's HA VMs be killed. The thread that acts on
 * it is agent_fence.c.
 *
 * The expiry is counted from when the heartbeat was SENT, not answered:
 * the controller stamps lease_until = now() + lease after the request
 * arrived, so the agent's expiry is never later than the controller's.
 */
#ifndef YUN_FENCE_PLAN_H
#define YUN_FENCE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#define FENCE_NEVER INT64_MAX

struct fence_plan {
    int64_t expires; /* monotonic ms the granted lease ends (0 = no lease yet) */
    int64_t margin;  /* ms before expires to fence */
    bool fenced;     /* fired for the current lapse; a renewal re-arms */
    uint64_t lapses; /* how many times it fired */
};

enum fence_act {
    FENCE_WAIT, /* the lease holds (or there is none yet): nothing to do */
    FENCE_KILL, /* kill the HA VMs now (once per lapse) */
    FENCE_DONE, /* already fenced for this lapse */
};

void fence_plan_init(struct fence_plan *p, int64_t margin_ms);
/* A renewal: the heartbeat sent at sent_ms (monotonic) was answered with
 * lease_ms. An expiry never moves back (an older answer arriving late).
 * false when the values are impossible (ignored: lease_ms <= 0, or over a
 * day). A renewal after a fence re-arms the plan. */
bool fence_plan_renewed(struct fence_plan *p, int64_t sent_ms, int64_t lease_ms);
/* The instant to fence at (monotonic ms), FENCE_NEVER with no lease or
 * once fenced for this lapse. */
int64_t fence_plan_deadline(const struct fence_plan *p);
/* What to do at now_ms; FENCE_KILL marks the lapse fenced. */
enum fence_act fence_plan_check(struct fence_plan *p, int64_t now_ms);

#endif
