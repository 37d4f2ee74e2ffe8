/*
 * routes_cluster.c - the agents' side of the controller's API
 * (docs/cluster.md): POST /v1/cluster/join (no API token: the join token is
 * in the body), and the heartbeat and pushed events, each authenticated by
 * X-Yun-Host and the host's bearer credential (not the API token). Every
 * fact an agent sends is checked before anything changes. And an image's
 * files served to an agent that fetches them (GET
 * /v1/cluster/images/{name}/{file}, the same credential): sent from the
 * file by sendfile as the connection drains, never read into memory.
 */
#include "api/api.h"
#include "ctl/hosts.h"
#include "ctl/images.h"
#include "ctl/images_fetch.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void cluster_join(struct route_ctx *c)
{
    struct ctl *ctl = c->api->ctl;
    struct host_join j;
    struct yerr err = {0};
    char id[37], cred[65];
    if (ctl_host_join_parse(c->body, &j, &err) < 0 || ctl_host_join(ctl, &j, id, cred, &err) < 0) {
        memset(&j, 0, sizeof j);
        reply_error(c->req, &err);
        return;
    }
    memset(j.token, 0, sizeof j.token);
    json_t *ctls = json_array();
    if (ctl->cfg->advertise_url[0])
        json_array_append_new(ctls, json_string(ctl->cfg->advertise_url));
    reply_json(c->req, 200,
               json_pack("{s:s,s:s,s:i,s:i,s:o}", "host_id", id, "credential", cred, "heartbeat_ms",
                         ctl->cfg->heartbeat_ms, "host_dead_after", ctl->cfg->host_dead_after_ms,
                         "controllers", ctls));
    memset(cred, 0, sizeof cred);
}

/* X-Yun-Host and its credential; false after replying 401. */
static bool agent_authorized(struct route_ctx *c, const char **host_id)
{
    struct evkeyvalq *h = hreq_input_headers(c->req);
    const char *id = evhttp_find_header(h, "X-Yun-Host");
    const char *auth = evhttp_find_header(h, "Authorization");
    struct yerr err = {0};
    if (!id || !auth || strncmp(auth, "Bearer ", 7)) {
        reply_errorf(c->req, YE_UNAUTHORIZED, "missing X-Yun-Host or bearer credential");
        return false;
    }
    if (ctl_host_auth(c->api->ctl, id, auth + 7, &err) < 0) {
        reply_error(c->req, &err);
        return false;
    }
    *host_id = id;
    return true;
}

static void cluster_heartbeat(struct route_ctx *c)
{
    const char *id;
    if (!agent_authorized(c, &id))
        return;
    json_t *run = json_object_get(c->body, "run"), *load = json_object_get(c->body, "cpu_load"),
           *mem = json_object_get(c->body, "mem_used");
    if (!json_is_string(run) || json_string_length(run) > 36 || (load && !json_is_number(load)) ||
        (mem && (!json_is_integer(mem) || json_integer_value(mem) < 0))) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT,
                     "heartbeat: run (a string), cpu_load (a number) and mem_used (bytes)");
        return;
    }
    char state[16];
    struct yerr err = {0};
    if (ctl_host_heartbeat(c->api->ctl, id, json_string_value(run),
                           load ? json_number_value(load) : 0,
                           mem ? (uint64_t)json_integer_value(mem) : 0, state, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    reply_json(
        c->req, 200,
        json_pack("{s:s,s:i}", "state", state, "lease_ms", c->api->ctl->cfg->host_dead_after_ms));
}

static void cluster_events(struct route_ctx *c)
{
    const char *id;
    if (!agent_authorized(c, &id))
        return;
    if (!c->body || !json_is_string(json_object_get(c->body, "run")) ||
        !json_is_array(json_object_get(c->body, "events"))) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "events: {\"run\", \"events\": [...]}");
        return;
    }
    struct yerr err = {0};
    json_t *r = ctl_host_events(c->api->ctl, id, c->body, &err);
    if (!r)
        reply_error(c->req, &err);
    else
        reply_json(c->req, 200, r);
}

static void cluster_image_file(struct route_ctx *c)
{
    const char *id;
    if (!agent_authorized(c, &id))
        return;
    struct image_rec m;
    struct yerr err = {0};
    char path[512];
    const char *file = route_param(c, "file");
    if (ctl_image_get(c->api->ctl, route_param(c, "name"), &m, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!file || !ctl_image_serves(&m, file, path)) {
        reply_errorf(c->req, YE_NOT_FOUND, "image '%s' has no file '%.64s'", m.name,
                     file ? file : "");
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        reply_errorf(c->req, YE_CONFLICT, "image '%s': %s cannot be read here", m.name, path);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    /* the buffer owns fd: the bytes go out by sendfile as the socket drains */
    if (!body || (st.st_size > 0 && evbuffer_add_file(body, fd, 0, st.st_size) < 0)) {
        if (body)
            evbuffer_free(body);
        else
            close(fd);
        reply_errorf(c->req, YE_INTERNAL, "cannot send %s", path);
        return;
    }
    if (st.st_size == 0)
        close(fd);
    evhttp_add_header(hreq_output_headers(c->req), "Content-Type", "application/octet-stream");
    hreq_send(c->req, 200, body);
    evbuffer_free(body);
}

const struct route routes_cluster[] = {
    {EVHTTP_REQ_POST, "/v1/cluster/join", cluster_join, ROUTE_BODY | ROUTE_PUBLIC,
     "An agent joins with the join token; answers its host id and credential", NULL},
    {EVHTTP_REQ_POST, "/v1/cluster/heartbeat", cluster_heartbeat, ROUTE_BODY | ROUTE_PUBLIC,
     "An agent's heartbeat (X-Yun-Host and its credential): renews its lease", NULL},
    {EVHTTP_REQ_POST, "/v1/cluster/events", cluster_events, ROUTE_BODY | ROUTE_PUBLIC,
     "An agent's pushed events (X-Yun-Host and its credential), acknowledged by seq", NULL},
    {EVHTTP_REQ_GET, "/v1/cluster/images/{name}/{file}", cluster_image_file, ROUTE_PUBLIC,
     "An image's file for an agent that copies it (X-Yun-Host and its credential)", NULL},
};
const size_t routes_cluster_count = sizeof(routes_cluster) / sizeof(routes_cluster[0]);
