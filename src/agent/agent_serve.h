/*
 * agent_serve.h - the agent API on an agent host (docs/cluster.md,
 * "Controller to agent"): POST /agent/v1/call runs a verb on the local
 * agent, POST /agent/v1/cancel stops one, GET /agent/v1/health says who
 * this is. Every request needs "Authorization: Bearer CREDENTIAL" (401
 * otherwise, and always before the host joined). Calls are idempotent by
 * id: a repeat while the call runs joins it, a repeat after it finished
 * gets the same answer (kept 10 minutes, at most 4096 answers and 64 MiB).
 * A running call's progress becomes the local agent's event "call.progress"
 * {"id", "done", "total"}, which the event pusher (agent_push.h) carries to
 * the controller.
 */
#ifndef YUN_AGENT_SERVE_H
#define YUN_AGENT_SERVE_H

#include "agent/agent.h"

struct event_base;
struct agent_serve;

/* local: this host's agent (borrowed; outlives the server). credential may
 * be NULL or "" until the host joined. host_id and run: for /health. */
struct agent_serve *agent_serve_new(struct event_base *base, struct agent *local,
                                    const char *credential, const char *host_id, const char *run);
/* Serves on an already listening non-blocking socket (taken over). 0/-1. */
int agent_serve_listen(struct agent_serve *s, int fd);
void agent_serve_set_credential(struct agent_serve *s, const char *credential);
void agent_serve_set_host_id(struct agent_serve *s, const char *host_id);
/* Closes the listeners and connections; running calls' answers are dropped
 * (the verbs go on in the local agent). */
void agent_serve_free(struct agent_serve *s);

/* For tests: answers kept (running and finished), and their bytes. */
int agent_serve_entries(const struct agent_serve *s);
size_t agent_serve_bytes(const struct agent_serve *s);

#endif
