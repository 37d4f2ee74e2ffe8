/*
 * role_agent.c - yund --role agent: one host's side of a cluster. The
 * engine and the in-process agent (agent_local) run this host's VMs; the
 * agent joins its controllers and heartbeats them (agent_join.c). No
 * store, no API socket: the controller reaches this host through the
 * agent API on agent_listen (agent_serve.c) and gets its events pushed
 * (agent_push.c). Its own record of the QEMUs it launched
 * (agent_record.c, STATE/agent-vms.json) is read before it serves: the
 * QEMUs still there are watched again at once, the ones gone while it was
 * down are reported to the controller through the pusher (made from
 * cluster.json's credential, before any join answers).
 */
#include "daemon/daemon.h"
#include "daemon/sdnotify.h"
#include "agent/agent_join.h"
#include "agent/agent_ksm.h"
#include "agent/agent_local.h"
#include "agent/agent_push.h"
#include "agent/agent_fence.h"
#include "agent/agent_record.h"
#include "agent/agent_report.h"
#include "agent/agent_remote.h"
#include "agent/agent_serve.h"
#include "compute/engine.h"
#include "lib/httpd.h"
#include "lib/log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct agent_role {
    struct event_base *base;
    struct agent *local;
    struct agent_join *join;
    struct agent_serve *serve;
    struct agent_push *push;
    struct agent_record *record;
    struct agent_report *report; /* this host's samples, pushed (agent_report.h) */
    struct agent_fence *fence;   /* the self-fencing keeper (agent_fence.h) */
};

/* A heartbeat answered: the keeper's lease moves on. */
static void on_renewed(void *ctx, int64_t sent_ms, int64_t lease_ms)
{
    struct agent_role *r = ctx;
    agent_fence_renewed(r->fence, sent_ms, lease_ms);
}

/* The keeper killed an HA VM's QEMU (its thread did; this runs on the loop
 * when it can): the event vm.fenced waits in the pusher's queue until the
 * controller is reached again. Its exit is seen as any exit (vm.exited). */
static void on_fenced(void *ctx, const char *vm_id, pid_t pid, int64_t fenced_at, int64_t lease_end,
                      int killed)
{
    struct agent_role *r = ctx;
    log_warn("fence: vm %s (pid %d) %s at %lld, its host lease ending at %lld", vm_id, (int)pid,
             killed ? "killed" : "already gone", (long long)fenced_at, (long long)lease_end);
    json_t *ev =
        json_pack("{s:s,s:i,s:I,s:I,s:b}", "vm", vm_id, "pid", (int)pid, "fenced_at",
                  (json_int_t)fenced_at, "lease_end", (json_int_t)lease_end, "killed", killed);
    agent_emit(r->local, "vm.fenced", ev); /* borrowed */
    json_decref(ev);
}

/* Joined (again): the agent API and the pusher take the host id and
 * credential; the pusher starts with the first join. */
static void push_start(struct agent_role *r, const char *host_id, const char *credential)
{
    if (r->push) {
        agent_push_set_credential(r->push, host_id, credential);
        return;
    }
    const char *urls[16];
    size_t n = agent_join_urls(r->join, urls, 16);
    r->push = agent_push_new(r->base, r->local, host_id, credential, urls, n);
    if (!r->push)
        log_err("agent: no usable controller URL to push events to");
    agent_report_set_push(r->report, r->push);
}

static void on_joined(void *ctx, const char *host_id, const char *credential)
{
    struct agent_role *r = ctx;
    if (r->serve) { /* else made later with the join's credential */
        agent_serve_set_host_id(r->serve, host_id);
        agent_serve_set_credential(r->serve, credential);
    }
    push_start(r, host_id, credential);
}

/* The QEMUs of the agent's record, before anything is served: the pusher
 * first (from cluster.json, when this host joined before), so what the
 * record finds gone waits for the controller in its queue. */
static int record_recover(struct agent_role *r, const struct yun_config *cfg)
{
    r->record = agent_record_open(cfg->state_dir);
    if (!r->record)
        return -1;
    agent_local_of(r->local)->record = r->record;
    agent_join_on_joined(r->join, on_joined, r);
    const char *cred = agent_join_credential(r->join), *host = agent_join_host_id(r->join);
    if (cred[0] && host[0])
        push_start(r, host, cred);
    size_t n = agent_record_count(r->record);
    if (n) {
        int up = agent_record_recover(r->record, r->base, r->local);
        log_info("agent record: %d of %zu QEMUs attached again", up, n);
    }
    return 0;
}

struct facts_wait {
    bool done;
    json_t *facts;
    struct yerr err;
};

static void on_facts(void *ctx, json_t *r, const struct yerr *err)
{
    struct facts_wait *w = ctx;
    w->done = true;
    if (err)
        w->err = *err;
    else
        w->facts = json_incref(r);
}

/* The host's facts from the in-process agent, the loop run until they are
 * in (before anything else is served). */
static json_t *host_facts(struct event_base *base, struct agent *a, char *err, size_t errlen)
{
    struct facts_wait w = {0};
    if (!agent_call(a, AV_HOST_FACTS, NULL, on_facts, NULL, &w)) {
        snprintf(err, errlen, "agent: cannot ask for the host's facts");
        return NULL;
    }
    while (!w.done && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    if (!w.done || w.err.code) {
        agent_forget(a, &w);
        snprintf(err, errlen, "%s", w.done ? w.err.message : "agent: no answer to host.facts");
        return NULL;
    }
    return w.facts;
}

int role_agent(const struct yun_config *cfg)
{
    char err[512];
    struct event_base *base = event_base_new();
    if (!base) {
        log_err("event_base_new failed");
        return 1;
    }
    int rc = 1;
    struct engine eng;
    if (engine_init(&eng, base, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        event_base_free(base);
        return 1;
    }
    struct agent *agent = agent_local_new(base, cfg, &eng);
    /* the machine's KSM, when this yund holds its lock (agent_ksm.h) */
    struct agent_ksm *ksm = agent ? agent_ksm_new(base, cfg) : NULL;
    struct agent_role r = {.base = base, .local = agent};
    json_t *facts = agent ? host_facts(base, agent, err, sizeof err) : NULL;
    if (!agent)
        snprintf(err, sizeof err, "out of memory");
    r.join = facts ? agent_join_new(base, cfg, facts, err, sizeof err) : NULL;
    json_decref(facts);
    if (r.join) {
        /* before anything launches or is attached again */
        r.fence = agent_fence_new(base, cfg->fence_margin_ms, on_fenced, &r);
        if (!r.fence) {
            snprintf(err, sizeof err, "agent: cannot start the fence keeper");
            agent_join_free(r.join);
            r.join = NULL;
        } else {
            agent_local_of(agent)->fence = r.fence;
            agent_join_on_renewed(r.join, on_renewed, &r);
        }
    }
    /* this host's samples, pushed once the pusher exists (push_start) */
    if (r.join) {
        r.report = agent_report_new(base, agent, &eng, cfg->sample_interval_s);
        if (!r.report)
            log_warn("agent: cannot set up this host's sampling: the controller gets no samples");
    }
    if (r.join && record_recover(&r, cfg) < 0) {
        snprintf(err, sizeof err, "agent: cannot open its record of QEMUs");
        agent_join_free(r.join);
        r.join = NULL;
    }
    int fd =
        r.join ? httpd_listen_tcp("agent_listen", cfg->agent_listen, true, err, sizeof err) : -1;
    if (fd >= 0) {
        /* until the join: the credential of cluster.json, or none (all refused) */
        r.serve = agent_serve_new(base, agent, agent_join_credential(r.join),
                                  agent_join_host_id(r.join), agent_run_id());
        if (!r.serve || agent_serve_listen(r.serve, fd) < 0) {
            snprintf(err, sizeof err, "agent: cannot serve on %s", cfg->agent_listen);
            if (!r.serve)
                close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        log_err("%s", err);
        goto out;
    }
    log_info("agent API on %s", cfg->agent_listen);
    struct event *sigs[3];
    daemon_signals_add(base, sigs);
    log_info("yund agent %s ready (state %s, pid %d, joining %s)", cfg->host_name, cfg->state_dir,
             (int)getpid(), cfg->join_urls);
    sd_notify_ready("agent ready");
    event_base_dispatch(base);
    sd_notify_send("STOPPING=1");
    daemon_drain(base);
    daemon_signals_free(sigs);
    rc = 0;
    log_info("yund stopped");
out:
    agent_ksm_free(ksm);
    agent_report_free(r.report);
    agent_push_free(r.push);
    agent_join_free(r.join);
    agent_serve_free(r.serve);
    if (agent) /* the QEMUs outlive this run: their entries stay */
        agent_local_of(agent)->record = NULL;
    agent_record_free(r.record);
    if (agent)
        agent_local_of(agent)->fence = NULL;
    agent_fence_free(r.fence);
    engine_shutdown(&eng);
    agent_free(agent);
    event_base_free(base);
    return rc;
}
