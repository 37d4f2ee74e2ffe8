/*
 * vms_int.h - between the controller's VM files (vms.c, vms_ops.c,
 * vms_create.c, vms_stop.c, vms_delete.c, vms_reconcile.c): the VM task helpers and the
 * operations waiting for an agent reply.
 */
#ifndef YUN_CTL_VMS_INT_H
#define YUN_CTL_VMS_INT_H

#include "ctl/ctl.h"
#include "ctl/tasks.h"

/* 0 with task->id set (empty without a task table), or -1 with the
 * conflict naming the running task. */
int ctl_vm_task_begin(struct ctl *c, const char *kind, const struct vm_rec *vm,
                      struct task_rec *task, struct yerr *err);
void ctl_vm_task_end(struct ctl *c, const struct task_rec *task, const struct vm_rec *vm,
                     const struct yerr *err);

/* vms.c: a spec checked (and its image read) before create, against the
 * host it is to be created on (NULL: before placement). ctl_vm_check_spec
 * is the spec alone (name, size, machine, seed), no store. */
int ctl_vm_check_spec(const struct vm_spec *s, struct yerr *err);
int ctl_vm_validate_spec(struct ctl *c, const struct vm_spec *s, const char *host_id,
                         struct image_rec *img, struct yerr *err);

/* A create, stop or delete in flight: the agent's replies carry it. */
struct ctl_vmop {
    struct ctl_vmop *next;
    struct ctl *c;
    struct task_rec task; /* id "" without one (a reconcile's delete) */
    struct vm_rec vm;     /* the row as the operation wrote it */
    bool force;
    bool start;     /* create: start it once made */
    bool reconcile; /* a delete or a create's rollback reconcile asked for */
    ctl_vm_fn done; /* NULL: nobody waits (forgotten, or reconcile's) */
    void *ctx;
    uint64_t call; /* the agent call in flight */
    json_t *args;  /* create: vm.prepare's, while its image is fetched to the host */
};

struct ctl_vmop *ctl_vmop_new(struct ctl *c, const struct vm_rec *vm, ctl_vm_fn done, void *ctx);
/* Unlinks and frees it (its agent calls are done). */
void ctl_vmop_free(struct ctl_vmop *op);
/* An operation on VM id is in flight. */
bool ctl_vmop_busy(struct ctl *c, const char *id);
/* Ends op: its task, its caller told (vm NULL with err, or the row now),
 * then it is freed. */
void ctl_vmop_finish(struct ctl_vmop *op, const struct vm_rec *vm, const struct yerr *err);

/* A yerr for an agent call that could not be made (agent_call gave 0). */
void ctl_vmop_no_call(struct yerr *err);

/* vms_stop.c: the deadline timer of a stopping VM (the engine's hook). */
void ctl_stop_deadline_arm(struct ctl *c, const struct vm_rec *vm);
void ctl_stop_deadline_drop(struct ctl *c, const char *id); /* the VM is gone */
void ctl_stop_deadlines_free(struct ctl *c);
/* vms_delete.c: the end of a deleting row, or a creating one's rollback
 * (the engine's hook, from reconcile; and from delete itself). */
void ctl_vm_finish_delete(struct ctl *c, const struct vm_rec *vm);
void ctl_vm_remove_run(struct ctl_vmop *op);
/* vms_ops.c: a QEMU that must not run (an interrupted start of a VM to be
 * stopped, or one under a directory with no row) ended by the agent
 * (vm.end), one at a time per VM; a reconcile pass follows. */
void ctl_vm_end_qemu(struct ctl *c, const struct vm_rec *vm);

/* A VM's QEMU is gone (vms_events.c): the row says stopped or crashed,
 * the event is recorded, its volumes are settled and its restart policy
 * applied. pid: the QEMU that exited (0: not known); shutdown_seen: the
 * agent saw the guest shut down (a clean exit); while_down: it died while
 * yund was not running. Ignored for a row with no process (its exit was
 * told already) and for one that names another pid. */
void ctl_vm_exited(struct ctl *c, const char *vm_id, pid_t pid, bool shutdown_seen,
                   bool while_down);

/* A restart of the VM is waiting for its backoff to pass. */
bool ctl_vm_restart_pending(struct ctl *c, const char *vm_id);

#endif
