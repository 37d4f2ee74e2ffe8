/*
 * ksm_policy.h - the KSM controller's decision (pure: no I/O). The agent
 * (agent/agent_ksm.c) reads the host's memory, PSI and
 * /sys/kernel/mm/ksm counters, hands them here every few seconds with the
 * previous state, and writes run, pages_to_scan and sleep_millisecs only
 * when the decision changes. Also the parsers of what it reads.
 */
#ifndef YUN_AGENT_KSM_POLICY_H
#define YUN_AGENT_KSM_POLICY_H

#include <stdbool.h>
#include <stdint.h>

enum ksm_mode { KSM_AUTO, KSM_ON, KSM_OFF };

/* "auto", "on", "off": 0, or -1 for anything else. */
int ksm_mode_parse(const char *s, enum ksm_mode *out);
const char *ksm_mode_name(enum ksm_mode m);

/* The kernel's own defaults: what `on` (and the mildest pressure) scans. */
#define KSM_DEFAULT_PAGES 100
#define KSM_DEFAULT_SLEEP 20
#define KSM_MAX_PAGES     4000 /* the hardest scan under full pressure */
#define KSM_MIN_SLEEP     10
/* Hysteresis: a costly KSM must be costly this many evaluations in a row to
 * go off, and then stays off this many before pressure may start it again. */
#define KSM_COSTLY_TICKS  3
#define KSM_HOLDOFF_TICKS 60
/* Pressure is relieved only this many points of free memory above the
 * threshold (and PSI below half its threshold). */
#define KSM_FREE_MARGIN 10.0

struct ksm_tuning {
    enum ksm_mode mode;
    double free_pct;     /* on when MemAvailable is below this percent of MemTotal */
    double psi_avg10;    /* ... or PSI memory "some" avg10 at or above this */
    uint64_t min_saving; /* bytes saved per CPU-second ksmd costs, below it: off */
};

struct ksm_input {
    uint64_t mem_total, mem_available; /* bytes */
    bool have_psi;
    double psi_some_avg10; /* percent */
    uint64_t pages_shared, pages_sharing, pages_unshared, pages_volatile, full_scans;
    uint64_t page_size;
    bool have_cpu;
    double ksmd_cpu; /* ksmd's CPU use since the last evaluation: CPU-seconds per second */
};

/* What the controller keeps between evaluations (zero at start). */
struct ksm_state {
    bool valid; /* a decision was made (and written) */
    int run;
    unsigned pages_to_scan, sleep_ms;
    int costly;              /* evaluations in a row that cost more than they saved */
    int holdoff;             /* evaluations left before pressure may start KSM again */
    uint64_t scans_at_start; /* full_scans when it was last started */
};

struct ksm_decision {
    int run; /* 0 or 1 (never 2: merged pages stay merged) */
    unsigned pages_to_scan, sleep_ms;
    bool changed; /* differs from the previous decision: write it */
    const char *reason;
};

/* One evaluation: d gets the decision, st the state for the next one. */
void ksm_decide(const struct ksm_tuning *t, const struct ksm_input *in, struct ksm_state *st,
                struct ksm_decision *d);

/* Bytes KSM saves: pages_sharing pages that need no copy of their own. */
static inline uint64_t ksm_saved_bytes(const struct ksm_input *in)
{
    return in->pages_sharing * in->page_size;
}

/* /proc/pressure/memory's "some avg10=X": 0 with *avg10, -1 when absent. */
int ksm_parse_psi(const char *text, double *avg10);
/* A sysfs counter: one unsigned decimal number and an optional newline. */
int ksm_parse_counter(const char *text, uint64_t *out);

#endif
