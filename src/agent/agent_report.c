/*
 * agent_report.c - an agent host samples itself and raises the sample as a
 * "host.sample" event for the pusher (agent_report.h). The controller's
 * monitor takes it as this host's sample (monitor_hosts.c); docs/cluster.md
 * says why the samples ride the event push rather than the heartbeat.
 */
#include "agent/agent_report.h"
#include "agent/agent.h"
#include "agent/agent_push.h"
#include "agent/sample_msg.h"
#include "compute/engine.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A sample is skipped while more events than this wait for the controller. */
#define REPORT_BACKLOG_MAX 64

struct agent_report {
    struct agent *local;
    struct engine *eng;
    struct agent_push *push;
    struct event *timer;
    int interval_s;
    uint64_t call; /* the host.sample in flight (0: none) */
    int64_t at;    /* when it was asked */
    uint64_t sent, skipped;
};

static void on_sample(void *ctx, json_t *result, const struct yerr *err)
{
    struct agent_report *r = ctx;
    r->call = 0;
    if (err) {
        log_warn("agent: sampling this host: %s", err->message);
        return;
    }
    json_t *ev = sample_push_encode(result, r->at);
    if (!ev)
        return;
    agent_emit(r->local, "host.sample", ev); /* the pusher takes a reference */
    json_decref(ev);
    r->sent++;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct agent_report *r = arg;
    if (!r->push || r->call)
        return; /* not joined yet, or the last one is still out */
    if (agent_push_queued(r->push) > REPORT_BACKLOG_MAX) {
        if (r->skipped++ % 60 == 0)
            log_info("agent: %zu events wait for the controller: no sample this time",
                     agent_push_queued(r->push));
        return;
    }
    size_t n = 0;
    for (struct vm_rt *rt = r->eng->rts; rt; rt = rt->next)
        n += rt->pid > 0;
    struct sample_target *t = calloc(n ? n : 1, sizeof *t);
    if (!t)
        return;
    size_t k = 0;
    for (struct vm_rt *rt = r->eng->rts; rt && k < n && k < SAMPLE_MAX_VMS; rt = rt->next)
        if (rt->pid > 0) {
            memcpy(t[k].vm, rt->id, sizeof t[k].vm);
            t[k++].pid = rt->pid;
        }
    /* answered by half the interval (at most the default), as the
     * controller's own sampling does */
    int deadline = r->interval_s * 500;
    if (deadline > SAMPLE_DEADLINE_MS || deadline < 1)
        deadline = SAMPLE_DEADLINE_MS;
    json_t *args = sample_args_encode(t, k, deadline);
    free(t);
    r->at = now_ms();
    r->call = agent_call(r->local, AV_HOST_SAMPLE, args, on_sample, NULL, r);
}

struct agent_report *agent_report_new(struct event_base *base, struct agent *local,
                                      struct engine *eng, int interval_s)
{
    struct agent_report *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->local = local;
    r->eng = eng;
    r->interval_s = interval_s > 0 ? interval_s : 10;
    r->timer = event_new(base, -1, EV_PERSIST, on_tick, r);
    struct timeval tv = {r->interval_s, 0};
    if (!r->timer || event_add(r->timer, &tv) < 0) {
        if (r->timer)
            event_free(r->timer);
        free(r);
        return NULL;
    }
    return r;
}

void agent_report_set_push(struct agent_report *r, struct agent_push *p)
{
    if (r)
        r->push = p;
}

void agent_report_free(struct agent_report *r)
{
    if (!r)
        return;
    event_free(r->timer);
    if (r->call)
        agent_cancel(r->local, r->call);
    agent_forget(r->local, r);
    free(r);
}

uint64_t agent_report_sent(const struct agent_report *r)
{
    return r->sent;
}

uint64_t agent_report_skipped(const struct agent_report *r)
{
    return r->skipped;
}
