/*
 * agent_push.h - an agent host's events to its controller (docs/cluster.md,
 * POST /v1/cluster/events): every event of the local agent is numbered (seq
 * per agent run, agent_run_id()), queued (at most AGENT_PUSH_QUEUE_MAX; when
 * full the oldest are dropped, logged, and a "host.reconcile" event is
 * queued so the controller makes a pass), and sent in batches, resent until
 * acked. A failed send backs off and tries the next controller URL; a
 * "503 not_leader" naming the leader ({"error": {..., "leader": URL}}) sends
 * there first.
 */
#ifndef YUN_AGENT_PUSH_H
#define YUN_AGENT_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"

#define AGENT_PUSH_QUEUE_MAX 100000
#define AGENT_PUSH_BATCH_MAX 1000

struct event_base;
struct agent_push;

/* Subscribes to local's events (local outlives the pusher). urls: the
 * controllers ("http://ADDR:PORT"; unusable ones are skipped with a
 * warning). NULL when none is usable. */
struct agent_push *agent_push_new(struct event_base *base, struct agent *local, const char *host_id,
                                  const char *credential, const char *const urls[], size_t n);
void agent_push_set_credential(struct agent_push *p, const char *host_id, const char *credential);
/* Unsubscribes; events not acked yet are dropped. */
void agent_push_free(struct agent_push *p);

/* For tests and status. */
size_t agent_push_queued(const struct agent_push *p);
uint64_t agent_push_acked(const struct agent_push *p);
uint64_t agent_push_dropped(const struct agent_push *p);
/* The URL the next batch goes to. */
const char *agent_push_url(const struct agent_push *p);

#endif
