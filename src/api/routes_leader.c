/*
 * routes_leader.c - GET /v1/health: which role this yund plays and whether
 * it leads (docs/cluster.md "Leader"). One of the rows a standby controller
 * answers (ROUTE_STANDBY); every other row is 503 not_leader there
 * (api/http.c), naming the leader's URL when it is known.
 */
#include "api/api.h"
#include "api/httpd.h"
#include "ctl/leader.h"

#include <event2/http.h>
#include <string.h>

static void health_show(struct route_ctx *c)
{
    struct api *a = c->api;
    bool leads = !a->leader || (leader_serving(a->leader) && a->ready);
    const char *url = a->leader ? leader_url(a->leader) : "";
    json_t *j = json_pack("{s:s,s:b,s:o}", "role", a->role[0] ? a->role : "all", "leader", leads,
                          "leader_url", url[0] ? json_string(url) : json_null());
    if (j && a->leader)
        json_object_set_new(j, "epoch", json_integer(leader_epoch(a->leader)));
    reply_json(c->req, 200, j);
}

void reply_not_leader(struct api *a, struct hreq *req)
{
    const char *url = a->leader ? leader_url(a->leader) : "";
    bool self = a->leader && leader_serving(a->leader);
    json_t *err = json_pack(
        "{s:s,s:s,s:o}", "code", "not_leader", "message",
        self ? "this controller was just elected and is starting; try again shortly"
             : (url[0] ? "this controller is a standby; send requests to the leader"
                       : "this controller is a standby and no leader is known yet; try again"),
        "leader", url[0] ? json_string(url) : json_null());
    evhttp_add_header(hreq_output_headers(req), "Retry-After", "1");
    reply_json(req, 503, json_pack("{s:o}", "error", err));
}

const struct route routes_leader[] = {
    {EVHTTP_REQ_GET, "/v1/health", health_show, ROUTE_PUBLIC | ROUTE_STANDBY,
     "This yund's role and whether it leads (answered by a standby too)", NULL},
};
const size_t routes_leader_count = sizeof(routes_leader) / sizeof(routes_leader[0]);
