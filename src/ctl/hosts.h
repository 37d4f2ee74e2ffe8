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

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Every host with an agent that is not down, in a stable order (by name):
 * fn(host_id, agent); fn may change the registry. */
typedef void (*ctl_host_fn)(struct ctl *c, const char *host_id, struct agent *a, void *arg);
void ctl_hosts_each(struct ctl *c, ctl_host_fn fn, void *arg);
/* The same with the down hosts' agents too (whose calls may still answer:
 * ctl_forget must reach them). */
void ctl_hosts_each_agent(struct ctl *c, ctl_host_fn fn, void *arg);

/* ---- the registry (hosts.c; joins hosts_join.c; leases hosts_lease.c) ---- */
/* All-in-one (c->agent set, after its host.facts): its own row (found by
 * agent_url "", made on first start; name host_name, facts kept current),
 * c->local_host set. Controller (c->agent NULL): one entry per row, each
 * with a remote agent; the lease sweep. -1 with err. */
int ctl_hosts_init(struct ctl *c, char *err, size_t errlen);
void ctl_hosts_shutdown(struct ctl *c);
/* The row (by name or id) and how many VM rows name it. */
int ctl_host_get(struct ctl *c, const char *name, struct host_rec *out, int *vms, struct yerr *err);
/* Every row, ordered by name; *out is malloc'd; vms (malloc'd, may be
 * NULL) the VM count of each. */
int ctl_host_list(struct ctl *c, struct host_rec **out, size_t *n, int **vms, struct yerr *err);
/* An operator's maintenance flag: a host in maintenance takes no new VMs;
 * the flag is kept across a lease lapse. out: the row after. */
int ctl_host_maintenance(struct ctl *c, const char *name, bool on, struct host_rec *out,
                         struct yerr *err);
/* Drops the host (its row and its agent); YE_CONFLICT while VM rows name
 * it; the all-in-one's own host cannot be removed. */
int ctl_host_remove(struct ctl *c, const char *name, struct yerr *err);

/* What a joining agent sends (docs/cluster.md), checked by
 * ctl_host_join_parse: pure, no I/O. */
struct host_join {
    char token[256];
    char host_id[37]; /* "" on a first join */
    char name[64];
    char address[64];
    char agent_url[160];
    char run[37];
    int cpus;
    uint64_t memory;
    char accel[8];
    char cpu_model[128];
    char cpu_flags[1024];
    char cpu_models[512]; /* QEMU CPU models it runs ("" from an agent that has none) */
    char labels[512];
    char vms_dir[300];
    char images_dir[300];
};
/* 0, or -1 with YE_INVALID_ARGUMENT naming the field. */
int ctl_host_join_parse(json_t *body, struct host_join *j, struct yerr *err);
/* The join token (constant-time compare; YE_UNAUTHORIZED), then the row:
 * a re-join with a known host_id keeps the id, VMs and maintenance; a name
 * another id holds is YE_CONFLICT. Out: the id and its credential. */
int ctl_host_join(struct ctl *c, const struct host_join *j, char host_id[37], char credential[65],
                  struct yerr *err);
/* An agent's request: X-Yun-Host and its bearer credential (constant
 * time). 0, or -1 with YE_UNAUTHORIZED (unknown host or wrong credential). */
int ctl_host_auth(struct ctl *c, const char *host_id, const char *credential, struct yerr *err);
/* A heartbeat: the lease renewed on the database clock, the usage kept; a
 * host that was down is up again (maintenance kept). Out: its state. */
int ctl_host_heartbeat(struct ctl *c, const char *host_id, const char *run, double cpu_load,
                       uint64_t mem_used, char state[16], struct yerr *err);
/* Pushed events for host_id's remote agent: the reply ({"ack": seq}, new
 * reference), or NULL with err. */
json_t *ctl_host_events(struct ctl *c, const char *host_id, json_t *body, struct yerr *err);
/* The lease sweep now (the timer runs it every so often): every host whose
 * lease lapsed on the database clock is marked down. */
void ctl_hosts_sweep(struct ctl *c);

/* Hooks into the VMs' side (ctl/vms_hosts.c): a host's agent was made (subscribe to its events; -1
 * when it cannot be); that agent is about to be freed (a reconnect, a
 * removal, shutdown: forget it); the host went down; it is back. */
int ctl_vms_host_attached(struct ctl *c, const char *host_id, struct agent *a);
void ctl_vms_host_detached(struct ctl *c, const char *host_id, struct agent *a);
void ctl_vms_host_down(struct ctl *c, const char *host_id);
void ctl_vms_host_up(struct ctl *c, const char *host_id);

#endif
