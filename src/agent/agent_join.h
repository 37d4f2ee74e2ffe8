/*
 * agent_join.h - the agent's side of joining a controller (docs/cluster.md):
 * the join token read from its file, POST /v1/cluster/join with this host's
 * facts (and its host id once it has one), STATE/cluster.json (host_id,
 * credential, controllers; 0600, written by an atomic rename), a heartbeat
 * every heartbeat_ms with the host's usage, a re-join when a controller no
 * longer knows the host (401), the next controller URL when one fails, and
 * the leader's URL when a standby answers not_leader. Everything runs on
 * the loop; nothing blocks on the network.
 */
#ifndef YUN_AGENT_JOIN_H
#define YUN_AGENT_JOIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct yun_config;
struct agent_join;

/* facts: the in-process agent's host.facts result (borrowed: cpus, memory,
 * accel, vms_dir, images_dir). Starts joining at once. NULL with err (the
 * token file unreadable or short, no address for controllers to use). */
struct agent_join *agent_join_new(struct event_base *base, const struct yun_config *cfg,
                                  json_t *facts, char *err, size_t errlen);
void agent_join_free(struct agent_join *j);
/* fn runs after every successful join (a first one, a re-join): the host id
 * and credential may be new (the agent API and the pusher take them). */
typedef void (*agent_join_fn)(void *ctx, const char *host_id, const char *credential);
void agent_join_on_joined(struct agent_join *j, agent_join_fn fn, void *ctx);
/* fn runs after every heartbeat the controller answered with a lease:
 * sent_ms is when that heartbeat was sent (monotonic_ms()), lease_ms the
 * lease it granted (the self-fencing keeper, agent_fence.h, takes it). */
typedef void (*agent_renew_fn)(void *ctx, int64_t sent_ms, int64_t lease_ms);
void agent_join_on_renewed(struct agent_join *j, agent_renew_fn fn, void *ctx);
/* The controller URLs known (--join, cluster.json, the leaders followed). */
size_t agent_join_urls(const struct agent_join *j, const char *urls[], size_t max);
/* This run's id (agent_run_id(): a new one every start). */
const char *agent_join_run(const struct agent_join *j);
/* Once joined (or from cluster.json): the host id and credential, else "". */
const char *agent_join_host_id(const struct agent_join *j);
const char *agent_join_credential(const struct agent_join *j);
/* The controller currently used ("" before the first answer). */
const char *agent_join_controller(const struct agent_join *j);
bool agent_join_joined(const struct agent_join *j);

#endif
