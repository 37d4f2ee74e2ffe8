/*
 * links.h - the links between hosts as a move's prediction sees them
 * (links.c): the target agent's link.sink and the source agent's link.probe
 * (agent_link.c) measure one, the figure is kept LINK_TTL_MS per (source,
 * target) in c->links so a drain of many VMs measures once, and the
 * bandwidth the pre-copy model uses is chosen from it and --max-bandwidth.
 * No I/O here: the callers (migrate_plan.c) make the agent calls.
 */
#ifndef YUN_CTL_LINKS_H
#define YUN_CTL_LINKS_H

#include "ctl/ctl.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define LINK_TTL_MS      (5 * 60 * 1000) /* a measured link is trusted this long */
#define LINK_PROBE_MS    250             /* a probe sends this long */
#define LINK_ASSUMED_BPS 125000000.0     /* 1 Gbit/s when the link was not measured */

/* The figure measured from source to target within LINK_TTL_MS: true with
 * bps and its age. */
bool ctl_link_cached(struct ctl *c, const char *source, const char *target, double *bps,
                     int64_t *age_ms);
/* A measurement kept (the oldest entry makes room). */
void ctl_link_note(struct ctl *c, const char *source, const char *target, double bps);
/* link.probe's arguments from the target's link.sink reply (checked: a
 * message from another host); NULL with err. */
json_t *ctl_link_probe_args(json_t *sink_reply, struct yerr *err);
/* The probe's reply checked: 0 with bps > 0, or -1 with err. */
int ctl_link_probe_bps(json_t *probe_reply, double *bps, struct yerr *err);

/* What the model is given: the smaller of the measured link (0: none) and
 * max_bandwidth (0: none), else LINK_ASSUMED_BPS. */
struct link_view {
    double bandwidth_bps; /* what the prediction uses */
    const char *source;   /* "measured", "max_bandwidth" or "assumed" */
    double measured_bps;  /* 0: not measured */
    int64_t age_ms;       /* of the measurement (0: just now) */
    char why[160];        /* why it was not measured ("" when it was) */
};
void ctl_link_choose(struct link_view *v, uint64_t max_bandwidth);
/* The plan's and the task's "link" object. */
json_t *ctl_link_json(const struct link_view *v);

#endif
