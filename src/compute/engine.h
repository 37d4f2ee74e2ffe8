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
    struct event *exit_timer; /* waits for the QEMU pid to disappear after EOF */
    struct event *restart_timer;
    bool shutdown_seen;    /* the guest shut itself down (clean exit) */
    bool agent_open;       /* the guest agent has its port open */
    struct vm_guard guard; /* event rate limit, reset-loop detection */
    struct guest *guest;   /* agent client and guest facts (guest.c), while agent_open */
    char qmp_status[24];   /* QEMU's last known run state (query-status): vm.status reads it */
    /* A start in progress (agent_launch.c): reconcile leaves the VM alone,
     * and EOF on the watch calls launch_lost(launch) instead of the exit. */
    void *launch;
    void (*launch_lost)(void *launch);
    void (*launch_abandon)(void *launch); /* the entry is dropped with the start running */
    bool reattaching;                     /* vm.attach's query-status is on the way */
    bool reattach_fresh;                  /* that re-attach found the QEMU unwatched */
};

/* Hooks the controller (src/ctl) sets: it records the engine's events, and
 * decides whether a VM may start now (capacity). */
typedef void (*engine_event_hook)(void *ctx, struct event_rec *ev);
typedef int (*engine_admit_hook)(void *ctx, const struct vm_rec *vm, struct yerr *err);
/* The agent's: a block job of a running VM ended (BLOCK_JOB_COMPLETED or
 * _CANCELLED, QEMU's data). The controller's: the reconcile pass's turn
 * for the VMs' snapshot rows. */
typedef void (*engine_block_job_hook)(void *ctx, const char *vm_id, const char *event,
                                      json_t *data);
typedef void (*engine_vms_hook)(void *ctx, const struct vm_rec *vms, size_t n);
/* Starts VM id (a restart policy's restart): -1 with err when it cannot
 * begin; the hook records how it ends. */
typedef int (*engine_start_hook)(void *ctx, const char *vm_id, struct yerr *err);

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
    engine_event_hook on_event;      /* records ev; without one the engine records it */
    void *on_event_ctx;
    engine_admit_hook admit; /* NULL: every start is admitted */
    void *admit_ctx;
    engine_block_job_hook on_block_job;
    void *on_block_job_ctx;
    engine_vms_hook reconcile_snapshots;
    void *reconcile_snapshots_ctx;
    engine_start_hook start; /* the controller's start (ctl_vm_start) */
    void *start_ctx;
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

/* Records an event and tells the hook (long-polling readers). */
void engine_event(struct engine *e, const char *type, const char *object, const char *action,
                  const char *result, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* VMs */
int engine_vm_get(struct engine *e, const char *name, struct vm_rec *out, struct yerr *err);
int engine_vm_action(struct engine *e, const char *name, enum vm_action a, bool force,
                     struct vm_rec *out, struct yerr *err);
/* Is the VM's guest agent up? Fills the agent socket path when it is. */
bool engine_vm_agent(struct engine *e, const struct vm_rec *vm, char *sock, size_t len);
/* One QMP command on a running VM's command monitor; args is not stolen,
 * *ret (when ret != NULL) is a new reference. */
int engine_vm_qmp(struct engine *e, const struct vm_rec *vm, const char *cmd, json_t *args,
                  json_t **ret, struct yerr *err);
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
/* SIGCHLD: a background build may have finished. */
void engine_image_build_reap(struct engine *e);
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
void engine_vm_handle_exit(struct engine *e, const char *id, bool while_down);
/* Asks the controller for a reconcile pass shortly: the agent's event
 * "host.reconcile" (agent/agent_attach.c; the pass is ctl/vms_reconcile.c). */
void engine_reconcile_soon(struct engine *e);

#endif
