/*
 * migrate_int.h - between migrate.c (the checks, the row, the task),
 * migrate_run.c (the forward steps) and migrate_settle.c (roll back or
 * forward, live or after a crash): one struct mig per move this process
 * drives, on c's list, and the QMP call helper they share.
 */
#ifndef YUN_CTL_MIGRATE_INT_H
#define YUN_CTL_MIGRATE_INT_H

#include "ctl/ctl.h"
#include "ctl/links.h"
#include "ctl/migrate.h"
#include "sched/migrate_model.h"
#include "store/store_mig.h"

struct event;

/* Names QEMU gets on both sides. */
#define MIG_EXPORT           "disk0"     /* the target's NBD export of the VM's disk */
#define MIG_NBD_NODE         "mig-nbd0"  /* the source's NBD client node */
#define MIG_JOB              "mig-disk0" /* the source's mirror job */
#define MIG_POLL_MS          200         /* the mirror's progress */
#define MIG_MEM_POLL_MS      50   /* memory: the source pauses at pre-switchover until seen */
#define MIG_MEM_POLL_NEAR_MS 5    /* ... once what is left goes within two polls */
#define MIG_TARGET_CHECK_MS  1000 /* memory: the target asked whether it still receives */
#define MIG_SWITCH_WAIT_MS   500  /* memory: the source agent's wait for the pause, a call */

struct mig;
typedef void (*mig_step)(struct mig *m, json_t *res, const struct yerr *err);

/* A disk a move copies (migrate_disks.c): the VM's own (job MIG_JOB, node
 * MIG_NBD_NODE, export MIG_EXPORT) unless it is on a shared pool, then each
 * attached volume by id (mig-volN, mig-nbdvN, volN). */
#define MIG_DISKS_MAX 33 /* the disk and LAUNCH_VOLS_MAX volumes */
struct mig_disk {
    char job[24], node[24], export[24]; /* the source's job and NBD client node, the export */
    char src[24];   /* the source's device or node mirrored ("disk0", vol-HEX) */
    char tgt[64];   /* the target's node exported (QEMU names disk0's; vol-HEX) */
    char to[512];   /* a volume: its file on the target (a cold move: the disk's too) */
    char from[512]; /* a cold move: the file on the source */
    bool full;      /* sync full (a volume onto an empty file), else top */
};

struct mig {
    struct mig *next;
    struct ctl *c;
    struct migration_rec row;
    struct migrate_opts o;
    struct vm_rec vm; /* the row at the start (source pid, uid) */
    bool live;        /* driving the move forward (else settling a row) */
    bool cancel;      /* the task's cancel asked */
    bool settling;    /* rolling back or forward */
    bool retry;       /* a row left open, settled again (no events while it waits) */
    struct yerr err;  /* why it rolls back */
    mig_step next_step;
    mig_step qmp_step; /* after a vm.qmp reply */
    struct event *timer;
    uint64_t call;
    char call_host[37];
    char addr[64];
    int nbd_port, mig_port;
    struct mig_disk disks[MIG_DISKS_MAX];
    int ndisks, di;          /* the disks copied; the one a step is at */
    struct volume_rec *vols; /* the VM's attached volumes at the start, by id */
    size_t nvols;            /* (the last nvols of disks) */
    json_t *pci;             /* the source's PCI layout, for the target's launch */
    json_t *rm;              /* the settle's files to remove: [{host, path}] */
    mig_step disks_then;     /* migrate_disks.c's steps end there */
    int64_t t0, mem_t0, last_detail;
    int64_t target_checked;       /* memory: when the target last said it was receiving */
    int64_t t_paused;             /* pre-switchover seen: the guest stopped on the source */
    int64_t mirror_t0, mirror_ms; /* blockdev-mirror sent; until it was seen ready */
    json_t *detail;               /* the task's live figures */
    json_t *prediction;           /* the pre-copy model's, before the start (NULL: none) */
    struct link_view link;        /* the link the prediction was given */
    int polls;
    void (*after_predict)(struct mig *m);
    bool src_completed;  /* the source's migration completed (postmigrate) */
    bool shared;         /* the disk is on a shared pool: both QEMUs open it, no mirror */
    bool switch_asked;   /* the source agent was asked to wait for the pause */
    bool legacy_switch;  /* its agent has no vm.switchover: the steps one call each */
    bool cold;           /* a stopped VM: its files copied, no QEMU (migrate_cold.c) */
    uint64_t cold_bytes; /* ... the bytes copied so far */
    migrate_done_fn done;
    void *done_arg;
};

/* migrate_plan.c: a prediction as the plan and the task show it */
json_t *mig_prediction_json(const struct mig_model_in *in, const struct mig_model_out *out);

/* The move's first step: the dirty rate measured on the source, the
 * prediction kept (m->prediction, the task's detail and result); a move
 * that cannot converge fails here, before any side effect (409 conflict
 * with the numbers); else then(m). A measurement that fails is logged and
 * the move goes on without a prediction. */
void mig_predict(struct mig *m, void (*then)(struct mig *m));

/* migrate.c */
/* The checks of a move before anything changes (options, the target by
 * o->to or strategy, the VM, the target's filters); dry: a plan's, nothing
 * reserved and the strategy's cursor unmoved. 0 with target, or -1. */
int mig_check(struct ctl *c, const struct vm_rec *vm, const struct migrate_opts *o, bool dry,
              char target[37], struct yerr *err);
struct mig *mig_new(struct ctl *c);
void mig_free(struct mig *m);
struct mig *mig_find_vm(struct ctl *c, const char *vm_id);
/* Writes m->row (phase, updated_at); -1 logged. */
int mig_save(struct mig *m, const char *phase);
/* One agent call on host; the reply goes to step (err set when it failed
 * or could not be made). */
void mig_call(struct mig *m, const char *host, enum agent_verb v, json_t *args, mig_step step);
/* One QMP command on the VM's QEMU on host (vm.qmp); res is its "return". */
void mig_qmp(struct mig *m, const char *host, const char *cmd, json_t *args, mig_step step);
/* step again after ms (a poll). */
void mig_later(struct mig *m, int ms, mig_step step);
/* The task's live figures (rate-limited writes). */
void mig_detail(struct mig *m, bool force);
/* The move is over: task, events, done callback, m freed. err NULL: ok. */
void mig_finish(struct mig *m, const struct yerr *err);

/* migrate_disks.c (see there). The checks of a VM's volumes before a move
 * (409 with the reason). */
int mig_volumes_check(struct ctl *c, const struct vm_rec *vm, struct yerr *err);
/* m->disks and m->vols from the store, the target's paths chosen. */
int mig_disks_plan(struct mig *m, struct yerr *err);
/* The volume files on the target (disk.create, exclusive), each counted
 * in the row ("made") once made; then(m, NULL, err). */
void mig_volumes_make(struct mig *m, mig_step then);
/* m->pci from the source's query-pci; then(m, NULL, err). */
void mig_pci_read(struct mig *m, mig_step then);
/* NBD server and exports on the target, client nodes and mirrors on the
 * source; then(m, NULL, err) once every mirror was started. */
void mig_disks_copy(struct mig *m, mig_step then);
/* The jobs' progress into m->detail; *ready when all are. -1 with err when
 * one of them is gone. */
int mig_disks_poll(struct mig *m, json_t *jobs, bool *ready, struct yerr *err);
/* [{"job","node"}...] for vm.switchover. */
json_t *mig_disks_mirrors(const struct mig *m);
/* Cancel every mirror, wait them gone, delete the client nodes (an agent
 * without vm.switchover); then(m, NULL, err). */
void mig_disks_end(struct mig *m, mig_step then);
/* The row's count of the volume files made on the target, saved; -1. */
int mig_save_made(struct mig *m, int n);
/* Inside the commit's transaction: each volume's row on the target. */
int mig_volumes_commit(struct mig *m);
/* The volume files of the side that lost: the target's that the move made
 * (target_side, a rollback) or the source's (rolled forward), each
 * disk.remove; then(m, NULL, err) at the first error (none: NULL). */
void mig_volumes_remove(struct mig *m, bool target_side, mig_step then);

/* migrate_cold.c: a stopped VM's move, after the target's vm.prepare: its
 * files copied, then the commit. A row's options say whether it was one. */
void mig_cold_copy(struct mig *m);
bool mig_row_cold(const struct migration_rec *r);

/* migrate_run.c: the forward steps, from the target's vm.prepare. */
/* THE commit, in one transaction: the VM's row on the target (running with
 * the target's pid and uid, or stopped for a cold move), its volumes' rows,
 * the migrations row committed (outcome when given); then rolled forward.
 * A failed write rolls back. */
void mig_commit(struct mig *m, bool running, const char *outcome);
/* A failed step (err) or a cancel asked: the move rolls back, true. */
bool mig_bail(struct mig *m, const struct yerr *err);
void mig_run_start(struct mig *m);

/* migrate_settle.c: roll m back (phase before committed) or forward. */
void mig_settle(struct mig *m);
/* The failure of a live step: rollback with err (the first one kept). */
void mig_fail(struct mig *m, const struct yerr *err);

#endif
