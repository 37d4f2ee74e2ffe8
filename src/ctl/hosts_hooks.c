/*
 * hosts_hooks.c - a weak no-op stand-in for the hook the VMs' side may
 * provide (ctl/hosts.h): a host's remote agent is about to be freed. A real
 * definition (vms_hosts.c) replaces it; delete this file then.
 */
#include "ctl/hosts.h"
#include "agent/agent.h"

__attribute__((weak)) void ctl_vms_host_detached(struct ctl *c, const char *host_id,
                                                 struct agent *a)
{
}
