/*
 * vm_guard.c - the rate limit on identical events and the reset-loop
 * detector of vm_guard.h.
 *
 * The rate limit uses fixed windows per key: the first event of a key opens
 * a window of GUARD_WINDOW_MS; the first GUARD_BURST events in it are
 * recorded, the rest only counted. The count comes out as one summary when
 * the window is over (at the key's next event, or when the caller expires
 * windows on its periodic pass), so a guest in a loop costs at most
 * GUARD_BURST + 1 rows per window however fast it loops.
 */
#include "compute/vm_guard.h"

#include <stdio.h>
#include <string.h>

static void slot_open(struct guard_slot *s, const char *key, int64_t now)
{
    snprintf(s->key, sizeof(s->key), "%s", key);
    s->start_ms = now;
    s->count = 1;
    s->suppressed = 0;
}

static void slot_close(struct guard_slot *s, struct guard_summary *sum)
{
    if (sum && s->suppressed > 0) {
        snprintf(sum->key, sizeof(sum->key), "%s", s->key);
        sum->suppressed = s->suppressed;
    }
    memset(s, 0, sizeof(*s));
}

bool vm_guard_admit(struct vm_guard *g, const char *key, int64_t now, struct guard_summary *sum)
{
    memset(sum, 0, sizeof(*sum));
    struct guard_slot *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        struct guard_slot *s = &g->slots[i];
        if (!s->key[0]) {
            if (!free_slot)
                free_slot = s;
            continue;
        }
        if (strcmp(s->key, key)) {
            if (!oldest || s->start_ms < oldest->start_ms)
                oldest = s;
            continue;
        }
        /* A clock that went backwards also ends the window. */
        if (now >= s->start_ms + GUARD_WINDOW_MS || now < s->start_ms) {
            slot_close(s, sum);
            slot_open(s, key, now);
            return true;
        }
        if (++s->count <= GUARD_BURST)
            return true;
        s->suppressed++;
        return false;
    }
    if (!free_slot) {
        /* More distinct kinds than slots: make room by closing the oldest
         * window early, reporting what it held back. */
        free_slot = oldest;
        slot_close(free_slot, sum);
    }
    slot_open(free_slot, key, now);
    return true;
}

bool vm_guard_expire(struct vm_guard *g, int64_t now, struct guard_summary *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (int i = 0; i < GUARD_SLOTS; i++) {
        struct guard_slot *s = &g->slots[i];
        if (!s->key[0] || (now < s->start_ms + GUARD_WINDOW_MS && now >= s->start_ms))
            continue;
        bool had = s->suppressed > 0;
        slot_close(s, sum);
        if (had)
            return true;
    }
    return false;
}

bool vm_guard_reset(struct vm_guard *g, int64_t now, int max, int64_t window_ms)
{
    if (max < 2 || max > GUARD_RESETS_MAX)
        return false;
    g->resets[g->next_reset] = now;
    g->next_reset = (g->next_reset + 1) % GUARD_RESETS_MAX;
    if (g->nresets < GUARD_RESETS_MAX)
        g->nresets++;
    if (g->nresets < max)
        return false;
    /* The max-th latest reset, counting this one as the first. */
    int i = (g->next_reset - max + GUARD_RESETS_MAX) % GUARD_RESETS_MAX;
    int64_t first = g->resets[i];
    return now - first <= window_ms && now >= first;
}

void vm_guard_reset_clear(struct vm_guard *g)
{
    memset(g->resets, 0, sizeof(g->resets));
    g->nresets = 0;
    g->next_reset = 0;
}
