/*
 * agent_report.h - an agent host's own samples for its controller: every
 * sample interval the agent role asks its in-process agent for host.sample
 * (the host and every VM with a QEMU that this host's engine runs) and
 * raises the reply as a "host.sample" event (sample_push_encode: the reply
 * plus "at", when it was read), which the pusher (agent_push.c) sends to
 * the controller like any other event. Nothing is sampled before the
 * first join (no pusher), and a sample is skipped while the pusher has a
 * backlog (a controller out of reach gets the latest figures later, not a
 * queue of old ones).
 */
#ifndef YUN_AGENT_REPORT_H
#define YUN_AGENT_REPORT_H

#include <stdint.h>

struct event_base;
struct agent;
struct agent_push;
struct engine;
struct agent_report;

/* interval_s: the monitor's sample_interval_s (1.. ). NULL if out of memory. */
struct agent_report *agent_report_new(struct event_base *base, struct agent *local,
                                      struct engine *eng, int interval_s);
/* The pusher the samples go through (NULL: none yet, nothing sampled). */
void agent_report_set_push(struct agent_report *r, struct agent_push *p);
void agent_report_free(struct agent_report *r);
/* For tests and status: samples raised, and skipped for a backlog. */
uint64_t agent_report_sent(const struct agent_report *r);
uint64_t agent_report_skipped(const struct agent_report *r);

#endif
