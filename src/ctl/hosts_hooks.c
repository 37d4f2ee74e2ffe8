/*
 * hosts_hooks.c - weak no-op stand-ins for the hooks the VMs' side provides
 * (ctl/hosts.h: a host's agent made, a host down, a host up), and for the
 * remote agent's two entry points (agent/agent_remote.h), so that the
 * registry builds before those land. A real definition anywhere replaces
 * these; delete this file once they all exist.
 */
#include "ctl/hosts.h"
#include "agent/agent.h"

#include <event2/event.h>

__attribute__((weak)) void ctl_vms_host_attached(struct ctl *c, const char *host_id,
                                                 struct agent *a)
{
}

__attribute__((weak)) void ctl_vms_host_down(struct ctl *c, const char *host_id) {}

__attribute__((weak)) void ctl_vms_host_up(struct ctl *c, const char *host_id) {}

__attribute__((weak)) struct agent *agent_remote_new(struct event_base *base, const char *url,
                                                     const char *credential, const char *host_name)
{
    return NULL;
}

__attribute__((weak)) json_t *agent_remote_deliver(struct agent *a, json_t *body, struct yerr *err)
{
    yerr_set(err, YE_NOT_IMPLEMENTED, "pushed events need the remote agent");
    return NULL;
}
