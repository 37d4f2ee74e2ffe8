/*
 * role_leader.h - leadership in yund's start-up (role_leader.c): whether
 * this yund must lead the database before it runs its controller, and the
 * API's gate while it stands by. For main.c and the roles' files.
 */
#ifndef YUN_DAEMON_ROLE_LEADER_H
#define YUN_DAEMON_ROLE_LEADER_H

#include <stdbool.h>

#include "lib/config.h"

struct event_base;
struct store;
struct api;
struct ctl;
struct leader;

/* Before the controller (ctl_init) is set up. On SQLite: nothing (*out
 * NULL). On PostgreSQL it stands for leadership: a controller (role
 * controller) first starts the API (*api_started: every route but the
 * standby rows answers 503 not_leader) and waits to be elected for as long
 * as it takes; the all-in-one waits at most lease + 3 s and fails when
 * another yund leads. 0 go on (elected, or no leader needed), 1 stopped by
 * SIGTERM/SIGINT while standing by, -1 error (logged). Whatever it returns,
 * leader_stop(*out) at the end. */
int daemon_leader_begin(struct event_base *base, struct store *st, const struct yun_config *cfg,
                        const char *store_spec, struct api *api, struct ctl *ctl,
                        struct leader **out, bool *api_started);
/* After the controller is up (ctl_init ... api_start): the API serves as
 * the leader (or, with l NULL, alone). */
void daemon_leader_ready(struct api *api, struct ctl *ctl, struct leader *l,
                         const struct yun_config *cfg);

#endif
