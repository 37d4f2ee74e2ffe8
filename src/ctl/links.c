/*
 * links.c - the measured links between hosts (ctl/links.h): the cache of
 * figures per (source, target), the checks of the agents' link.sink and
 * link.probe replies, and the bandwidth a move's prediction is given.
 */
#include "ctl/links.h"

#include "lib/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

bool ctl_link_cached(struct ctl *c, const char *source, const char *target, double *bps,
                     int64_t *age_ms)
{
    int64_t now = monotonic_ms();
    for (size_t i = 0; i < CTL_LINKS_SEEN; i++) {
        const struct ctl_link_seen *l = &c->links[i];
        if (l->bps > 0 && !strcmp(l->source, source) && !strcmp(l->target, target) &&
            now - l->at_ms < LINK_TTL_MS) {
            *bps = l->bps;
            *age_ms = now - l->at_ms;
            return true;
        }
    }
    return false;
}

void ctl_link_note(struct ctl *c, const char *source, const char *target, double bps)
{
    struct ctl_link_seen *slot = &c->links[0];
    for (size_t i = 0; i < CTL_LINKS_SEEN; i++) {
        struct ctl_link_seen *l = &c->links[i];
        if (!strcmp(l->source, source) && !strcmp(l->target, target)) {
            slot = l;
            break;
        }
        if (l->at_ms < slot->at_ms)
            slot = l;
    }
    snprintf(slot->source, sizeof slot->source, "%s", source);
    snprintf(slot->target, sizeof slot->target, "%s", target);
    slot->bps = bps;
    slot->at_ms = monotonic_ms();
}

json_t *ctl_link_probe_args(json_t *sink_reply, struct yerr *err)
{
    const char *addr = json_string_value(json_object_get(sink_reply, "address"));
    const char *token = json_string_value(json_object_get(sink_reply, "token"));
    json_t *pj = json_object_get(sink_reply, "port");
    json_int_t port = json_integer_value(pj);
    struct in_addr a;
    if (!addr || inet_pton(AF_INET, addr, &a) != 1 || !json_is_integer(pj) || port < 1 ||
        port > 65535 || !token || strlen(token) != 32) {
        yerr_set(err, YE_BAD_GATEWAY, "the target's link.sink reply is not {address, port, token}");
        return NULL;
    }
    json_t *args = json_pack("{s:s,s:I,s:s,s:i}", "address", addr, "port", port, "token", token,
                             "ms", LINK_PROBE_MS);
    if (!args)
        yerr_set(err, YE_INTERNAL, "out of memory");
    return args;
}

int ctl_link_probe_bps(json_t *probe_reply, double *bps, struct yerr *err)
{
    json_t *bj = json_object_get(probe_reply, "bytes"), *uj = json_object_get(probe_reply, "us");
    json_int_t bytes = json_integer_value(bj), us = json_integer_value(uj);
    if (!json_is_integer(bj) || !json_is_integer(uj) || bytes <= 0 || us <= 0) {
        yerr_set(err, YE_BAD_GATEWAY, "the source's link.probe reply has no bytes and us");
        return -1;
    }
    *bps = (double)bytes * 1e6 / (double)us;
    return 0;
}

void ctl_link_choose(struct link_view *v, uint64_t max_bandwidth)
{
    if (v->measured_bps > 0 && (!max_bandwidth || v->measured_bps < (double)max_bandwidth)) {
        v->bandwidth_bps = v->measured_bps;
        v->source = "measured";
    } else if (max_bandwidth) {
        v->bandwidth_bps = (double)max_bandwidth;
        v->source = "max_bandwidth";
    } else {
        v->bandwidth_bps = LINK_ASSUMED_BPS;
        v->source = "assumed";
    }
}

json_t *ctl_link_json(const struct link_view *v)
{
    json_t *o =
        json_pack("{s:I,s:s}", "bandwidth_bps", (json_int_t)v->bandwidth_bps, "source", v->source);
    if (o && v->measured_bps > 0) {
        json_object_set_new(o, "measured_bps", json_integer((json_int_t)v->measured_bps));
        json_object_set_new(o, "age_ms", json_integer(v->age_ms));
    }
    if (o && v->why[0])
        json_object_set_new(o, "why", json_string(v->why));
    return o;
}
