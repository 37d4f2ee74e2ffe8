/*
 * agent_rconsole.c - opening a remote host's VM console (agent_rconsole.h):
 * a non-blocking TCP connect to the host's agent (a numeric address:
 * nothing is resolved), the upgrade request, and its answer read with
 * bounds: a 101 hands the connection over; another status is that
 * error, its JSON "error" taken when it is well-formed.
 */
#include "agent/agent_rconsole.h"
#include "lib/hclient.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define HEAD_MAX         (16u * 1024)
#define ERR_BODY_MAX     (64u * 1024)
#define HANDSHAKE_S      10
#define KEEPALIVE_IDLE_S 10

struct rconsole {
    struct rconsole *next;
    struct rconsole **list;
    struct bufferevent *bev;
    agent_console_fn done;
    void *ctx;
    char host[64];
    char request[1024];
    int status;       /* of the answer, once its head is read */
    size_t body_left; /* of an error answer */
};

static void unlink_rc(struct rconsole *rc)
{
    struct rconsole **pp = rc->list;
    while (*pp && *pp != rc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = rc->next;
}

static void finish(struct rconsole *rc, struct bufferevent *bev, const struct yerr *err)
{
    unlink_rc(rc);
    if (!bev)
        bufferevent_free(rc->bev);
    rc->done(rc->ctx, bev, err);
    free(rc);
}

static void fail(struct rconsole *rc, enum yerr_code code, const char *why)
{
    struct yerr err;
    yerr_set(&err, code, "host %s: console: %s", rc->host, why);
    finish(rc, NULL, &err);
}

/* The error answer: its "error" object when there is one, else the status. */
static void fail_with_answer(struct rconsole *rc, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    json_t *j = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)n), n, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    enum yerr_code c;
    if (!code || yerr_code_parse(code, &c) < 0 || yerr_code_status(c) != rc->status)
        c = rc->status == 404   ? YE_NOT_FOUND
            : rc->status == 409 ? YE_CONFLICT
            : rc->status == 400 ? YE_BAD_REQUEST
                                : YE_BAD_GATEWAY;
    char why[600];
    snprintf(why, sizeof why, "%s", msg ? msg : "the agent refused the console");
    if (!msg)
        snprintf(why, sizeof why, "the agent answered %d", rc->status);
    json_decref(j);
    fail(rc, c, why);
}

/* The answer's head: "HTTP/1.x NNN ..." then headers. -1 when malformed. */
static int read_head(struct rconsole *rc, struct evbuffer *in, size_t head_len)
{
    char *head = malloc(head_len + 1);
    if (!head)
        return -1;
    evbuffer_remove(in, head, head_len);
    head[head_len] = 0;
    int st = 0;
    if (sscanf(head, "HTTP/1.%*[01] %3d", &st) != 1 || st < 100 || st > 599) {
        free(head);
        return -1;
    }
    rc->status = st;
    rc->body_left = 0;
    for (char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        unsigned long long len;
        if (!strncasecmp(p + 2, "Content-Length:", 15) && sscanf(p + 17, " %llu", &len) == 1)
            rc->body_left = len > ERR_BODY_MAX ? ERR_BODY_MAX : (size_t)len;
    }
    free(head);
    return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct rconsole *rc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!rc->status) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (end.pos < 0) {
            if (evbuffer_get_length(in) > HEAD_MAX)
                fail(rc, YE_BAD_GATEWAY, "the agent's answer has an oversized head");
            return;
        }
        if (read_head(rc, in, (size_t)end.pos + 4) < 0) {
            fail(rc, YE_BAD_GATEWAY, "the agent's answer is not HTTP");
            return;
        }
        if (rc->status == 101) {
            /* The rest is the console's. */
            bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
            bufferevent_set_timeouts(bev, NULL, NULL);
            finish(rc, bev, NULL);
            return;
        }
    }
    if (evbuffer_get_length(in) >= rc->body_left)
        fail_with_answer(rc, in);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct rconsole *rc = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* A console may be quiet for hours: keepalives find a host that is
         * gone (about 25 s), and the splice ends both sides then. */
        int fd = bufferevent_getfd(bev), on = 1, idle = KEEPALIVE_IDLE_S, intvl = 5, cnt = 3;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
        bufferevent_write(bev, rc->request, strlen(rc->request));
        return;
    }
    if (rc->status && (what & BEV_EVENT_EOF)) {
        fail_with_answer(rc, bufferevent_get_input(bev));
        return;
    }
    fail(rc, what & BEV_EVENT_TIMEOUT ? YE_TIMEOUT : YE_UNAVAILABLE,
         what & BEV_EVENT_TIMEOUT ? "the agent did not answer" : "cannot reach the agent");
}

int rconsole_open(struct rconsole **list, struct event_base *base, const char *agent_url,
                  const char *credential, const char *host_name, const char *vm_id,
                  agent_console_fn done, void *ctx)
{
    char host[64], prefix[8];
    int port;
    struct yerr err;
    if (!vm_id[0] || strlen(vm_id) > 36 || strspn(vm_id, "0123456789abcdef-") != strlen(vm_id))
        return -1;
    if (hclient_parse_url(agent_url, host, sizeof host, &port, prefix, sizeof prefix, &err) < 0)
        return -1;
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    const char *addr = !strcmp(host, "localhost") ? "127.0.0.1" : host;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof *s6;
    } else {
        return -1;
    }
    struct rconsole *rc = calloc(1, sizeof *rc);
    if (!rc)
        return -1;
    int n =
        snprintf(rc->request, sizeof rc->request,
                 "GET /agent/v1/console/%s HTTP/1.1\r\nHost: %s:%d\r\n"
                 "Authorization: Bearer %s\r\nConnection: Upgrade\r\nUpgrade: yun-console\r\n\r\n",
                 vm_id, host, port, credential);
    rc->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (n < 0 || (size_t)n >= sizeof rc->request || !rc->bev) {
        if (rc->bev)
            bufferevent_free(rc->bev);
        free(rc);
        return -1;
    }
    snprintf(rc->host, sizeof rc->host, "%s", host_name);
    rc->done = done;
    rc->ctx = ctx;
    rc->list = list;
    struct timeval tv = {HANDSHAKE_S, 0};
    bufferevent_setcb(rc->bev, on_read, NULL, on_event, rc);
    bufferevent_set_timeouts(rc->bev, &tv, &tv);
    bufferevent_setwatermark(rc->bev, EV_READ, 0, HEAD_MAX + ERR_BODY_MAX + 1);
    bufferevent_enable(rc->bev, EV_READ | EV_WRITE);
    /* A failure here is reported by the event callback, from the loop. */
    if (bufferevent_socket_connect(rc->bev, (struct sockaddr *)&ss, (int)sl) < 0) {
        bufferevent_free(rc->bev);
        free(rc);
        return -1;
    }
    rc->next = *list;
    *list = rc;
    return 0;
}

void rconsole_forget(struct rconsole **list, void *ctx)
{
    struct rconsole *rc = *list, *next;
    for (; rc; rc = next) {
        next = rc->next;
        if (rc->ctx == ctx) {
            unlink_rc(rc);
            bufferevent_free(rc->bev);
            free(rc);
        }
    }
}

void rconsole_fail_all(struct rconsole **list)
{
    while (*list)
        fail(*list, YE_UNAVAILABLE, "the host's agent is gone");
}
