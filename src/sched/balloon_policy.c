/*
 * balloon_policy.c - one round of the balloon policy (balloon_policy.h):
 * pure arithmetic over the host's and the guests' memory figures, no I/O.
 */
#include "sched/balloon_policy.h"

#include <stdlib.h>

#define MIB (1ULL << 20)

void balloon_knobs_default(struct balloon_knobs *k)
{
    k->host_reserve = 0;
    k->psi_some = 10.0;
    k->guest_reserve = 0;
    k->step_pct = 10;
    k->hold_rounds = 6;
    k->stats_max_age_s = 10;
}

static uint64_t host_reserve(const struct balloon_knobs *k, const struct balloon_host *h)
{
    return k->host_reserve ? k->host_reserve : h->mem_total / 10;
}

static uint64_t guest_reserve(const struct balloon_knobs *k, const struct balloon_vm *v)
{
    if (k->guest_reserve)
        return k->guest_reserve;
    uint64_t r = v->size / 8;
    return r < 32 * MIB ? 32 * MIB : r;
}

static uint64_t step_of(const struct balloon_knobs *k, const struct balloon_vm *v)
{
    int pct = k->step_pct < 1 ? 1 : k->step_pct > 100 ? 100 : k->step_pct;
    uint64_t s = v->size / 100 * (uint64_t)pct;
    s -= s % MIB;
    return s < MIB ? MIB : s;
}

int balloon_host_pressure(const struct balloon_knobs *k, const struct balloon_host *h)
{
    uint64_t hr = host_reserve(k, h);
    bool psi = h->have_psi && k->psi_some > 0;
    if (h->mem_available < hr || (psi && h->psi_some_avg10 >= k->psi_some))
        return 1;
    /* relaxed only clear of both thresholds, so targets do not chase a
     * host that hovers at its reserve */
    if (h->mem_available >= hr + hr / 4 && (!psi || h->psi_some_avg10 < k->psi_some / 2))
        return -1;
    return 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

struct cand {
    size_t i;
    uint64_t room; /* what it can give without its available memory under reserve + margin */
};

static int by_room(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->room != y->room)
        return x->room > y->room ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* stable: the input's order */
}

void balloon_decide(const struct balloon_knobs *k, const struct balloon_host *h,
                    const struct balloon_vm *vms, size_t n, struct balloon_decision *out)
{
    int pressure = balloon_host_pressure(k, h);
    uint64_t hr = host_reserve(k, h);
    /* the host's shortfall; PSI alone names none, so ask for a tenth of RAM */
    uint64_t deficit = 0;
    if (pressure > 0)
        deficit = h->mem_available < hr ? hr - h->mem_available : h->mem_total / 10;
    struct cand *c = n ? calloc(n, sizeof *c) : NULL;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        const struct balloon_vm *v = &vms[i];
        struct balloon_decision *d = &out[i];
        uint64_t cur = v->target ? v->target : v->size;
        if (v->min >= v->size) {
            d->target = v->size;
            d->changed = cur != v->size;
            d->reason = "no minimum below its size: not ballooned";
            continue;
        }
        if (cur > v->size)
            cur = v->size;
        if (cur < v->min)
            cur = v->min;
        d->target = cur;
        d->reason = "hold";
        uint64_t step = step_of(k, v), gr = guest_reserve(k, v);
        bool fresh = v->have_stats && v->stats_age_s <= k->stats_max_age_s;
        if (fresh && v->guest_available < gr) {
            /* the guest's figures are at its actual size: what it lacks
             * from there, and a step more so it is not back here at once */
            uint64_t base = v->actual ? v->actual : cur;
            uint64_t want = min_u64(v->size, base + (gr - v->guest_available) + step);
            d->target = want > cur ? want : cur;
            d->reason = d->target > cur ? "guest needs memory: give back"
                                        : "guest short of memory, at its full size";
        } else if (pressure < 0) {
            d->target = min_u64(v->size, cur + step);
            d->reason =
                cur < v->size ? "no host pressure: give back" : "no host pressure: full size";
        } else if (pressure == 0) {
            d->reason = "host near its reserve: hold";
        } else if (cur <= v->min) {
            d->reason = "host pressure: at minimum";
        } else if (!fresh) {
            d->reason = "host pressure: no fresh guest stats, hold";
        } else if (v->since_giveback < k->hold_rounds) {
            d->reason = "host pressure: given back lately, hold";
        } else {
            /* what the guest can still give: its available memory over its
             * reserve and a step's margin, less what an inflation still on
             * its way (actual above the target) will take */
            uint64_t keep = gr + step, pending = v->actual > cur ? v->actual - cur : 0;
            uint64_t room =
                v->guest_available > keep + pending ? v->guest_available - keep - pending : 0;
            room = min_u64(room, cur - v->min);
            room -= room % MIB;
            if (!room) {
                d->reason = "host pressure: guest has no memory to spare";
            } else if (c) {
                c[nc].i = i;
                c[nc++].room = room;
                d->reason = "host pressure: enough reclaimed from other guests";
            }
        }
        d->changed = d->target != (v->target ? v->target : v->size);
    }
    /* the guests with the most to spare first, a step each, until the
     * host's deficit is covered */
    if (nc)
        qsort(c, nc, sizeof *c, by_room);
    for (size_t j = 0; j < nc && deficit > 0; j++) {
        const struct balloon_vm *v = &vms[c[j].i];
        struct balloon_decision *d = &out[c[j].i];
        uint64_t take = min_u64(min_u64(c[j].room, step_of(k, v)), deficit);
        take -= take % MIB;
        if (!take)
            break;
        d->target -= take;
        deficit = deficit > take ? deficit - take : 0;
        d->reason = d->target <= v->min ? "host pressure: reclaimed from idle guest, to its minimum"
                                        : "host pressure: reclaim from idle guest";
        d->changed = d->target != (v->target ? v->target : v->size);
    }
    free(c);
}
