/*
 * engine.h - the host side of one host's VMs, under the agent
 * (src/agent): each VM's runtime entry (its QEMU's pid, the QMP event
 * connection, the guest agent client), the host's facts (CPUs, memory,
 * accelerator, cgroup layout, directories), the removal of exited VMs'
 * cgroups, and the host events it raises ("vm.qmp_event", "vm.exited",
 * "vm.guest", "vm.powerdown", "host.reconcile") through the agent's notify
 * hook. It holds no store: the state of record is the controller's
 * (src/ctl), which hears of the host only through agent replies and events.
 */
#ifndef YUN_ENGINE_H
#define YUN_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "compute/cgroup.h"
#include "compute/vm_guard.h"
#include "compute/vmstate.h"
#include "lib/config.h"
#include "lib/yerr.h"
#include "store/records.h"

struct event_base;
struct event;
struct qmp_watch;
struct guest;

/* Per-VM things that live only in the host's memory: the QMP event
 * connection and timers. Everything durable is the controller's row. */
struct vm_rt {
    struct vm_rt *next;
    struct engine *eng;
    char id[37];
    char name[64];
    pid_t pid;
    struct qmp_watch *watch;
    uint32_t uid; /* the uid its QEMU runs as (0: not confined), to tell its processes */
    struct event *exit_timer; /* waits for the QEMU pid to disappear after EOF */
    bool shutdown_seen;       /* the guest shut itself down (clean exit) */
    bool agent_open;          /* the guest agent has its port open */
    struct guest *guest;      /* agent client and guest facts (guest.c), while agent_open */
    char qmp_status[24];      /* QEMU's last known run state (query-status): vm.status reads it */
    /* A start in progress (agent_launch.c): reconcile leaves the VM alone,
     * and EOF on the watch calls launch_lost(launch) instead of the exit. */
    void *launch;
    void (*launch_lost)(void *launch);
    void (*launch_abandon)(void *launch); /* the entry is dropped with the start running */
    bool reattaching;                     /* vm.attach's query-status is on the way */
    bool reattach_fresh;                  /* that re-attach found the QEMU unwatched */
};

/* The agent's (agent_local.c): the engine raises a host event (type such
 * as "vm.exited", ev a JSON object, stolen) and the agent hands it on. */
typedef void (*engine_notify_hook)(void *ctx, const char *type, json_t *ev);
/* The agent's: a block job of a running VM ended (BLOCK_JOB_COMPLETED or
 * _CANCELLED, QEMU's data). The controller's: the reconcile pass's turn
 * for the VMs' snapshot rows. */
typedef void (*engine_block_job_hook)(void *ctx, const char *vm_id, const char *event,
                                      json_t *data);

struct engine {
    struct event_base *base;
    const struct yun_config *cfg;
    struct cg_layout cg;
    int host_cpus;
    uint64_t host_memory;
    char accel[8]; /* what "auto" resolved to on this host */
    /* the CPU models its QEMU runs with that accelerator, ','-separated
     * (compute/cpu_probe.h; "" when the probe failed) */
    char cpu_models[4096];
    char yund_id[16]; /* random, kept in DIR/yund.id: names this yund's cgroup parent */
    char vms_dir[300];
    char images_dir[300];
    struct vm_rt *rts;
    struct engine_cgrm *cg_removals; /* exited VMs' cgroups being removed (engine.c) */
    engine_notify_hook notify;       /* host events to the agent's subscribers */
    void *notify_ctx;
    engine_block_job_hook on_block_job;
    void *on_block_job_ctx;
    struct event *sigchld;
};

int engine_init(struct engine *e, struct event_base *base, const struct yun_config *cfg, char *err,
                size_t errlen);
void engine_shutdown(struct engine *e); /* frees runtime; leaves every QEMU running */
/* Removes a VM's cgroups (its QEMU exited) on a timer while busy, never
 * waiting on the loop (cgroup_remove.c); engine_cgroup_keep stops a pending
 * removal of that group: a start (vm.launch) or vm.remove that follows
 * takes the group over, so neither races the removal. */
void engine_cgroup_remove(struct engine *e, const char *group);
void engine_cgroup_keep(struct engine *e, const char *group);

/* Raises a host event (ev stolen) to the agent's subscribers, the
 * controller among them; without a hook it is dropped. */
void engine_notify(struct engine *e, const char *type, json_t *ev);

/* VMs */
/* Is the VM's guest agent up? Fills the agent socket path when it is. */
bool engine_vm_agent(struct engine *e, const struct vm_rec *vm, char *sock, size_t len);
/* Path of a VM's directory / a file in it. */
/* Where vm's disk chain lies: its pool's directory for it (vm->disk_dir,
 * POOL/vms/ID) when it has one, else the VM's directory; file NULL is the
 * directory itself. */
int engine_vm_disk_path(struct engine *e, const struct vm_rec *vm, const char *file, char *buf,
                        size_t len);
int engine_vm_path(struct engine *e, const struct vm_rec *vm, const char *file, char *buf,
                   size_t len);

/* A VM's cgroup, "vm-<id>", under this yund's parent "yun/y-<yund_id>". */
void engine_vm_cgroup(const struct vm_rec *vm, char out[48]);

/* The cgroup limits that enforce a VM's CPU and memory policy. */
void engine_vm_limits(const struct vm_rec *vm, struct cg_limits *l);

/* Images. Build returns 0 with *out when the image is ready, 1 when a
 * background build is running (ask again), -1 on error. */
int engine_image_build(struct engine *e, const char *kind, struct image_rec *out, struct yerr *err);
/* 0 when memory_mb is at least what the image needs, else -1 with a 400. */
int engine_image_memory_check(const struct image_rec *img, uint64_t memory_mb, struct yerr *err);

/* Internal, shared between engine files. */
struct vm_rt *engine_rt_find(struct engine *e, const char *id);
struct vm_rt *engine_rt_get(struct engine *e, const struct vm_rec *vm);
void engine_rt_drop(struct engine *e, struct vm_rt *rt);
int engine_attach_watch(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm);
/* The same without a log line: -1 with why (QEMU not listening yet). */
int engine_try_watch(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm, char *err,
                     size_t len);
/* A QMP event seen: keeps rt->qmp_status true. */
void engine_status_note(struct vm_rt *rt, const char *event);
/* QEMU of VM id is gone: the host side is cleaned up (guest client, watch,
 * cgroup) and "vm.exited" {"vm","pid","shutdown_seen","while_down"} raised;
 * the controller's ctl_vm_exited makes the row say so. */
void engine_vm_handle_exit(struct engine *e, const char *id, bool while_down);
/* Asks the controller for a reconcile pass shortly: the agent's event
 * "host.reconcile" (agent/agent_attach.c; the pass is ctl/vms_reconcile.c). */
void engine_reconcile_soon(struct engine *e);

#endif
