/*
 * hosts_hooks.c - weak no-op stand-ins for the hooks the VMs' side provides
 * (ctl/hosts.h: a host's agent made, a host down, a host up), so that the
 * registry builds before those land. A real definition anywhere replaces
 * these; delete this file once they all exist.
 */
#include "ctl/hosts.h"
#include "agent/agent.h"

__attribute__((weak)) void ctl_vms_host_attached(struct ctl *c, const char *host_id,
                                                 struct agent *a)
{
}

__attribute__((weak)) void ctl_vms_host_down(struct ctl *c, const char *host_id) {}

__attribute__((weak)) void ctl_vms_host_up(struct ctl *c, const char *host_id) {}
