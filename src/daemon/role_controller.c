/*
 * role_controller.c - yund --role controller: the API and the state of
 * record (PostgreSQL for several controllers, or SQLite), and the hosts
 * registry: every host is an agent that joined (ctl/hosts.h), reached by
 * a remote agent. No engine, no QEMU, no local agent here.
 */
#include "daemon/daemon.h"
#include "api/api.h"
#include "ctl/hosts.h"
#include "ctl/leader.h"
#include "ctl/tasks_engine.h"
#include "daemon/role_leader.h"
#include "lib/log.h"
#include "monitor/monitor.h"
#include "store/store.h"

#include <event2/event.h>
#include <stdio.h>
#include <unistd.h>

int role_controller(const struct yun_config *cfg)
{
    char err[512], dbpath[512];
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
    /* No agent of its own: the hosts are the table's rows (ctl_hosts_init). */
    if (ctl_init(&ctl, base, st, cfg, NULL, NULL, err, sizeof(err)) < 0) {
        log_err("%s", err);
        ctl_shutdown(&ctl);
        goto out_base;
    }
    if (tasks_attach(&ctl, err, sizeof(err)) < 0) {
        log_err("%s", err);
        ctl_shutdown(&ctl);
        goto out_base;
    }
    tasks_start(&ctl);
    /* Reconcile per host (every host that joined, as it heartbeats). */
    if (ctl_vms_reconcile_init(&ctl) < 0) {
        log_err("out of memory");
        ctl_shutdown(&ctl);
        tasks_detach(&ctl);
        goto out_base;
    }
    ctl_vms_reconcile(&ctl);
    if (monitor_init(&mon, &ctl, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        monitor_shutdown(&mon);
        ctl_vms_reconcile_shutdown(&ctl);
        ctl_shutdown(&ctl);
        tasks_detach(&ctl);
        goto out_base;
    }
    if (!api_up && api_start(&api, base, &ctl, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        api_stop(&api);
        monitor_shutdown(&mon);
        ctl_vms_reconcile_shutdown(&ctl);
        ctl_shutdown(&ctl);
        tasks_detach(&ctl);
        goto out_base;
    }
    api.mon = &mon;
    daemon_leader_ready(&api, &ctl, ld, cfg);
    struct event *sigs[3];
    daemon_signals_add(base, sigs);
    log_info("yund controller ready (state %s, pid %d, api %s)", cfg->state_dir, (int)getpid(),
             cfg->listen_tcp);
    event_base_dispatch(base);
    daemon_drain(base);
    daemon_signals_free(sigs);
    api_stop(&api);
    unlink(cfg->socket_path);
    monitor_shutdown(&mon);
    ctl_vms_reconcile_shutdown(&ctl);
    ctl_shutdown(&ctl);
    tasks_detach(&ctl);
    rc = 0;
    log_info("yund stopped");
out_base:
    leader_stop(ld); /* released: a standby takes over at once */
    event_base_free(base);
out_store:
    store_close(st);
    return rc;
}
