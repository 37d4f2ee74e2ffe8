/*
 * host_calls.c - the controller's calls to a host's agent: the agent of
 * the host a VM or a volume is on (ctl/hosts.h finds it). A host with no
 * agent now (down, unknown, removed) answers like an agent that failed:
 * the reply runs later, from the loop, with YE_UNAVAILABLE naming the host,
 * so every caller's error path is the one it has for any agent error, and
 * the agent's rule (the reply never runs inside the call) still holds. The
 * calls a freed remote agent had pending (hosts.c) are answered the same way.
 */
#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/hosts_int.h"
#include "lib/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A reply owed by a host that has no agent. */
struct ctl_nohost {
    struct ctl_nohost *next;
    struct ctl *c;
    struct event *ev;
    agent_reply_fn done;
    void *ctx;
    struct yerr err;
};

static uint64_t nohost_ids = UINT64_C(1) << 62; /* apart from any agent's ids */

static void nohost_unlink(struct ctl_nohost *n)
{
    for (struct ctl_nohost **pp = &n->c->nohosts; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            return;
        }
}

static void nohost_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ctl_nohost *n = arg;
    nohost_unlink(n);
    event_free(n->ev);
    n->done(n->ctx, NULL, &n->err);
    free(n);
}

int ctl_host_call_owe(struct ctl *c, agent_reply_fn done, void *ctx, const struct yerr *err)
{
    struct ctl_nohost *n = calloc(1, sizeof *n);
    if (!n)
        return -1;
    n->c = c;
    n->done = done;
    n->ctx = ctx;
    n->err = *err;
    n->ev = evtimer_new(c->base, nohost_fire, n);
    if (!n->ev) {
        free(n);
        return -1;
    }
    struct timeval tv = {0, 0};
    evtimer_add(n->ev, &tv);
    n->next = c->nohosts;
    c->nohosts = n;
    return 0;
}

uint64_t ctl_host_call(struct ctl *c, const char *host_id, enum agent_verb v, json_t *args,
                       agent_reply_fn done, agent_progress_fn progress, void *ctx)
{
    struct yerr err = {0};
    struct agent *a = ctl_host_agent(c, host_id, &err);
    if (a)
        return agent_call(a, v, args, done, progress, ctx);
    json_decref(args);
    log_debug("agent call %s: %s", agent_verb_name(v), err.message);
    if (!done)
        return ++nohost_ids;
    if (ctl_host_call_owe(c, done, ctx, &err) < 0)
        return 0;
    return ++nohost_ids;
}

uint64_t ctl_vm_call(struct ctl *c, const struct vm_rec *vm, enum agent_verb v, json_t *args,
                     agent_reply_fn done, agent_progress_fn progress, void *ctx)
{
    return ctl_host_call(c, vm->host, v, args, done, progress, ctx);
}

int ctl_host_cancel(struct ctl *c, const char *host_id, uint64_t call)
{
    struct yerr err = {0};
    struct agent *a = ctl_host_agent(c, host_id, &err);
    if (!call || !a || call > (UINT64_C(1) << 62))
        return -1;
    return agent_cancel(a, call);
}

static void forget_on(struct ctl *c, const char *host_id, struct agent *a, void *arg)
{
    (void)c;
    (void)host_id;
    agent_forget(a, arg);
}

static void nohosts_forget(struct ctl *c, void *ctx)
{
    struct ctl_nohost **pp = &c->nohosts;
    while (*pp) {
        struct ctl_nohost *n = *pp;
        if (n->ctx == ctx) {
            *pp = n->next;
            event_free(n->ev);
            free(n);
        } else {
            pp = &n->next;
        }
    }
}

void ctl_agents_forget(struct ctl *c, void *ctx)
{
    ctl_hosts_each_agent(c, forget_on, ctx); /* down hosts' calls may still answer */
    nohosts_forget(c, ctx);
}

void ctl_host_forget(struct ctl *c, const char *host_id, void *ctx)
{
    struct host_entry *e = c->hosts ? hosts_find(c, host_id) : NULL;
    struct agent *a = c->hosts ? (e ? e->agent : NULL) : c->agent;
    if (a)
        agent_forget(a, ctx); /* down or not: its calls may still answer */
    nohosts_forget(c, ctx);
}

void ctl_host_calls_shutdown(struct ctl *c)
{
    while (c->nohosts) {
        struct ctl_nohost *n = c->nohosts;
        c->nohosts = n->next;
        event_free(n->ev);
        free(n);
    }
}

/* ---- host-less disk work (images): the local host, else the first up ---- */

uint64_t ctl_disk_call(struct ctl *c, enum agent_verb v, json_t *args, agent_reply_fn done,
                       agent_progress_fn progress, void *ctx)
{
    char host[37] = "";
    struct yerr err = {0};
    ctl_disk_agent(c, host, &err);
    return ctl_host_call(c, host, v, args, done, progress, ctx);
}

int ctl_disk_cancel(struct ctl *c, uint64_t call)
{
    char host[37] = "";
    struct yerr err = {0};
    if (!ctl_disk_agent(c, host, &err))
        return -1;
    return ctl_host_cancel(c, host, call);
}
