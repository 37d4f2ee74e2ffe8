/*
 * test_host_leave.c - a host's remote agent freed with calls in flight
 * (hosts.c, agent_remote_hand_over): the calls' peer is a real TCP listener
 * that takes every connection and never answers. A re-join at another
 * address and a removal answer every pending call YE_UNAVAILABLE, later,
 * from the loop (never inside the freeing); a waiter forgotten meanwhile is
 * not answered; the controller's shutdown drops them (no answer, nothing
 * leaked: ASan's leak check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_remote.h"
#include "ctl/ctl.h"
#include "ctl/hosts_int.h"
#include "lib/config.h"

#define NCALLS 3

/* The silent peer: accepts, keeps the connection, never writes. */
struct silent {
    struct evconnlistener *l;
    int port;
    int fds[64];
    int n;
};

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct silent *s = arg;
    if (s->n < (int)(sizeof s->fds / sizeof s->fds[0]))
        s->fds[s->n++] = fd;
    else
        close(fd);
}

static void silent_start(struct silent *s, struct event_base *base)
{
    memset(s, 0, sizeof *s);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->l = evconnlistener_new_bind(base, on_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                   16, (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(s->l);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(evconnlistener_get_fd(s->l), (struct sockaddr *)&sin, &sl), 0);
    s->port = ntohs(sin.sin_port);
}

static void silent_stop(struct silent *s)
{
    for (int i = 0; i < s->n; i++)
        close(s->fds[i]);
    evconnlistener_free(s->l);
}

struct waiter {
    int answers;
    enum yerr_code code;
    char message[256];
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct waiter *w = ctx;
    w->answers++;
    w->code = err ? err->code : YE_NONE;
    snprintf(w->message, sizeof w->message, "%s", err ? err->message : "");
}

struct fx {
    struct ctl c;
    struct yun_config cfg;
    struct event_base *base;
    struct silent peer;
    struct host_entry *e;
    struct waiter w[NCALLS];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    config_defaults(&f->cfg);
    f->base = event_base_new();
    f->c.base = f->base;
    f->c.cfg = &f->cfg;
    f->c.hosts = calloc(1, sizeof *f->c.hosts);
    snprintf(f->c.hosts->token, sizeof f->c.hosts->token, "0123456789abcdef0123");
    f->c.hosts->token_len = strlen(f->c.hosts->token);
    silent_start(&f->peer, f->base);
    struct host_rec r = {0};
    snprintf(r.id, sizeof r.id, "3e3670c8-74c3-49f4-a1ae-d840423fb65d");
    snprintf(r.name, sizeof r.name, "h1");
    snprintf(r.state, sizeof r.state, "up");
    snprintf(r.agent_url, sizeof r.agent_url, "http://127.0.0.1:%d", f->peer.port);
    f->e = hosts_add(&f->c, &r);
    assert_non_null(f->e);
    hosts_connect(&f->c, f->e);
    assert_non_null(f->e->agent);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ctl_vms_hosts_shutdown(&f->c);
    ctl_host_calls_shutdown(&f->c);
    ctl_hosts_shutdown(&f->c);
    silent_stop(&f->peer);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* NCALLS calls to h1, each on the wire (the peer holds every connection). */
static void calls_in_flight(struct fx *f)
{
    for (int i = 0; i < NCALLS; i++)
        assert_true(ctl_host_call(&f->c, f->e->rec.id, AV_HOST_FACTS, json_object(), on_reply, NULL,
                                  &f->w[i]) != 0);
    while (f->peer.n < NCALLS)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    assert_int_equal(agent_remote_pending(f->e->agent), NCALLS);
    for (int i = 0; i < NCALLS; i++)
        assert_int_equal(f->w[i].answers, 0);
}

/* A few turns of the loop, never waiting: the answers owed run from a
 * zero timer, so the first turn has them. */
static void turns(struct fx *f)
{
    for (int i = 0; i < 8; i++)
        event_base_loop(f->base, EVLOOP_NONBLOCK);
}

static void test_rejoin_elsewhere_answers_pending(void **state)
{
    struct fx *f = *state;
    calls_in_flight(f);
    struct host_rec r = f->e->rec;
    snprintf(r.agent_url, sizeof r.agent_url, "http://127.0.0.1:%d", f->peer.port == 1 ? 2 : 1);
    hosts_update(&f->c, f->e, &r);
    hosts_connect(&f->c, f->e); /* the re-join's path (hosts_join.c) */
    assert_non_null(f->e->agent);
    for (int i = 0; i < NCALLS; i++)
        assert_int_equal(f->w[i].answers, 0); /* never inside the freeing */
    turns(f);
    for (int i = 0; i < NCALLS; i++) {
        assert_int_equal(f->w[i].answers, 1);
        assert_int_equal(f->w[i].code, YE_UNAVAILABLE);
        assert_non_null(strstr(f->w[i].message, "h1"));
    }
    assert_int_equal(agent_remote_pending(f->e->agent), 0);
}

static void test_removal_answers_pending_but_forgotten(void **state)
{
    struct fx *f = *state;
    calls_in_flight(f);
    hosts_drop(&f->c, f->e); /* ctl_host_remove's path */
    f->e = NULL;
    ctl_agents_forget(&f->c, &f->w[1]); /* its owner went meanwhile */
    turns(f);
    assert_int_equal(f->w[0].answers, 1);
    assert_int_equal(f->w[0].code, YE_UNAVAILABLE);
    assert_int_equal(f->w[1].answers, 0);
    assert_int_equal(f->w[2].answers, 1);
    assert_null(f->c.nohosts);
}

static void test_shutdown_drops_pending(void **state)
{
    struct fx *f = *state;
    calls_in_flight(f);
    ctl_vms_hosts_shutdown(&f->c);
    ctl_host_calls_shutdown(&f->c);
    ctl_hosts_shutdown(&f->c); /* the controller's shutdown: no loop turns after */
    assert_null(f->c.nohosts);
    turns(f);
    for (int i = 0; i < NCALLS; i++)
        assert_int_equal(f->w[i].answers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rejoin_elsewhere_answers_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_answers_pending_but_forgotten, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_drops_pending, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
