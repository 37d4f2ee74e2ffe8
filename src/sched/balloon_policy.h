/*
 * balloon_policy.h - where each VM's balloon target goes next, pure (no I/O,
 * no clock): from the host's memory (MemTotal, MemAvailable, PSI memory
 * "some" avg10 when the kernel has it) and each VM's size, minimum, balloon
 * actual and its guest's own free and available memory, one round of the
 * host's balloon loop (agent/agent_balloon.c) decides a target per VM and
 * why. Shared with the simulator like the rest of src/sched.
 *
 * Rules (docs/architecture.md, "Ballooning"):
 *  - a guest whose available memory is below its reserve gets memory back
 *    at once (the shortfall plus a step), before it swaps or OOMs;
 *  - under host pressure (MemAvailable below host_reserve, or PSI some
 *    avg10 at or above psi_some) the host's deficit is reclaimed from the
 *    guests with the most memory to spare first, each by at most step_pct
 *    of its size a round, never below its minimum, and never so far that
 *    the guest's available memory falls under reserve + margin;
 *  - with no pressure (MemAvailable above host_reserve by the margin and PSI
 *    below half its threshold) targets drift back up a step a round to the
 *    full size;
 *  - between the two thresholds targets hold (hysteresis), and a guest that
 *    was just given memory back is not reclaimed from for hold_rounds.
 */
#ifndef YUN_SCHED_BALLOON_POLICY_H
#define YUN_SCHED_BALLOON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct balloon_knobs {
    uint64_t host_reserve;  /* bytes the host wants available; 0 = 10 % of MemTotal */
    double psi_some;        /* PSI memory some avg10 (percent) that is pressure; 0 = ignore */
    uint64_t guest_reserve; /* bytes a guest keeps available; 0 = max(32 MiB, 1/8 of its size) */
    int step_pct;           /* at most this much of a VM's size per round (1..100) */
    int hold_rounds;        /* no reclaim from a guest this many rounds after a give-back */
    int stats_max_age_s;    /* older guest stats are not trusted for a reclaim */
};

void balloon_knobs_default(struct balloon_knobs *k);

struct balloon_host {
    uint64_t mem_total, mem_available;
    bool have_psi;
    double psi_some_avg10, psi_full_avg10;
};

struct balloon_vm {
    uint64_t size;   /* the VM's memory, bytes */
    uint64_t min;    /* never below this (>= size: never ballooned) */
    uint64_t actual; /* query-balloon "actual" (0: unknown) */
    uint64_t target; /* the target set last (0: none yet, i.e. the size) */
    bool have_stats; /* guest-stats with free and available memory */
    uint64_t guest_free, guest_available;
    int stats_age_s;    /* now - guest-stats "last-update" */
    int since_giveback; /* rounds since this loop last gave it memory back */
};

struct balloon_decision {
    uint64_t target;
    bool changed;       /* differs from the VM's target: send `balloon` */
    const char *reason; /* static text */
};

/* The host's pressure as the policy sees it: 1 pressure, -1 relaxed
 * (targets drift up), 0 in between (hold). */
int balloon_host_pressure(const struct balloon_knobs *k, const struct balloon_host *h);

/* One round: out[i] for vms[i]. */
void balloon_decide(const struct balloon_knobs *k, const struct balloon_host *h,
                    const struct balloon_vm *vms, size_t n, struct balloon_decision *out);

#endif
