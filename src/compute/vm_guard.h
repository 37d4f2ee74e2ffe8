/*
 * vm_guard.h - protection against a guest that misbehaves in a loop: a rate
 * limit on repeated identical QMP events (so a guest cannot flood the event
 * log), and detection of a reset loop (a guest that resets itself again and
 * again, e.g. because its memory is below what its kernel needs). Pure logic
 * on a per-VM struct, driven by the caller's clock; unit-tested.
 */
#ifndef YUN_VM_GUARD_H
#define YUN_VM_GUARD_H

#include <stdbool.h>
#include <stdint.h>

/* At most GUARD_BURST identical events are recorded per GUARD_WINDOW_MS;
 * the rest are counted and reported as one summary when the window ends. */
#define GUARD_BURST     5
#define GUARD_WINDOW_MS 10000
/* Distinct event kinds tracked at once per VM. QMP events and their reasons
 * come from a small fixed set, so this is never the limit in practice. */
#define GUARD_SLOTS 16
/* The most guest resets a reset-loop check can count. */
#define GUARD_RESETS_MAX 64

struct guard_slot {
    char key[96]; /* "" = free */
    int64_t start_ms;
    int count;      /* events seen in this window */
    int suppressed; /* of those, not recorded */
};

struct vm_guard {
    struct guard_slot slots[GUARD_SLOTS];
    int64_t resets[GUARD_RESETS_MAX]; /* times of the latest guest resets, a ring */
    int nresets, next_reset;
    char crash[256]; /* set when yund ended a reset loop: the reason ("" = none) */
};

/* A window that closed with events left out. */
struct guard_summary {
    char key[96];
    int suppressed;
};

/* Should an event with this key (e.g. "qmp:reset guest-reset") be recorded
 * now? Returns true when it should. When a window of this key, or a slot
 * evicted to make room, closed with suppressed events, *sum says so
 * (sum->suppressed > 0): record that summary before the event. */
bool vm_guard_admit(struct vm_guard *g, const char *key, int64_t now_ms, struct guard_summary *sum);

/* Frees the windows that ended by now_ms. Returns true, one at a time, for
 * each that had suppressed events, with *sum filled; call until false. */
bool vm_guard_expire(struct vm_guard *g, int64_t now_ms, struct guard_summary *sum);

/* Notes a reset the guest itself caused. True when it makes `max` guest
 * resets within window_ms (max in 2..GUARD_RESETS_MAX; 0 disables). */
bool vm_guard_reset(struct vm_guard *g, int64_t now_ms, int max, int64_t window_ms);

/* Forgets the reset history (a new QEMU starts with a clean slate). */
void vm_guard_reset_clear(struct vm_guard *g);

#endif
