/*
 * agent_rconsole.h - the controller's side of a remote host's live
 * console: an upgraded connection (GET /agent/v1/console/{vm}, "Upgrade:
 * yun-console", the host's bearer credential) to that host's agent; once it
 * answers 101 the connection is the console stream. agent_remote.c's
 * console_open and console_forget.
 */
#ifndef YUN_AGENT_RCONSOLE_H
#define YUN_AGENT_RCONSOLE_H

#include "agent/agent.h"

struct event_base;
struct rconsole;

/* Starts the upgrade to agent_url (numeric, "http://ADDR:PORT"); done runs
 * once, later, from the loop. *list holds the opens in flight. -1 when it
 * cannot start (done never runs). */
int rconsole_open(struct rconsole **list, struct event_base *base, const char *agent_url,
                  const char *credential, const char *host_name, const char *vm_id,
                  agent_console_fn done, void *ctx);
/* The opens of ctx are dropped (done never runs). */
void rconsole_forget(struct rconsole **list, void *ctx);
/* Every open ends with YE_UNAVAILABLE (the agent goes away). */
void rconsole_fail_all(struct rconsole **list);

#endif
