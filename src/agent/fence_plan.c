/*
 * fence_plan.c - the self-fencing keeper's decision (fence_plan.h): pure.
 */
#include "agent/fence_plan.h"

#include <string.h>

#define LEASE_MAX_MS (24LL * 3600 * 1000)

void fence_plan_init(struct fence_plan *p, int64_t margin_ms)
{
    memset(p, 0, sizeof(*p));
    p->margin = margin_ms > 0 ? margin_ms : 0;
}

bool fence_plan_renewed(struct fence_plan *p, int64_t sent_ms, int64_t lease_ms)
{
    if (lease_ms <= 0 || lease_ms > LEASE_MAX_MS || sent_ms < 0)
        return false;
    int64_t until = sent_ms + lease_ms;
    if (until > p->expires) {
        p->expires = until;
        p->fenced = false;
    }
    return true;
}

int64_t fence_plan_deadline(const struct fence_plan *p)
{
    if (!p->expires || p->fenced)
        return FENCE_NEVER;
    return p->expires - p->margin;
}

enum fence_act fence_plan_check(struct fence_plan *p, int64_t now_ms)
{
    if (p->fenced)
        return FENCE_DONE;
    if (!p->expires || now_ms < p->expires - p->margin)
        return FENCE_WAIT;
    p->fenced = true;
    p->lapses++;
    return FENCE_KILL;
}
