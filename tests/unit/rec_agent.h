/*
 * rec_agent.h - an agent that records the controller's calls and answers
 * none (the test answers through done/ctx when it wants to): for the
 * controller's tests (test_ctl_events.c, test_ctl_hosts.c) that check
 * what the controller asks of a host, not what a host does.
 */
#ifndef YUN_TESTS_REC_AGENT_H
#define YUN_TESTS_REC_AGENT_H

#include <jansson.h>
#include <stdio.h>

#include "agent/agent.h"

struct rec_agent {
    struct agent pub;
    int calls;
    enum agent_verb last_verb;
    json_t *last_args; /* the last call's arguments (owned) */
    agent_reply_fn done;
    void *ctx;
};

static inline uint64_t rec_call(struct agent *a, enum agent_verb v, json_t *args,
                                agent_reply_fn done, agent_progress_fn progress, void *ctx)
{
    struct rec_agent *r = (struct rec_agent *)a;
    r->calls++;
    r->last_verb = v;
    json_decref(r->last_args);
    r->last_args = args;
    r->done = done;
    r->ctx = ctx;
    return (uint64_t)r->calls;
}

static inline int rec_cancel(struct agent *a, uint64_t id)
{
    return -1;
}

static inline void rec_forget(struct agent *a, void *ctx) {}

/* The agent is the test's (a fixture's member): rec_agent_done frees what it holds. */
static inline void rec_free(struct agent *a) {}

static const struct agent_ops rec_ops = {
    .call = rec_call, .cancel = rec_cancel, .forget = rec_forget, .free = rec_free};

static inline void rec_agent_init(struct rec_agent *r, const char *host)
{
    r->pub.ops = &rec_ops;
    snprintf(r->pub.host, sizeof r->pub.host, "%s", host);
}

static inline void rec_agent_done(struct rec_agent *r)
{
    json_decref(r->last_args);
    r->last_args = NULL;
}

#endif
