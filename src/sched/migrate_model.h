/*
 * migrate_model.h - the pre-copy model of a live migration, pure (no I/O,
 * no clock): from the guest's RAM, its measured dirty-page rate, the
 * bandwidth the move may use and the downtime allowed, the rounds QEMU's
 * pre-copy needs, its total time and its downtime, or that it cannot
 * converge; with auto-converge, the same with QEMU's CPU throttle applied.
 */
#ifndef YUN_SCHED_MIGRATE_MODEL_H
#define YUN_SCHED_MIGRATE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#define MIG_MODEL_MAX_ROUNDS 30 /* pre-copy rounds before we call it diverging */

struct mig_model_in {
    uint64_t ram_bytes;   /* the guest's RAM */
    double dirty_bps;     /* bytes/s the guest dirties (calc-dirty-rate) */
    double bandwidth_bps; /* bytes/s the move may use: min(link, --max-bandwidth) */
    int max_downtime_ms;  /* 0 = QEMU's 300 ms */
    bool auto_converge;   /* QEMU throttles the guest's CPU, 20 % then +10 % a round */
    double setup_ms;      /* fixed cost before the first byte (target start, handshake) */
};

struct mig_model_out {
    bool converges;
    int rounds;          /* pre-copy rounds until the rest fits in the downtime */
    double total_ms;     /* setup + every round + the stop-and-copy */
    double downtime_ms;  /* the last copy with the guest paused */
    double bytes;        /* RAM bytes sent in all */
    double throttle_pct; /* the CPU throttle at the end (auto-converge), else 0 */
    double ratio;        /* dirty / bandwidth: >= 1 never converges without throttling */
};

/* 0 with out; -1 for input that has no answer (bandwidth <= 0, negative rate). */
int mig_model_predict(const struct mig_model_in *in, struct mig_model_out *out);

#endif
