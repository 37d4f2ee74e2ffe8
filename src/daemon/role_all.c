/*
 * role_all.c - yund --role all (the default): the all-in-one. Opens the
 * store (SQLite unless told otherwise), brings up the engine (which
 * re-attaches to surviving QEMUs) with the in-process agent, then the
 * controller's half it shares with role_controller.c (serve.c: this host's
 * own row, recovery and reconcile, the monitor and the API), and runs the
 * loop until SIGTERM/SIGINT. VMs are left running on exit.
 */
#include "daemon/daemon.h"
#include "agent/agent_ksm.h"
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "lib/log.h"

int role_all(const struct yun_config *cfg)
{
    struct daemon_serve d;
    int rc = daemon_serve_open(&d, cfg);
    if (rc != 0) {
        daemon_serve_close(&d);
        return rc < 0 ? 1 : 0;
    }
    char err[512];
    struct engine eng;
    if (engine_init(&eng, d.base, cfg, err, sizeof(err)) < 0) {
        log_err("%s", err);
        daemon_serve_close(&d);
        return 1;
    }
    /* This host's agent: in-process, over the engine. The controller
     * reaches the host only through it. */
    struct agent *agent = agent_local_new(d.base, cfg, &eng);
    /* the machine's KSM, when this yund holds its lock (agent_ksm.h) */
    struct agent_ksm *ksm = agent ? agent_ksm_new(d.base, cfg) : NULL;
    rc = 1;
    if (!agent)
        log_err("out of memory");
    else if (daemon_serve_up(&d, agent, &eng) == 0) {
        daemon_serve_run(&d);
        rc = 0;
    }
    daemon_serve_down(&d);
    agent_ksm_free(ksm);
    engine_shutdown(&eng);
    agent_free(agent);
    if (rc == 0)
        log_info("yund stopped");
    daemon_serve_close(&d);
    return rc;
}
