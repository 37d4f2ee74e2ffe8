/*
 * wire_world.h - what the wire tests (test_wire.c, test_console_wire.c)
 * share: a listening socket on 127.0.0.1, the agent API (agent_serve) over
 * a test's own fake agent on it, reached by a remote agent (the
 * controller's side), and the loop run until a flag is set or for a while.
 */
#ifndef YUN_TESTS_WIRE_WORLD_H
#define YUN_TESTS_WIRE_WORLD_H

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/agent.h"
#include "agent/agent_remote.h"
#include "agent/agent_serve.h"

#define CRED "c0ffee00c0ffee00c0ffee00c0ffee00"

struct wire_world {
    struct event_base *base;
    struct agent_serve *serve;
    struct agent *remote;
    char url[64];
};

/* A non-blocking socket listening on 127.0.0.1, port *port. */
static inline int wire_listen_local(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* w->base made first (the fake wants it); then wire_up serves fake. */
static inline void wire_base(struct wire_world *w)
{
    memset(w, 0, sizeof *w);
    w->base = event_base_new();
    assert_non_null(w->base);
}

/* fake (named "fake") behind the agent API, and the remote agent to it. */
static inline void wire_up(struct wire_world *w, struct agent *fake)
{
    snprintf(fake->host, sizeof fake->host, "fake");
    w->serve = agent_serve_new(w->base, fake, CRED, "h-1", "agentrun1");
    int port;
    assert_int_equal(agent_serve_listen(w->serve, wire_listen_local(&port)), 0);
    snprintf(w->url, sizeof w->url, "http://127.0.0.1:%d", port);
    w->remote = agent_remote_new(w->base, w->url, CRED, "h1");
    assert_non_null(w->remote);
}

static inline void wire_down(struct wire_world *w, struct agent *fake)
{
    agent_free(w->remote);
    agent_serve_free(w->serve);
    agent_free(fake);
    event_base_free(w->base);
}

static inline void wire_nop(evutil_socket_t fd, short what, void *arg) {}

/* The loop until *flag, at most ms (a bound for a test that fails, not a
 * time any test asserts on). */
static inline void wire_run_until(struct wire_world *w, const bool *flag, int ms)
{
    struct event *t = evtimer_new(w->base, wire_nop, NULL);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t, &tv);
    while (!*flag && evtimer_pending(t, NULL))
        event_base_loop(w->base, EVLOOP_ONCE);
    event_free(t);
}

#endif
