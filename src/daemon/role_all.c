/*
 * role_all.c - yund --role all (the default): the all-in-one. Opens the
 * store (SQLite unless told otherwise), brings up the engine (which
 * re-attaches to surviving QEMUs) with the in-process agent, the
 * controller with this host's own row, recovery and reconcile, the
 * monitor and the API, and runs the loop until SIGTERM/SIGINT. VMs are
 * left running on exit.
 */
#include "daemon/daemon.h"
#include "daemon/role_leader.h"
#include "ctl/leader.h"
#include "agent/agent_local.h"
#include "api/api.h"
#include "compute/engine.h"
#include "ctl/leader.h"
#include "ctl/tasks_engine.h"
#include "daemon/role_leader.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/util.h"
#include "monitor/monitor.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

int role_all(const struct yun_config *cfg)
{
    char err[512];
    char dbpath[512];
    if (cfg->store[0])
        snprintf(dbpath, sizeof(dbpath), "%s", cfg->store);
    else
        snprintf(dbpath, sizeof(dbpath), "%s/yun.db", cfg->state_dir);
    struct store *st;
    struct leader *ld = NULL;
    if (store_open(dbpath, &st, err, sizeof(err)) < 0) {
        log_err("%s", err);
        return 1;
    }
    struct event_base *base = event_base_new();
    struct engine eng;
    struct ctl ctl;
    struct api api;
    struct monitor mon;
    int rc = 1;
    if (!base) {
        log_err("event_base_new failed");
        goto out_store;
    }
    /* On PostgreSQL, lead first (a controller stands by until elected). */
    bool api_up = false;
    int lrc = daemon_leader_begin(base, st, cfg, dbpath, &api, &ctl, &ld, &api_up);
    if (lrc != 0) {
        if (api_up)
            api_stop(&api);
        rc = lrc < 0 ? 1 : 0;
        goto out_base;
    }
    if (engine_init(&eng, base, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        goto out_base;
    }
    /* This host's agent: in-process, over the engine. */
    struct agent *agent = agent_local_new(base, cfg, &eng);
    if (!agent) {
        log_err("out of memory");
        engine_shutdown(&eng);
        agent_free(agent);
        goto out_base;
    }
    /* The controller reaches the host only through its agent (in-process,
     * over the engine). */
    if (ctl_init(&ctl, base, st, cfg, agent, &eng, err, sizeof(err)) < 0) {
        log_err("%s", err);
        engine_shutdown(&eng);
        agent_free(agent);
        goto out_base;
    }
    /* The task table, every kind registered before they are recovered. */
    if (tasks_attach(&ctl, err, sizeof(err)) < 0) {
        log_err("%s", err);
        ctl_shutdown(&ctl);
        engine_shutdown(&eng);
        agent_free(agent);
        goto out_base;
    }
    /* Recover before accepting requests: state must agree with reality
     * first. Tasks an earlier yund left unfinished are rolled back (or
     * finished) before reconcile looks at the rows they owned. */
    tasks_start(&ctl);
    if (ctl_vms_reconcile_init(&ctl) < 0) {
        log_err("out of memory");
        ctl_shutdown(&ctl);
        tasks_detach(&ctl);
        engine_shutdown(&eng);
        agent_free(agent);
        goto out_base;
    }
    ctl_vms_reconcile(&ctl);
    ctl_vms_reconcile_settle(&ctl, 5000); /* re-attached QEMUs answer over QMP first */
    if (monitor_init(&mon, &ctl, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        monitor_shutdown(&mon);
        ctl_vms_reconcile_shutdown(&ctl);
        ctl_shutdown(&ctl);
        tasks_detach(&ctl);
        engine_shutdown(&eng);
        agent_free(agent);
        goto out_base;
    }
    if (!api_up && api_start(&api, base, &ctl, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        api_stop(&api);
        monitor_shutdown(&mon);
        ctl_vms_reconcile_shutdown(&ctl);
        ctl_shutdown(&ctl);
        tasks_detach(&ctl);
        engine_shutdown(&eng);
        agent_free(agent);
        goto out_base;
    }
    api.mon = &mon;
    daemon_leader_ready(&api, &ctl, ld, cfg);
    struct event *sigs[3];
    daemon_signals_add(base, sigs);
    log_info("yund ready (state %s, pid %d)", cfg->state_dir, (int)getpid());
    event_base_dispatch(base);
    /* Helpers still running (a copy) are ended and their operations rolled
     * back (their tasks fail) before yund goes; bounded to 3 s. */
    daemon_drain(base);
    daemon_signals_free(sigs);
    api_stop(&api);
    unlink(cfg->socket_path);
    monitor_shutdown(&mon);
    ctl_vms_reconcile_shutdown(&ctl);
    ctl_shutdown(&ctl);
    job_shutdown_all(); /* any left: no callback any more */
    tasks_detach(&ctl);
    engine_shutdown(&eng);
    agent_free(agent);
    rc = 0;
    log_info("yund stopped");
out_base:
    leader_stop(ld); /* released: a standby takes over at once */
    event_base_free(base);
out_store:
    store_close(st);
    return rc;
}
