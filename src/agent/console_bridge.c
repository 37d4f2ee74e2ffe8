/*
 * console_bridge.c - an upgraded HTTP request joined to a VM's console
 * stream (console_bridge.h): the header checks, the parked request while
 * the agent opens the stream, the 101 and the splice.
 */
#include "agent/console_bridge.h"
#include "agent/agent.h"
#include "lib/httpd.h"
#include "lib/log.h"
#include "lib/splice.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

struct bridge {
    struct hreq *req;
    struct agent *a;
    console_fail_fn fail;
};

/* The consoles spliced now, for console_bridges_close_all. */
struct live {
    struct live *next, *prev;
    struct splice *sp;
};
static struct live *lives;
static int nbridges;

int console_bridges(void)
{
    return nbridges;
}

void console_bridges_close_all(void)
{
    while (lives)
        splice_end(lives->sp); /* its done unlinks it */
}

bool console_upgrade_asked(struct hreq *req)
{
    return evhttp_find_header(hreq_input_headers(req), "Upgrade") != NULL;
}

int console_upgrade_check(struct hreq *req, struct yerr *err)
{
    struct evkeyvalq *h = hreq_input_headers(req);
    const char *up = evhttp_find_header(h, "Upgrade");
    const char *conn = evhttp_find_header(h, "Connection");
    if (hreq_method(req) != EVHTTP_REQ_GET)
        return yerr_set(err, YE_BAD_REQUEST, "a console is a GET with an upgrade");
    if (!up || !httpd_has_token(up, CONSOLE_PROTOCOL) || !httpd_has_token(conn, "upgrade"))
        return yerr_set(err, YE_BAD_REQUEST,
                        "a console needs \"Connection: Upgrade\" and \"Upgrade: %s\"",
                        CONSOLE_PROTOCOL);
    if (evbuffer_get_length(hreq_body(req)) > 0)
        return yerr_set(err, YE_BAD_REQUEST, "a console upgrade takes no body");
    return 0;
}

static void on_spliced_end(void *arg)
{
    struct live *l = arg;
    if (l->prev)
        l->prev->next = l->next;
    else
        lives = l->next;
    if (l->next)
        l->next->prev = l->prev;
    free(l);
    nbridges--;
}

static void on_client_gone(struct hreq *req, void *arg)
{
    struct bridge *b = arg;
    agent_console_forget(b->a, b);
    free(b);
}

static void on_open(void *ctx, struct bufferevent *bev, const struct yerr *err)
{
    struct bridge *b = ctx;
    struct hreq *req = b->req;
    hreq_set_closecb(req, NULL, NULL);
    if (!bev) {
        b->fail(req, err);
        free(b);
        return;
    }
    console_fail_fn fail = b->fail;
    free(b);
    struct bufferevent *client = hreq_upgrade(req, CONSOLE_PROTOCOL);
    if (!client) {
        struct yerr e;
        yerr_set(&e, YE_INTERNAL, "the connection cannot be taken over");
        bufferevent_free(bev);
        fail(req, &e);
        return;
    }
    struct live *l = calloc(1, sizeof *l);
    l->sp = l ? bev_splice(client, bev, CONSOLE_LIMIT, on_spliced_end, l) : NULL;
    if (!l || !l->sp) {
        if (!l) {
            bufferevent_free(client);
            bufferevent_free(bev);
        }
        free(l);
        log_err("console: out of memory joining a console");
        return;
    }
    l->next = lives;
    if (lives)
        lives->prev = l;
    lives = l;
    nbridges++;
}

int console_bridge(struct hreq *req, struct agent *a, const char *vm_id, console_fail_fn fail,
                   struct yerr *err)
{
    struct bridge *b = calloc(1, sizeof *b);
    if (!b)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    b->req = req;
    b->a = a;
    b->fail = fail;
    hreq_set_closecb(req, on_client_gone, b);
    if (agent_console_open(a, vm_id, on_open, b, err) < 0) {
        hreq_set_closecb(req, NULL, NULL);
        free(b);
        return -1;
    }
    return 0;
}
