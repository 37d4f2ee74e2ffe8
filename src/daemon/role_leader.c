/*
 * role_leader.c - yund's leadership at start-up (role_leader.h): a
 * controller on PostgreSQL stands by, serving only GET /v1/health and
 * /healthz (the rest 503 not_leader with the leader's URL) until it is
 * elected, then sets up its controller and serves; the all-in-one on
 * PostgreSQL takes the same lease (so that a second yund on the database
 * cannot write beside it) or refuses to start. Deposed, either exits 75
 * (ctl/leader.h).
 */
#include "daemon/role_leader.h"
#include "api/api.h"
#include "ctl/leader.h"
#include "lib/log.h"
#include "store/store.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static bool is_pg(const char *spec)
{
    return !strncmp(spec, "postgres://", 11) || !strncmp(spec, "postgresql://", 13);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    log_info("signal %d while standing by: stopping", (int)sig);
    event_base_loopexit(arg, NULL);
}

int daemon_leader_begin(struct event_base *base, struct store *st, const struct yun_config *cfg,
                        const char *store_spec, struct api *api, struct ctl *ctl,
                        struct leader **out, bool *api_started)
{
    *out = NULL;
    *api_started = false;
    if (!is_pg(store_spec))
        return 0;
    bool controller = !strcmp(cfg->role, "controller");
    char err[512];
    struct leader_opts o = {.store_spec = store_spec,
                            .url = controller ? cfg->advertise_url : "",
                            .lease_ms = cfg->leader_lease_ms};
    struct leader *l = leader_start(base, st, &o, err, sizeof(err));
    if (!l) {
        log_err("leader: %s", err);
        return -1;
    }
    *out = l;
    if (!controller) {
        if (leader_wait(l, cfg->leader_lease_ms + 3000) == 1)
            return 0;
        log_err("another yund leads this PostgreSQL database (%s); the all-in-one runs alone "
                "on it: stop that one, or run controllers (--role controller)",
                leader_url(l)[0] ? leader_url(l) : "no URL");
        return -1;
    }
    memset(ctl, 0, sizeof(*ctl));
    if (api_start(api, base, ctl, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        api_stop(api);
        return -1;
    }
    *api_started = true;
    api->leader = l;
    api->ready = false;
    snprintf(api->role, sizeof(api->role), "%s", cfg->role);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_stop, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_stop, base);
    if (sigterm)
        event_add(sigterm, NULL);
    if (sigint)
        event_add(sigint, NULL);
    log_info("standby: serving GET /v1/health until elected (%s)",
             cfg->advertise_url[0] ? cfg->advertise_url : "no advertise_url");
    int elected = leader_wait(l, -1);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    return elected ? 0 : 1;
}

void daemon_leader_ready(struct api *api, struct ctl *ctl, struct leader *l,
                         const struct yun_config *cfg)
{
    /* ctl_init cleared what api_start had set */
    ctl->on_event = api_on_event;
    ctl->on_event_ctx = api;
    api->leader = l;
    api->ready = true;
    snprintf(api->role, sizeof(api->role), "%s", cfg->role);
    if (l)
        log_info("leader: serving as the leader, epoch %lld", (long long)leader_epoch(l));
}
