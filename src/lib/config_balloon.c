/*
 * config_balloon.c - the host balloon policy's settings (agent/agent_balloon.c,
 * sched/balloon_policy.h; docs/architecture.md, "Ballooning"): on or off, how
 * often it runs, and the thresholds it decides with.
 */
#include "lib/config.h"
#include "lib/util.h"

#include <stdio.h>
#include <string.h>

void config_balloon_defaults(struct yun_config *c)
{
    c->balloon_policy = 1;
    c->balloon_interval_ms = 5000;
    c->balloon_host_reserve = 0;  /* 10 % of MemTotal */
    c->balloon_guest_reserve = 0; /* max(32M, 1/8 of the VM's memory) */
    c->balloon_psi_some = 10;
    c->balloon_step_pct = 10;
}

static int size_key(const char *key, const char *v, uint64_t *dst, char *err, size_t el)
{
    uint64_t u;
    if (parse_size(v, &u) < 0 || u > (1ULL << 50)) {
        snprintf(err, el, "%s: '%s' is not a size such as 2G, at most 1024T (0 = automatic)", key,
                 v);
        return -1;
    }
    *dst = u;
    return 0;
}

static int int_key(const char *key, const char *v, uint64_t min, uint64_t max, int *dst, char *err,
                   size_t el)
{
    uint64_t u;
    if (parse_u64(v, min, max, &u) < 0) {
        snprintf(err, el, "%s: '%s' is not a whole number in %llu..%llu", key, v,
                 (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *dst = (int)u;
    return 0;
}

int config_balloon_set(struct yun_config *c, const char *key, const char *v, char *err, size_t el)
{
    if (!strcmp(key, "balloon_policy")) {
        if (strcmp(v, "on") && strcmp(v, "off")) {
            snprintf(err, el, "balloon_policy: '%s' is not on or off", v);
            return -1;
        }
        c->balloon_policy = !strcmp(v, "on");
        return 0;
    }
    if (!strcmp(key, "balloon_interval_ms"))
        return int_key(key, v, 100, 600000, &c->balloon_interval_ms, err, el);
    if (!strcmp(key, "balloon_psi_some"))
        return int_key(key, v, 0, 100, &c->balloon_psi_some, err, el);
    if (!strcmp(key, "balloon_step_pct"))
        return int_key(key, v, 1, 100, &c->balloon_step_pct, err, el);
    if (!strcmp(key, "balloon_host_reserve"))
        return size_key(key, v, &c->balloon_host_reserve, err, el);
    if (!strcmp(key, "balloon_guest_reserve"))
        return size_key(key, v, &c->balloon_guest_reserve, err, el);
    return 1;
}
