/*
 * serve.c - what the all-in-one (role_all.c) and the controller
 * (role_controller.c) both run (daemon.h, struct daemon_serve): the store
 * and the loop opened, leadership on PostgreSQL (role_leader.c), then the
 * controller (ctl_init, tasks, reconcile, monitor, API) brought up in order,
 * the loop run until SIGTERM/SIGINT, and everything taken down again in the
 * reverse order, as far as it had come up. The all-in-one's engine and
 * in-process agent stay its own (made between daemon_serve_open and
 * daemon_serve_up, freed after daemon_serve_down).
 */
#include "daemon/daemon.h"
#include "api/api.h"
#include "ctl/leader.h"
#include "ctl/tasks_engine.h"
#include "daemon/role_leader.h"
#include "daemon/sdnotify.h"
#include "lib/job.h"
#include "lib/log.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int daemon_serve_open(struct daemon_serve *d, const struct yun_config *cfg)
{
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    if (cfg->store[0])
        snprintf(d->dbpath, sizeof d->dbpath, "%s", cfg->store);
    else
        snprintf(d->dbpath, sizeof d->dbpath, "%s/yun.db", cfg->state_dir);
    char err[512];
    if (store_open(d->dbpath, &d->st, err, sizeof err) < 0) {
        log_err("%s", err);
        return -1;
    }
    d->base = event_base_new();
    if (!d->base) {
        log_err("event_base_new failed");
        return -1;
    }
    /* On PostgreSQL, lead first (a controller stands by until elected). */
    int lrc =
        daemon_leader_begin(d->base, d->st, cfg, d->dbpath, &d->api, &d->ctl, &d->ld, &d->api_up);
    if (lrc != 0 && d->api_up) {
        api_stop(&d->api);
        d->api_up = false;
    }
    return lrc;
}

int daemon_serve_up(struct daemon_serve *d, struct agent *agent, struct engine *eng)
{
    const struct yun_config *cfg = d->cfg;
    char err[512];
    /* The controller reaches a host only through its agent: the in-process
     * one (all-in-one), else the hosts table's rows (ctl_hosts_init). */
    d->agent = agent;
    d->up = SERVE_CTL;
    if (ctl_init(&d->ctl, d->base, d->st, cfg, agent, eng, err, sizeof err) < 0)
        goto fail;
    /* The task table, every kind registered before they are recovered. */
    if (tasks_attach(&d->ctl, err, sizeof err) < 0)
        goto fail;
    d->up = SERVE_TASKS;
    /* Recover before accepting requests: state must agree with reality
     * first. Tasks an earlier yund left unfinished are rolled back (or
     * finished) before reconcile looks at the rows they owned. */
    tasks_start(&d->ctl);
    if (ctl_vms_reconcile_init(&d->ctl) < 0) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    d->up = SERVE_RECONCILE;
    ctl_vms_reconcile(&d->ctl);
    if (agent)
        ctl_vms_reconcile_settle(&d->ctl, 5000); /* re-attached QEMUs answer over QMP first */
    d->up = SERVE_MONITOR;
    if (monitor_init(&d->mon, &d->ctl, cfg, err, sizeof err) < 0)
        goto fail;
    d->up = SERVE_API;
    if (!d->api_up && api_start(&d->api, d->base, &d->ctl, cfg, err, sizeof err) < 0)
        goto fail;
    d->api.mon = &d->mon;
    daemon_leader_ready(&d->api, &d->ctl, d->ld, cfg);
    return 0;
fail:
    log_err("%s", err);
    return -1;
}

void daemon_serve_run(struct daemon_serve *d)
{
    struct event *sigs[3];
    daemon_signals_add(d->base, sigs);
    if (d->agent)
        log_info("yund ready (state %s, pid %d)", d->cfg->state_dir, (int)getpid());
    else
        log_info("yund controller ready (state %s, pid %d, api %s)", d->cfg->state_dir,
                 (int)getpid(), d->cfg->listen_tcp);
    /* The API socket listens and reconcile has re-attached the QEMUs. */
    sd_notify_ready(d->agent ? "serving" : "controller serving");
    event_base_dispatch(d->base);
    sd_notify_send("STOPPING=1");
    /* Helpers still running (a copy) are ended and their operations rolled
     * back (their tasks fail) before yund goes; bounded to 3 s. */
    daemon_drain(d->base);
    daemon_signals_free(sigs);
    d->ran = true;
}

void daemon_serve_down(struct daemon_serve *d)
{
    if (d->up >= SERVE_API || d->api_up)
        api_stop(&d->api);
    if (d->ran)
        unlink(d->cfg->socket_path);
    if (d->up >= SERVE_MONITOR)
        monitor_shutdown(&d->mon);
    if (d->up >= SERVE_RECONCILE)
        ctl_vms_reconcile_shutdown(&d->ctl);
    if (d->up >= SERVE_CTL)
        ctl_shutdown(&d->ctl);
    if (d->ran && d->agent)
        job_shutdown_all(); /* any left: no callback any more */
    if (d->up >= SERVE_TASKS)
        tasks_detach(&d->ctl);
    d->up = SERVE_NONE;
    d->api_up = false;
}

void daemon_serve_close(struct daemon_serve *d)
{
    leader_stop(d->ld); /* released: a standby takes over at once */
    if (d->base)
        event_base_free(d->base);
    if (d->st)
        store_close(d->st);
}
