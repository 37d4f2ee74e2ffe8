/*
 * daemon.h - yund's roles (docs/cluster.md), each a file: role_all.c (the
 * all-in-one: store, engine, in-process agent, API), role_controller.c
 * (store, API, hosts registry; no engine), role_agent.c (engine, agent
 * API, joins a controller; no store). main.c parses flags and settings,
 * takes the state directory's lock and runs one; each returns the exit
 * status. serve.c is the controller's half the first two share.
 */
#ifndef YUN_DAEMON_H
#define YUN_DAEMON_H

#include <stdbool.h>

#include "api/api.h"
#include "ctl/ctl.h"
#include "lib/config.h"
#include "monitor/monitor.h"

struct event_base;
struct event;
struct engine;
struct leader;
struct store;

int role_all(const struct yun_config *cfg);
int role_controller(const struct yun_config *cfg);
int role_agent(const struct yun_config *cfg);

/* SIGTERM/SIGINT end the loop, SIGHUP reopens the log (ev: 3 slots). */
void daemon_signals_add(struct event_base *base, struct event *ev[3]);
void daemon_signals_free(struct event *ev[3]);
/* After the loop: helpers (jobs) ended, at most 3 s, the loop run a few
 * more times for the replies they leave. */
void daemon_drain(struct event_base *base);

/* The controller's half, shared by the all-in-one and the controller
 * (serve.c): how far it came up, so it goes down as far. */
enum serve_stage { SERVE_NONE, SERVE_CTL, SERVE_TASKS, SERVE_RECONCILE, SERVE_MONITOR, SERVE_API };
struct daemon_serve {
    const struct yun_config *cfg;
    char dbpath[512];
    struct store *st;
    struct event_base *base;
    struct leader *ld;
    bool api_up;         /* the API serves already (a controller that stood by) */
    struct agent *agent; /* the in-process one (all-in-one), or NULL */
    struct ctl ctl;
    struct api api;
    struct monitor mon;
    enum serve_stage up;
    bool ran; /* the loop ran: the API socket is unlinked, helpers ended */
};
/* The store, the loop and leadership (daemon_leader_begin): 0 go on, 1
 * stopped while standing by, -1 error (logged). daemon_serve_close after,
 * whatever it returns. */
int daemon_serve_open(struct daemon_serve *d, const struct yun_config *cfg);
/* ctl_init (agent and eng: the all-in-one's, or NULL), tasks, reconcile
 * (and, with an agent, its settling), monitor, API, leader ready. -1 when
 * one of them fails (logged); daemon_serve_down either way. */
int daemon_serve_up(struct daemon_serve *d, struct agent *agent, struct engine *eng);
/* Signals, "ready" in the log, the loop until SIGTERM/SIGINT, the drain. */
void daemon_serve_run(struct daemon_serve *d);
/* What daemon_serve_up brought up, taken down in the reverse order. */
void daemon_serve_down(struct daemon_serve *d);
/* leader_stop, the loop and the store freed. */
void daemon_serve_close(struct daemon_serve *d);

#endif
