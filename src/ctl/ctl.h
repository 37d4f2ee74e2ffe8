/*
 * ctl.h - the controller service: the state of record (VM intent rows,
 * validation, capacity, the event log and its long-pollers, tasks) and the
 * only way the API and the monitor reach a host. The host is reached through
 * the agent seam (agent/agent.h) with plain-JSON verbs; API handlers call
 * ctl_* and nothing below it.
 *
 * Transitional: VM start's side effects still run in src/compute behind
 * `host` (engine_* calls made only from src/ctl); create, stop and delete
 * go through the agent's verbs (vm.prepare, vm.powerdown, vm.quit, vm.end,
 * vm.remove).
 */
#ifndef YUN_CTL_H
#define YUN_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agent.h"
#include "compute/vmstate.h"
#include "lib/config.h"
#include "lib/yerr.h"
#include "store/store.h"

struct event_base;
struct agent;
struct tasks;
struct engine;
/* What the host offers (the agent's host.facts). */
struct ctl_host {
    int cpus;
    uint64_t memory;
    char accel[8];
    char cgroups[8];     /* "v1", "v2" or "none" */
    int swap_acct;       /* enum cg_swap_acct: swap accounted per group (-1: not known) */
    int64_t memlock_max; /* bytes a QEMU's RLIMIT_MEMLOCK can be raised to; -1 any, -2 not known */
    char yund_id[16];
    char vms_dir[300];    /* where the host keeps each VM's directory */
    char images_dir[300]; /* and the image library */
    char cpu_models[512]; /* the QEMU CPU models it runs (agent_cpu_models), ','-separated */
};

/* A new event was recorded (long-polling readers wake on it). */
typedef void (*ctl_event_hook)(void *ctx, const struct event_rec *ev);

struct ctl_call;
struct ctl_vmop;
struct ctl_deadline;
struct ctl_start;
struct ctl_vmrt;
struct ctl_reconcile;
struct ctl_hosts;
struct ctl_hostsub;
struct ctl_nohost;
struct mig;

/* A link measured from one host to another (ctl/links.h). */
#define CTL_LINKS_SEEN 16
struct ctl_link_seen {
    char source[37], target[37];
    double bps;    /* 0: an empty slot */
    int64_t at_ms; /* monotonic, when it was measured */
};

struct ctl {
    struct event_base *base;
    struct store *store;
    const struct yun_config *cfg;
    struct agent *agent;   /* the local agent (all-in-one); only ctl/hosts uses it: every call
                              goes to the VM's or volume's host (ctl/hosts.h) */
    struct tasks *tasks;   /* long operations (ctl/tasks.h); NULL until it is set up */
    struct engine *host;   /* transitional: the local compute engine (see above) */
    struct ctl_host facts; /* the local host's (all-in-one); read through ctl_host_facts */
    char local_host[37];   /* its host id (ctl/hosts.h); "" in a controller */
    ctl_event_hook on_event;
    void *on_event_ctx;
    /* another host's pushed "host.sample" event (the monitor's,
     * monitor_host_sample; NULL: dropped) */
    void (*on_host_sample)(void *ctx, const char *host_id, json_t *ev);
    void *on_host_sample_ctx;
    unsigned events_since_prune;
    struct ctl_call *calls;          /* VM actions waiting for the agent */
    struct ctl_vmop *vmops;          /* creates, stops, deletes waiting for the agent (vms_ops.c) */
    struct ctl_deadline *deadlines;  /* stopping VMs' deadline timers (vms_stop.c) */
    struct ctl_start *starts;        /* VM starts waiting for the agent's vm.launch (vms_start.c) */
    struct ctl_vmrt *vmrts;          /* per-VM event guard and restart timer (vms_events.c) */
    struct ctl_reconcile *reconcile; /* the reconcile pass's timers and calls (vms_reconcile.c) */
    struct ctl_hosts *hosts;         /* the hosts registry (hosts.c) */
    struct event *guard_timer;       /* sums up held-back events when their window ends */
    struct ctl_ha *ha;               /* HA restarts waiting or in flight (ha.c) */
    struct ctl_hostsub *hostsubs;    /* the hosts' agents whose events are taken (vms_hosts.c) */
    struct ctl_nohost *nohosts;      /* replies owed by hosts with no agent (host_calls.c) */
    struct ctl_place *place;         /* placement's cursor and explanations (place.c) */
    struct mig *migs;                /* live migrations driven here (migrate*.c) */
    struct ctl_link_seen links[CTL_LINKS_SEEN]; /* measured links (links.c) */
};

/* Asks the agent for the host's facts (before the API accepts requests)
 * and takes over the engine's event log and start admission. */
int ctl_init(struct ctl *c, struct event_base *base, struct store *st, const struct yun_config *cfg,
             struct agent *agent, struct engine *host, char *err, size_t errlen);
void ctl_shutdown(struct ctl *c);
int ctl_schema_version(struct ctl *c);

/* ---- events (events.c) ---- */
void ctl_event(struct ctl *c, const char *type, const char *object, const char *action,
               const char *result, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Records ev (ids and time filled in) and tells the hook. */
void ctl_event_record(struct ctl *c, struct event_rec *ev);
int ctl_events_list(struct ctl *c, int64_t after, int limit, const char *object,
                    struct event_rec **out, size_t *n, struct yerr *err);
int64_t ctl_events_last_id(struct ctl *c);
/* Drops events beyond the retention settings, at most `batches` bounded
 * DELETEs: every so many records and on every reconcile pass. */
void ctl_events_prune(struct ctl *c, int batches);

/* ---- the hosts' VMs (vms_hosts.c); the registry (ctl/hosts.c) calls these ---- */
/* host_id's agent is there (joined, re-joined, or the local one at
 * ctl_init): its events are taken, each checked to be about a VM on that
 * host (others are logged and ignored). Once per (host, agent). */
int ctl_vms_host_attached(struct ctl *c, const char *host_id, struct agent *a);
/* host_id's lease lapsed: its VMs that had (or may have had) a QEMU become
 * "unknown", with an event each; nothing else changes. */
void ctl_vms_host_down(struct ctl *c, const char *host_id);
/* host_id heartbeats again: a reconcile pass soon settles its VMs. */
void ctl_vms_host_up(struct ctl *c, const char *host_id);
void ctl_vms_hosts_shutdown(struct ctl *c);
/* The host's name for messages: its name, else its id ("(local)" for ""). */
const char *ctl_host_label(struct ctl *c, const char *host_id);
/* The id of the host a user named (its name or id); 404 when none is. */
int ctl_host_resolve(struct ctl *c, const char *name, char id[37], struct yerr *err);
/* Two hosts ids name the same host ("" is the local host). */
bool ctl_host_same(const struct ctl *c, const char *a, const char *b);
/* The agent for disk work with no host of its own (image build, import,
 * removal): the local host's in the all-in-one, else the first host that is
 * up; host_out gets its id. NULL with YE_UNAVAILABLE when none is. */
struct agent *ctl_disk_agent(struct ctl *c, char host_out[37], struct yerr *err);
/* The facts of the VM's host (all zero when unknown: the host is gone). */
const struct ctl_host *ctl_vm_facts(struct ctl *c, const struct vm_rec *vm);

/* ---- calls to a host's agent (host_calls.c) ---- */
/* agent_call on host_id's agent (the VM's host's). A host with no agent
 * (down, unknown) answers like a failed agent: done runs later, from the
 * loop, with YE_UNAVAILABLE naming the host. 0 when the call could not be
 * made (done never runs then). */
uint64_t ctl_host_call(struct ctl *c, const char *host_id, enum agent_verb v, json_t *args,
                       agent_reply_fn done, agent_progress_fn progress, void *ctx);
uint64_t ctl_vm_call(struct ctl *c, const struct vm_rec *vm, enum agent_verb v, json_t *args,
                     agent_reply_fn done, agent_progress_fn progress, void *ctx);
/* agent_cancel on host_id's agent; -1 when it has none or call is unknown. */
int ctl_host_cancel(struct ctl *c, const char *host_id, uint64_t call);
/* ctx goes away: agent_forget(ctx) on every host's agent, and the replies
 * owed by hosts with no agent dropped. */
void ctl_agents_forget(struct ctl *c, void *ctx);
/* The same for calls made through ctl_host_call(c, host_id, ...) alone: only
 * that host's agent is told (a shutdown with thousands of hosts stays
 * linear). */
void ctl_host_forget(struct ctl *c, const char *host_id, void *ctx);
void ctl_host_calls_shutdown(struct ctl *c);
/* done(ctx, NULL, err) from the loop later (forgettable like a call); the
 * answer to a call its freed agent owed. -1 when out of memory. */
int ctl_host_call_owe(struct ctl *c, agent_reply_fn done, void *ctx, const struct yerr *err);
/* The same for host-less disk work (image build, import, removal) on
 * ctl_disk_agent's host: in a controller, the first host that is up and
 * shares the image library at each call (else any host up). */
uint64_t ctl_disk_call(struct ctl *c, enum agent_verb v, json_t *args, agent_reply_fn done,
                       agent_progress_fn progress, void *ctx);
int ctl_disk_cancel(struct ctl *c, uint64_t call);

/* ---- the reconcile pass (vms_reconcile.c) ---- */
/* Its timers (every reconcile_interval) and the agent's "host.reconcile"
 * event; -1 when they cannot be made. */
int ctl_vms_reconcile_init(struct ctl *c);
void ctl_vms_reconcile_shutdown(struct ctl *c);
/* One pass now: its acts go through the agent and settle from the loop. */
void ctl_vms_reconcile(struct ctl *c);
/* Another pass shortly (a start seen half-way, /proc unreadable). */
void ctl_vms_reconcile_soon(struct ctl *c);
/* A pass shortly over host_id's VMs only (its agent asked: "host.reconcile";
 * the host is back up); the event "host NAME reconcile" counts what it asked. */
void ctl_vms_reconcile_host_soon(struct ctl *c, const char *host_id);
/* At start-up, before the API accepts requests: runs the loop until the
 * pass's re-attaches are answered (QEMU's status, an interrupted start's
 * cont), at most timeout_ms, so the first answers show their state. */
void ctl_vms_reconcile_settle(struct ctl *c, int timeout_ms);

/* ---- capacity (capacity.c) ---- */
struct host_usage {
    int cpus_total;
    double cpus_capacity; /* with overcommit */
    int cpus_used;        /* vCPUs of VMs with a running QEMU */
    uint64_t mem_total;
    uint64_t mem_capacity;
    uint64_t mem_used;
    /* with memory_overcommit above 1 the hard bound: the VMs' balloon
     * floors (memory_min, else all their memory) within the usable memory
     * less memory_margin (ctl_capacity_floor_margin) */
    uint64_t mem_floor_used;
    uint64_t mem_floor_capacity;
    int vms_total, vms_running;
};
/* host_id's ("" = the local host); YE_UNAVAILABLE when its facts are not known. */
int ctl_host_usage(struct ctl *c, const char *host_id, struct host_usage *u, struct yerr *err);
/* 0 when vm fits on its host now (with the VMs that have a QEMU there),
 * else -1 with YE_INSUFFICIENT_CAPACITY and the numbers. */
int ctl_capacity_admit(struct ctl *c, const struct vm_rec *vm, struct yerr *err);
/* The floor a VM keeps (bytes): its memory_min, else all its memory. */
uint64_t ctl_vm_floor_bytes(const struct vm_rec *vm);
/* 0 when a VM of this size could ever fit on host_id, else -1 (create
 * refuses it). */
int ctl_capacity_could_fit(struct ctl *c, const char *host_id, int cpus, uint64_t memory_mb,
                           struct yerr *err);

/* ---- VMs (vms.c) ---- */
/* What a user may set when creating a VM. */
struct vm_spec {
    char name[64];
    char image[64];
    int cpus;
    uint64_t memory_mb;
    uint64_t disk_bytes; /* 0 = image size */
    char cmdline[512];
    char machine[32];
    char accel[8];
    enum restart_policy restart;
    unsigned cpu_weight;
    uint64_t cpu_quota_us;
    uint64_t cpu_period_us;
    char cpuset[64];
    char cpu_pin[256];     /* "VCPU:HOSTCPUS[,...]" (compute/cpupin.h); "" = none */
    char emulator_pin[64]; /* QEMU's other threads, cpuset syntax; "" = none */
    /* memory policy (see vm_rec): 0 = memory_mb, -1 = the host's default,
     * 0 = no soft limit */
    uint64_t memory_min_mb;
    int64_t memory_swap_mb;
    uint64_t memory_high_mb;
    bool memory_lock;
    bool no_merge;
    /* QEMU's -cpu (sched/cpu_models.h); "" = the default: the cpu_model
     * setting, "auto" there = the cluster baseline (ctl_cpu_model_for) */
    char cpu_model[64];
    bool start;
    /* cloud-init (NoCloud seed); borrowed pointers, valid during the call */
    char hostname[64];
    const char *user_data;
    const char *ssh_keys; /* one public key per line */
    /* placement (ctl/place.h): a forced host (id or name), a group, the
     * required host labels "k=v,k=v"; "" = none */
    char host[64];
    char group[64];
    char requires[256];
    bool explain;  /* the caller wants the placement's explanation */
    char pool[64]; /* its disk in this pool declared by name (ctl/pools.h); "" = its directory */
    bool ha;       /* restarted elsewhere when its host is lost: needs a shared pool */
};
void vm_spec_defaults(struct vm_spec *s);
/* The spec placement sees for a running VM being moved or restarted
 * elsewhere: its name, size, group and required labels, started. */
void vm_spec_of_running(struct vm_spec *s, const struct vm_rec *vm);

int ctl_vm_get(struct ctl *c, const char *name, struct vm_rec *out, struct yerr *err);
int ctl_vm_list(struct ctl *c, struct vm_rec **out, size_t *n, struct yerr *err);
/* At most limit rows named after `after` (NULL: from the first), by name. */
int ctl_vm_list_page(struct ctl *c, const char *after, size_t limit, struct vm_rec **out, size_t *n,
                     struct yerr *err);
/* The rows placed on host_id (its id: never the all-in-one's "" rows). */
int ctl_vm_list_host(struct ctl *c, const char *host_id, struct vm_rec **out, size_t *n,
                     struct yerr *err);
uint64_t ctl_vm_generation(struct ctl *c); /* changes whenever a VM row may have */
/* done runs once, from the loop, with the row as the operation left it, or
 * the error; the operation goes on when ctx is forgotten meanwhile. */
typedef void (*ctl_vm_fn)(void *ctx, const struct vm_rec *vm, const struct yerr *err);
/* Create (vms_create.c): the row, then the agent's vm.prepare (directory,
 * overlay, seed), then start when spec->start. -1 with err when it cannot
 * begin (done never runs), else 0. */
int ctl_vm_create(struct ctl *c, const struct vm_spec *spec, ctl_vm_fn done, void *ctx,
                  struct yerr *err);
/* Stop and force-stop (vms_stop.c): the row (stopping, its deadline), then
 * the agent's vm.powerdown, or vm.quit (vm.end when QEMU does not answer).
 * -1 with err when it cannot begin (done never runs), else 0. */
int ctl_vm_stop(struct ctl *c, const char *name, bool force, ctl_vm_fn done, void *ctx,
                struct yerr *err);
/* Pause, resume and reboot: one QMP command through the agent (vm.qmp),
 * never waited for on the loop. done runs once, from the loop, with the row
 * as the action left it, or the error. The row changes even when ctx was
 * forgotten meanwhile (the command was sent). */
bool ctl_vm_action_is_qmp(int a);
/* -1 with err when the action cannot begin (done never runs), else 0. */
int ctl_vm_action_qmp(struct ctl *c, const char *name, int a, ctl_vm_fn done, void *ctx,
                      struct yerr *err);
/* Delete (vms_delete.c): the row "deleting", then the agent's vm.end and
 * vm.remove, then the row goes; done gets vm NULL. -1 with err when it
 * cannot begin (done never runs), else 0. */
int ctl_vm_delete(struct ctl *c, const char *name, bool force, ctl_vm_fn done, void *ctx,
                  struct yerr *err);
/* Update (vms_update.c): what `vm update` may change on a VM, stopped or
 * running; a field changes only when its has_ flag is set. */
struct vm_update {
    bool has_weight, has_quota, has_cpuset, has_pin, has_epin, has_min;
    unsigned cpu_weight;
    uint64_t memory_min_mb;               /* has_min: the balloon's floor (1..memory) */
    uint64_t cpu_quota_us, cpu_period_us; /* has_quota: both */
    char cpuset[64];
    char cpu_pin[256];
    char emulator_pin[64];
};
/* Everything is checked first (against the VM's host's CPUs), then the row
 * is written, then a running or paused VM gets its cgroup limits and thread
 * pins set live through the agent (vm.tune; its QEMU keeps running), and
 * the event "updated" says what changed. A live step that fails puts the
 * row's old values back. -1 with err when it cannot begin (done never
 * runs); 1 when it is done already (a stopped VM: *now is the row, done
 * never runs); 0 when done runs later, from the loop. */
int ctl_vm_update(struct ctl *c, const char *name, const struct vm_update *u, ctl_vm_fn done,
                  void *ctx, struct vm_rec *now, struct yerr *err);
/* Start (vms_start.c): the intent row, then the agent's vm.launch, never
 * waited for on the loop; the vm.start task holds the VM meanwhile. done
 * (may be NULL) runs once, from the loop, with the row as the start left
 * it, or the error; the start goes on when ctx is forgotten. -1 with err
 * when it cannot begin (done never runs). CTL_START_RESTART: a restart
 * policy's restart (its events say "restart"). */
#define CTL_START_RESTART 1u
int ctl_vm_start(struct ctl *c, const char *name, unsigned flags, ctl_vm_fn done, void *ctx,
                 struct yerr *err);
/* The VM's directory and the files `vm show` names; "" when unknown. */
struct ctl_vm_paths {
    char dir[512], console_socket[512], console_log[512];
};
void ctl_vm_paths(struct ctl *c, const struct vm_rec *vm, struct ctl_vm_paths *p);
/* Names of its attached volumes (a JSON array, new reference) and how many
 * snapshots it has (-1 unknown). */
json_t *ctl_vm_volume_names(struct ctl *c, const struct vm_rec *vm);
int ctl_vm_snapshot_count(struct ctl *c, const struct vm_rec *vm);
/* The guest's console log: ctl/console.h. */

/* Live facts of a VM (the agent's vm.status: QMP status from the open event
 * connection, cached guest facts; never waits on QEMU or the guest). done
 * runs once, from the loop, with a JSON object (borrowed) or an error. */
typedef void (*ctl_json_fn)(void *ctx, json_t *result, const struct yerr *err);
void ctl_vm_status(struct ctl *c, const struct vm_rec *vm, ctl_json_fn done, void *ctx);
/* The "qmp_status" `vm show` reports from that result: "" when the row says
 * no QEMU, "unreachable" when yund holds no connection to it. */
void ctl_vm_qmp_status(const struct vm_rec *vm, json_t *status, char *out, size_t len);
/* Runs argv (a JSON array of strings, not stolen) in the guest (the agent's
 * guest.exec; timeout_s 0: 60 s); done gets {"exitcode","signal","out_b64",
 * "err_b64","truncated"}. Returns the call, for ctl_cancel. */
uint64_t ctl_vm_exec(struct ctl *c, const struct vm_rec *vm, json_t *argv, int timeout_s,
                     const char *input, ctl_json_fn done, void *ctx);
/* Stops a call made to host_id (the client left); its done still runs
 * unless forgotten. */
void ctl_cancel(struct ctl *c, const char *host_id, uint64_t call);
/* ctx goes away: none of its callbacks runs again. */
void ctl_forget(struct ctl *c, void *ctx);

/* Between the controller's files. */
void ctl_vm_tasks_register(struct ctl *c);
void ctl_calls_forget(struct ctl *c, void *ctx);
void ctl_calls_shutdown(struct ctl *c);
void ctl_vmops_forget(struct ctl *c, void *ctx);
void ctl_vmops_shutdown(struct ctl *c);
void ctl_starts_forget(struct ctl *c, void *ctx);
void ctl_starts_shutdown(struct ctl *c);
/* The agent's "vm.uid" event: a start claimed a new uid for the VM. */
void ctl_vm_uid_seen(struct ctl *c, json_t *ev);
/* The host's events about VMs (vms_events.c): "vm.qmp_event", "vm.exited",
 * "vm.guest", "vm.powerdown"; false for a type that is not one of them. */
bool ctl_vm_host_event(struct ctl *c, const char *type, json_t *ev);
/* The periodic pass: held-back events whose window is over are summed up,
 * the memory of VMs that need none any more dropped. */
void ctl_vm_guards_flush(struct ctl *c);
void ctl_vm_events_shutdown(struct ctl *c);

#endif
