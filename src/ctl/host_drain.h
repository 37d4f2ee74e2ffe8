/*
 * host_drain.h - emptying a host before its maintenance: the host.drain
 * task (host_drain.c) puts the host in maintenance, live-migrates every
 * running VM off it (up to N at once, each a vm.migrate of its own) and
 * leaves it in maintenance when all moved, or lists the VMs that could not
 * move with their reasons and sets the host back up.
 */
#ifndef YUN_CTL_HOST_DRAIN_H
#define YUN_CTL_HOST_DRAIN_H

#include <stdbool.h>

#include "lib/yerr.h"

struct ctl;
struct task_rec;

#define DRAIN_MAX_PARALLEL 16

/* Starts draining host `name` (id or name) with at most `parallel` moves at
 * once (1..DRAIN_MAX_PARALLEL) and `strategy` ("" = the cluster's; else a
 * placement policy name) for the targets. Refused before anything changes:
 * an unknown host 404, a host that is down or already draining 409, bad
 * numbers 400. 0 with the task begun (task_out, may be NULL); -1 with err. */
int ctl_host_drain(struct ctl *c, const char *name, int parallel, const char *strategy,
                   struct task_rec *task_out, struct yerr *err);
/* Is strategy a name ctl_host_drain takes ("" included)? */
bool ctl_drain_strategy_valid(const char *strategy);
/* The task kind's recover function (an interrupted drain fails; the host
 * keeps the state it was left in, maintenance). */
void ctl_host_drain_register(struct ctl *c);
/* The controller stops: the drains' tasks fail ("yund stopped"). */
void ctl_host_drains_shutdown(struct ctl *c);

#endif
