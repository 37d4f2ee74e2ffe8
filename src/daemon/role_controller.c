/*
 * role_controller.c - yund --role controller: the API and the state of
 * record (PostgreSQL for several controllers, or SQLite), and the hosts
 * registry: every host is an agent that joined (ctl/hosts.h), reached by
 * a remote agent. No engine, no QEMU, no local agent here; the rest is the
 * controller's half it shares with the all-in-one (serve.c).
 */
#include "daemon/daemon.h"
#include "lib/log.h"

int role_controller(const struct yun_config *cfg)
{
    struct daemon_serve d;
    int rc = daemon_serve_open(&d, cfg);
    if (rc != 0) {
        daemon_serve_close(&d);
        return rc < 0 ? 1 : 0;
    }
    /* No agent of its own: the hosts are the table's rows (ctl_hosts_init),
     * reconciled per host as each joins and heartbeats. */
    rc = 1;
    if (daemon_serve_up(&d, NULL, NULL) == 0) {
        daemon_serve_run(&d);
        rc = 0;
    }
    daemon_serve_down(&d);
    if (rc == 0)
        log_info("yund stopped");
    daemon_serve_close(&d);
    return rc;
}
