/*
 * hosts_hooks.c - weak no-op stand-ins for hooks other parts provide: a
 * host's remote agent is about to be freed (ctl/hosts.h, the VMs' side);
 * placement's model must read the hosts again (ctl/place.h). A real
 * definition replaces each; delete them as they land.
 */
#include "ctl/hosts_int.h"
#include "agent/agent.h"

__attribute__((weak)) void ctl_vms_host_detached(struct ctl *c, const char *host_id,
                                                 struct agent *a)
{
}

__attribute__((weak)) void ctl_place_invalidate(struct ctl *c) {}
