/*
 * hosts.h - the controller's hosts: which agent runs a host's VMs and what
 * the host offers. In the all-in-one there is one host, this process's own,
 * with the in-process agent; a controller (--role controller) has one entry
 * per agent that joined (ctl/hosts.c keeps them; the rows are the store's
 * `hosts` table), each with a remote agent (agent/agent_remote.h).
 *
 * Every call the controller makes to a host goes to the agent these return:
 * a VM's calls to its row's host (vm_rec.host), a volume's to its host.
 * A row with host "" is the all-in-one's own host (rows made before the
 * cluster schema).
 */
#ifndef YUN_CTL_HOSTS_H
#define YUN_CTL_HOSTS_H

#include <stddef.h>

#include "lib/yerr.h"
#include "store/records.h"

struct ctl;
struct agent;
struct ctl_host;

/* The all-in-one's own host id; "" in a controller, which has none. */
const char *ctl_local_host(const struct ctl *c);
/* The agent of host_id ("" = the local host). NULL with YE_UNAVAILABLE
 * naming the host when it is down or unknown, or has no connection. */
struct agent *ctl_host_agent(struct ctl *c, const char *host_id, struct yerr *err);
/* The agent of the VM's host (ctl_host_agent(c, vm->host)). */
struct agent *ctl_vm_agent(struct ctl *c, const struct vm_rec *vm, struct yerr *err);
/* What host_id offers (cpus, memory, accel, vms_dir, images_dir); NULL when
 * unknown. Valid until the loop runs again. */
const struct ctl_host *ctl_host_facts(struct ctl *c, const char *host_id);
/* The host's name, for messages and the API ("" when host_id is unknown;
 * "" = the local host's). Valid until the loop runs again. */
const char *ctl_host_name(struct ctl *c, const char *host_id);
/* Every host with an agent, in a stable order: fn(host_id, agent). */
typedef void (*ctl_host_fn)(struct ctl *c, const char *host_id, struct agent *a, void *arg);
void ctl_hosts_each(struct ctl *c, ctl_host_fn fn, void *arg);

#endif
