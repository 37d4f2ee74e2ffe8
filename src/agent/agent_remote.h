/*
 * agent_remote.h - the controller's side of a remote host: struct agent_ops
 * over HTTP to that host's agent API (POST /agent/v1/call, /cancel; see
 * docs/cluster.md), and the intake of the events the agent pushes (the
 * controller's POST /v1/cluster/events hands each batch to
 * agent_remote_deliver).
 */
#ifndef YUN_AGENT_REMOTE_H
#define YUN_AGENT_REMOTE_H

#include <jansson.h>
#include <stdint.h>

#include "agent/agent.h"
#include "lib/yerr.h"

struct event_base;

/* agent_url: "http://ADDR:PORT" (numeric address); credential: the host's
 * bearer credential; host_name: for messages. NULL when the URL is not
 * usable. */
struct agent *agent_remote_new(struct event_base *base, const char *agent_url,
                               const char *credential, const char *host_name);
/* A new credential for later calls (after a re-join). */
void agent_remote_set_credential(struct agent *a, const char *credential);
/* The call deadline of verb v with args (ms): what the controller waits
 * before answering YE_TIMEOUT. */
int agent_remote_deadline_ms(enum agent_verb v, json_t *args);
/* For tests: every later call's deadline is ms (0: per verb again). */
void agent_remote_set_deadline(struct agent *a, int ms);

/* A pushed batch: events [{"seq", "type", "data"}], numbered per agent run.
 * Every event is checked first (a bad one: -1, YE_INVALID_ARGUMENT, nothing
 * taken); then those not seen yet (seq above the last one taken in this
 * run; a new run starts over) are emitted in order with agent_emit(), and
 * "call.progress" {"id","done","total"} goes to that pending call's progress
 * callback instead. *ack is the highest seq taken in run. */
int agent_remote_deliver(struct agent *a, json_t *events, const char *run, uint64_t *ack,
                         struct yerr *err);

/* This process's run id: 16 hex digits, random, the same for the process's
 * life (calls are "RUN-N"; an agent numbers its events per run). */
const char *agent_run_id(void);

/* Before the agent is freed (a re-join at another address, the host
 * removed): each call still pending is handed to owe (its reply callback
 * and ctx) and dropped here, its HTTP request ended (the verb may go on at
 * the agent). The caller owes each one its answer (ctl answers them from the
 * loop with YE_UNAVAILABLE). Calls not handed over before agent_free() are
 * dropped unanswered (the controller's shutdown: their owners free them).
 * Returns how many were handed over. */
typedef void (*agent_remote_owe_fn)(void *arg, agent_reply_fn done, void *ctx);
int agent_remote_hand_over(struct agent *a, agent_remote_owe_fn owe, void *arg);

/* For tests and status: calls in flight. */
int agent_remote_pending(const struct agent *a);

#endif
