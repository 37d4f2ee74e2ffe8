/* test_console_wire.c - the live console across the wire in one process on
 * 127.0.0.1: agent_serve's GET /agent/v1/console/{vm} upgrade over a fake
 * agent whose console is an echo (a bufferevent pair), opened by
 * agent_remote (agent_rconsole.c): bytes both ways through the splice
 * (more than its bounds, so backpressure runs), the end of the console
 * reaching the client, the agent's refusal (409) and a wrong credential
 * (401) as errors, and a GET without the upgrade answered 400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_remote.h"
#include "agent/agent_serve.h"
#include "agent/console_bridge.h"
#include "lib/hclient.h"
#include "wire_world.h"

/* ---- the fake agent: no verbs; its console echoes, "0000" refuses ---- */

struct fake {
    struct agent pub;
    struct event_base *base;
    struct bufferevent *echo; /* the fake's end of the last console */
    struct event *due;
    agent_console_fn done;
    void *ctx;
    struct bufferevent *give;
    bool refuse;
};

static uint64_t fake_call(struct agent *a, enum agent_verb v, json_t *args, agent_reply_fn done,
                          agent_progress_fn progress, void *ctx)
{
    json_decref(args);
    return 0;
}
static int fake_cancel(struct agent *a, uint64_t id)
{
    return -1;
}
static void fake_forget(struct agent *a, void *ctx) {}

static void fake_free(struct agent *a)
{
    struct fake *f = (struct fake *)a;
    if (f->echo)
        bufferevent_free(f->echo);
    if (f->due)
        event_free(f->due);
    free(f);
}

static void echo_read(struct bufferevent *bev, void *arg)
{
    bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}

static void echo_event(struct bufferevent *bev, short what, void *arg)
{
    struct fake *f = arg;
    bufferevent_free(f->echo);
    f->echo = NULL;
}

static void fake_due(evutil_socket_t fd, short w, void *arg)
{
    struct fake *f = arg;
    struct yerr err;
    yerr_set(&err, YE_CONFLICT, "fake: VM has no console");
    f->done(f->ctx, f->give, f->give ? NULL : &err);
    f->give = NULL;
}

static int fake_console_open(struct agent *a, const char *vm_id, agent_console_fn done, void *ctx)
{
    struct fake *f = (struct fake *)a;
    f->done = done;
    f->ctx = ctx;
    f->give = NULL;
    if (strcmp(vm_id, "0000")) {
        struct bufferevent *pair[2];
        assert_int_equal(
            bufferevent_pair_new(f->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair),
            0);
        if (f->echo)
            bufferevent_free(f->echo);
        f->echo = pair[0];
        bufferevent_setcb(f->echo, echo_read, NULL, echo_event, f);
        bufferevent_enable(f->echo, EV_READ | EV_WRITE);
        f->give = pair[1];
    }
    if (!f->due)
        f->due = event_new(f->base, -1, 0, fake_due, f);
    event_active(f->due, EV_TIMEOUT, 0);
    return 0;
}

static const struct agent_ops fake_ops = {.call = fake_call,
                                          .cancel = fake_cancel,
                                          .forget = fake_forget,
                                          .free = fake_free,
                                          .console_open = fake_console_open};

/* ---- the world ---- */

static struct wire_world W;
static struct fake *F; /* the agent behind W's agent API */

static int setup(void **s)
{
    wire_base(&W);
    F = calloc(1, sizeof *F);
    F->pub.ops = &fake_ops;
    F->base = W.base;
    wire_up(&W, &F->pub);
    return 0;
}

static int teardown(void **s)
{
    wire_down(&W, &F->pub);
    return 0;
}

struct got {
    bool done, eof;
    struct bufferevent *bev;
    struct yerr err;
    size_t nread;
    unsigned char sum; /* a checksum of what came back */
};

static void got_open(void *ctx, struct bufferevent *bev, const struct yerr *err)
{
    struct got *g = ctx;
    g->done = true;
    g->bev = bev;
    if (err)
        g->err = *err;
}

static void client_read(struct bufferevent *bev, void *arg)
{
    struct got *g = arg;
    unsigned char buf[65536];
    size_t n;
    while ((n = bufferevent_read(bev, buf, sizeof buf)) > 0) {
        for (size_t i = 0; i < n; i++)
            g->sum = (unsigned char)(g->sum * 31 + buf[i]);
        g->nread += n;
    }
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    ((struct got *)arg)->eof = true;
}

static struct bufferevent *open_console(const char *vm, struct got *g)
{
    struct yerr err;
    memset(g, 0, sizeof *g);
    assert_int_equal(agent_console_open(W.remote, vm, got_open, g, &err), 0);
    assert_false(g->done); /* never from inside the call */
    wire_run_until(&W, &g->done, 5000);
    assert_true(g->done);
    if (g->bev) {
        bufferevent_setcb(g->bev, client_read, NULL, client_event, g);
        bufferevent_enable(g->bev, EV_READ | EV_WRITE);
    }
    return g->bev;
}

static void test_echo_through_the_wire(void **s)
{
    struct got g;
    struct bufferevent *c = open_console("abcd-1", &g);
    assert_non_null(c);
    assert_int_equal(console_bridges(), 1);
    /* 3 MiB, more than the splice's bounds either way */
    size_t total = 3u << 20;
    unsigned char *data = malloc(total), want = 0;
    for (size_t i = 0; i < total; i++) {
        data[i] = (unsigned char)(i * 7 + (i >> 9));
        want = (unsigned char)(want * 31 + data[i]);
    }
    bufferevent_write(c, data, total);
    free(data);
    bool enough = false;
    for (int i = 0; i < 2000 && !enough; i++) {
        event_base_loop(W.base, EVLOOP_ONCE);
        enough = g.nread >= total;
    }
    assert_int_equal(g.nread, total);
    assert_int_equal(g.sum, want);

    /* the console ends on the host (as agent_conhub.c ends a stream): the
     * client sees the end */
    bufferevent_flush(F->echo, EV_WRITE, BEV_FINISHED);
    bufferevent_free(F->echo);
    F->echo = NULL;
    wire_run_until(&W, &g.eof, 5000);
    assert_true(g.eof);
    bufferevent_free(c);
    bool never = false;
    wire_run_until(&W, &never, 100);
    assert_int_equal(console_bridges(), 0);
}

static void test_client_leaves(void **s)
{
    struct got g;
    struct bufferevent *c = open_console("abcd-2", &g);
    assert_non_null(c);
    bufferevent_write(c, "x", 1);
    bool never = false;
    wire_run_until(&W, &never, 100);
    bufferevent_free(c);
    wire_run_until(&W, &never, 200);
    assert_null(F->echo); /* the host's end heard of it */
    assert_int_equal(console_bridges(), 0);
}

static void test_refusals(void **s)
{
    struct got g;
    assert_null(open_console("0000", &g));
    assert_int_equal(g.err.code, YE_CONFLICT);
    assert_non_null(strstr(g.err.message, "fake: VM has no console"));
    assert_non_null(strstr(g.err.message, "h1"));

    struct agent *bad = agent_remote_new(W.base, W.url, "wrong", "h1");
    struct yerr err;
    memset(&g, 0, sizeof g);
    assert_int_equal(agent_console_open(bad, "abcd-3", got_open, &g, &err), 0);
    wire_run_until(&W, &g.done, 5000);
    assert_null(g.bev);
    assert_int_equal(g.err.code, YE_UNAUTHORIZED);
    agent_free(bad);

    /* not a VM id: refused before any connection */
    assert_int_equal(agent_console_open(W.remote, "../x", got_open, &g, &err), -1);

    /* nobody listening: unavailable */
    struct agent *gone = agent_remote_new(W.base, "http://127.0.0.1:1", CRED, "gone");
    memset(&g, 0, sizeof g);
    assert_int_equal(agent_console_open(gone, "abcd-4", got_open, &g, &err), 0);
    wire_run_until(&W, &g.done, 5000);
    assert_null(g.bev);
    assert_int_equal(g.err.code, YE_UNAVAILABLE);
    agent_free(gone);
}

struct hgot {
    bool done;
    int status;
};

static void hgot_cb(void *ctx, int status, json_t *reply, const struct yerr *err)
{
    struct hgot *h = ctx;
    h->done = true;
    h->status = status;
}

static void test_no_upgrade_is_400(void **s)
{
    struct hclient *h = hclient_new(W.base, W.url);
    struct hgot g = {0};
    hclient_request(h, "GET", "/agent/v1/console/abcd-5", NULL, CRED, NULL, 5000, hgot_cb, &g);
    wire_run_until(&W, &g.done, 5000);
    assert_int_equal(g.status, 400);
    memset(&g, 0, sizeof g);
    hclient_request(h, "GET", "/agent/v1/console/abcd-5", NULL, "wrong", "Upgrade: yun-console",
                    5000, hgot_cb, &g);
    wire_run_until(&W, &g.done, 5000);
    assert_int_equal(g.status, 401);
    hclient_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_through_the_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_upgrade_is_400, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
