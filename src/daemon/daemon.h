/*
 * daemon.h - yund's roles (docs/cluster.md), each a file: role_all.c (the
 * all-in-one: store, engine, in-process agent, API), role_controller.c
 * (store, API, hosts registry; no engine), role_agent.c (engine, agent
 * API, joins a controller; no store). main.c parses flags and settings,
 * takes the state directory's lock and runs one; each returns the exit
 * status.
 */
#ifndef YUN_DAEMON_H
#define YUN_DAEMON_H

#include "lib/config.h"

struct event_base;
struct event;

int role_all(const struct yun_config *cfg);
int role_controller(const struct yun_config *cfg);
int role_agent(const struct yun_config *cfg);

/* SIGTERM/SIGINT end the loop, SIGHUP reopens the log (ev: 3 slots). */
void daemon_signals_add(struct event_base *base, struct event *ev[3]);
void daemon_signals_free(struct event *ev[3]);
/* After the loop: helpers (jobs) ended, at most 3 s, the loop run a few
 * more times for the replies they leave. */
void daemon_drain(struct event_base *base);

#endif
