/*
 * engine.h - the virtualization engine of one host: VM lifecycle on QEMU,
 * images, capacity and the reconcile loop. The API layer calls these; they
 * validate, write intent to the store first, perform the side effects, and
 * undo them on failure, reporting through struct yerr.
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
#include "store/store.h"

struct event_base;
struct event;
struct qmp_watch;
struct guest;
struct agent;
struct tasks;

/* Per-VM things that live only in yund's memory: the QMP event connection
 * and timers. Everything durable is in the store. */
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
    bool reattaching;                     /* reconcile's query-status is on the way (reconcile.c) */
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
typedef void (*engine_vms_hook)(void *ctx, const struct vm_rec *vms, size_t n);

struct engine {
    struct event_base *base;
    struct store *store;
    const struct yun_config *cfg;
    struct cg_layout cg;
    int host_cpus;
    uint64_t host_memory;
    char accel[8];    /* what "auto" resolved to on this host */
    char yund_id[16]; /* random, kept in DIR/yund.id: names this yund's cgroup parent */
    char vms_dir[300];
    char images_dir[300];
    struct vm_rt *rts;
    struct engine_cgrm *cg_removals; /* exited VMs' cgroups being removed (engine.c) */
    bool cgroups_swept;              /* the first reconcile pass removed stopped VMs' groups */
    struct event *reconcile_timer;
    struct event *reconcile_soon_timer;
    engine_notify_hook notify; /* host events to the agent's subscribers */
    void *notify_ctx;
    /* The controller's (ctl/vms_stop.c, ctl/vms_delete.c): a stopping VM's
     * deadline is armed, a deleting or creating row is finished, through
     * the agent's verbs. NULL: reconcile leaves them be. */
    void (*stop_deadline)(void *ctx, const struct vm_rec *vm);
    void (*finish_delete)(void *ctx, const struct vm_rec *vm);
    /* reconcile found a QEMU that must not run (an interrupted start of a
     * VM to be stopped, or one under a directory with no row): the
     * controller ends it through the agent (vm.end), never waiting here */
    void (*end_qemu)(void *ctx, const struct vm_rec *vm);
    void *vm_hooks_ctx;
    engine_block_job_hook on_block_job;
    void *on_block_job_ctx;
    engine_vms_hook reconcile_snapshots;
    void *reconcile_snapshots_ctx;
    /* TRANSITIONAL, the controller's (ctl/volumes_settle.c, set in ctl.c):
     * volume rows settled on a VM's deletion and the
     * reconcile pass (vm_disks.c forwards), until these reach the
     * controller as agent events and its own reconcile. */
    void (*disks_vm_deleted)(void *ctx, const struct vm_rec *vm);
    void (*disks_settle)(void *ctx);
    void *disks_ctx;
    /* a slow image build (debian) running in the background */
    pid_t build_pid;
    char build_kind[16];
    char build_error[300];
    struct event *sigchld;
    /* The seam (agent/agent.h): the host-local verbs of this host (built
     * over this engine by the daemon, src/daemon/main.c), and the long
     * operations in flight (ctl/tasks.h). */
    struct agent *agent;
    struct tasks *tasks;
};

int engine_init(struct engine *e, struct event_base *base, struct store *st,
                const struct yun_config *cfg, char *err, size_t errlen);
void engine_shutdown(struct engine *e); /* frees runtime; leaves every QEMU running */
/* Removes a VM's cgroups (its QEMU exited) on a timer while busy, never
 * waiting on the loop (cgroup_remove.c); engine_cgroup_keep stops a pending
 * removal of that group: a start (vm.launch) or vm.remove that follows
 * takes the group over, so neither races the removal. */
void engine_cgroup_remove(struct engine *e, const char *group);
void engine_cgroup_keep(struct engine *e, const char *group);

/* Startup recovery and the periodic reconcile pass. */
void engine_reconcile(struct engine *e);
/* At start-up, before the API accepts requests: runs the loop until every
 * QEMU re-attached has answered (its status, an interrupted start's cont),
 * at most timeout_ms, so the first answers already show its state. */
void engine_reconcile_settle(struct engine *e, int timeout_ms);

/* Records an event and tells the hook (long-polling readers). */
void engine_event(struct engine *e, const char *type, const char *object, const char *action,
                  const char *result, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Raises a host event (ev stolen) to the agent's subscribers, the
 * controller among them; without a hook it is dropped. */
void engine_notify(struct engine *e, const char *type, json_t *ev);

/* VMs */
int engine_vm_get(struct engine *e, const char *name, struct vm_rec *out, struct yerr *err);
/* Is the VM's guest agent up? Fills the agent socket path when it is. */
bool engine_vm_agent(struct engine *e, const struct vm_rec *vm, char *sock, size_t len);
/* Path of a VM's directory / a file in it. */
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
int engine_store_update(struct engine *e, struct vm_rec *vm);
int engine_attach_watch(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm);
/* The same without a log line: -1 with why (QEMU not listening yet). */
int engine_try_watch(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm, char *err,
                     size_t len);
/* A QMP event seen: keeps rt->qmp_status true. */
void engine_status_note(struct vm_rt *rt, const char *event);
int engine_qemu_kill(struct engine *e, const struct vm_rec *vm, pid_t pid);
/* Ends every QEMU process of vm (found by the process table, not only the
 * pidfile). 0 when none is left, -1 when one may still run. */
int engine_qemu_end(struct engine *e, const struct vm_rec *vm);
/* QEMU of VM id is gone: the host side is cleaned up (guest client, watch,
 * cgroup) and "vm.exited" {"vm","pid","shutdown_seen","while_down"} raised;
 * the controller's ctl_vm_exited makes the row say so. */
void engine_vm_handle_exit(struct engine *e, const char *id, bool while_down);
/* Removes a VM's QEMU, cgroup, files and row; -1 (row kept) when a QEMU of
 * it may still run. */
int engine_vm_finish_delete(struct engine *e, struct vm_rec *vm);
/* A stopping VM's deadline (a row from before deadlines gets one now),
 * handed to the controller's stop_deadline hook, which arms its timer. */
void engine_stop_rearm(struct engine *e, struct vm_rec *vm);
/* Runs a reconcile pass shortly (a start seen half-way, /proc unreadable). */
void engine_reconcile_soon(struct engine *e);

#endif
