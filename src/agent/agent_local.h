/*
 * agent_local.h - the in-process agent: runs the verbs of agent.h on this
 * host, over src/compute and src/storage, on the caller's event loop.
 *
 * A verb is a function that starts the work and returns; it answers later
 * (or at once) with agent_op_reply(), exactly once, reporting progress on the
 * way with agent_op_progress(). The mechanism here delivers the reply to the
 * caller from the loop, never from inside agent_call(), and drops it when the
 * caller forgot its context. Verbs live in files by subject (agent_vm.c,
 * agent_disk.c), each exporting a table of struct agent_verb_def.
 */
#ifndef YUN_AGENT_LOCAL_H
#define YUN_AGENT_LOCAL_H

#include "agent/agent.h"
#include "compute/qemu_argv.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct yun_config;
struct agent_local;
struct agent_op;
struct engine;
struct sample_tids;
struct agent_attach;
struct agent_record;

typedef void (*agent_verb_fn)(struct agent_local *al, struct agent_op *op, json_t *args);
struct agent_verb_def {
    enum agent_verb verb;
    const char *name; /* "vm.launch": the wire name */
    agent_verb_fn run;
};

/* The tables, one per verb file; a verb with no row answers
 * YE_NOT_IMPLEMENTED. */
extern const struct agent_verb_def agent_host_verbs[];
extern const size_t agent_host_verbs_count;
extern const struct agent_verb_def agent_vm_verbs[];
extern const size_t agent_vm_verbs_count;
extern const struct agent_verb_def agent_power_verbs[];
extern const size_t agent_power_verbs_count;
extern const struct agent_verb_def agent_launch_verbs[];
extern const size_t agent_launch_verbs_count;
extern const struct agent_verb_def agent_console_verbs[];
extern const size_t agent_console_verbs_count;
extern const struct agent_verb_def agent_disk_verbs[];
extern const size_t agent_disk_verbs_count;
extern const struct agent_verb_def agent_fetch_verbs[];
extern const size_t agent_fetch_verbs_count;
extern const struct agent_verb_def agent_snap_verbs[];
extern const size_t agent_snap_verbs_count;
extern const struct agent_verb_def agent_sample_verbs[];
extern const size_t agent_sample_verbs_count;
extern const struct agent_verb_def agent_merge_verbs[];
extern const size_t agent_merge_verbs_count;
extern const struct agent_verb_def agent_hotplug_verbs[];
extern const size_t agent_hotplug_verbs_count;
extern const struct agent_verb_def agent_attach_verbs[];
extern const size_t agent_attach_verbs_count;
extern const struct agent_verb_def agent_migrate_verbs[];
extern const size_t agent_migrate_verbs_count;
extern const struct agent_verb_def agent_pin_verbs[];
extern const size_t agent_pin_verbs_count;
extern const struct agent_verb_def agent_link_verbs[];
extern const size_t agent_link_verbs_count;
extern const struct agent_verb_def agent_switch_verbs[];
extern const size_t agent_switch_verbs_count;
extern const struct agent_verb_def agent_xfer_verbs[];
extern const size_t agent_xfer_verbs_count;

/* agent_migrate.c: the address controllers (and other hosts) reach this
 * agent at: its agent_address, else the host part of agent_listen; every
 * address (or none: the all-in-one) is the loopback. */
void agent_own_address(const struct yun_config *cfg, char *out, size_t len);
/* A TCP socket bound to a port the kernel picked on addr (held open while
 * others are picked, so no two are one number); -1 with why. */
int agent_bind_any(const char *addr, int *port, char *why, size_t len);

const struct agent_verb_def *agent_local_verb(enum agent_verb v);

struct agent_local {
    struct agent pub; /* first: (struct agent *)al is this agent */
    struct event_base *base;
    const struct yun_config *cfg;
    void *host;           /* this host's compute state (struct engine) */
    struct agent_op *ops; /* calls not yet delivered */
    uint64_t next_id;
    struct sample_tids *sample_tids; /* agent_sample.c: vCPU thread ids per QEMU */
    struct agent_attach *attach;     /* agent_attach.c: the reconcile pass's /proc walk */
    struct conhub *conhubs;          /* agent_conhub.c: live consoles, one hub per VM */
    struct conopen *conopens;        /* agent_conhub.c: opens not answered yet */
    struct agent_record *record;     /* agent_record.c: the agent role's QEMUs, or NULL */
    struct agent_fence *fence;       /* agent_fence.c: the agent role's HA QEMUs, or NULL */
    struct agent_balloon *balloon;   /* agent_balloon.c: the balloon loop and its VMs */
};

/* Ends the qemu-img (and image builder) processes an earlier run left on
 * this state directory's files (agent_disk.c); agent_local_new runs it. */
void agent_disk_end_orphans(struct agent_local *al);
/* Ends and frees the image fetches still running (agent_fetch.c; agent_free
 * runs it first). */
void agent_fetch_free(struct agent_local *al);
/* agent_link.c: its sinks' and probes' threads ended (cancelled) */
void agent_link_free(struct agent_local *al);
/* agent_xfer.c: its file copies' threads ended (cancelled) */
void agent_xfer_free(struct agent_local *al);
/* Frees agent_sample.c's cache (agent_free runs it). */
void agent_sample_free(struct agent_local *al);
/* The live serial consoles (agent_conhub.c): the ops' console_open and
 * console_forget; agent_free runs agent_conhub_free. */
int agent_conhub_open(struct agent *a, const char *vm_id, agent_console_fn done, void *ctx);
void agent_conhub_forget(struct agent *a, void *ctx);
void agent_conhub_free(struct agent_local *al);
/* Frees agent_attach.c's cache (agent_free runs it). */
void agent_attach_free(struct agent_local *al);
/* The balloon loop (agent_balloon.c): agent_local_new starts it when
 * balloon_policy is on, agent_free frees it. vm.launch hands it the spec
 * (after its guard): its memory and memory_min_mb (agent_wire.c validated
 * it; 0 always). _target: the target of the
 * VM's QEMU pid, false when that VM is not ballooned. */
void agent_balloon_start(struct agent_local *al);
void agent_balloon_free(struct agent_local *al);
struct vm_rec;
int agent_balloon_spec(struct agent_local *al, const struct vm_rec *vm, struct yerr *err);
bool agent_balloon_target(struct agent_local *al, const char *vm, pid_t pid, uint64_t *target);
/* vm.tune's new floor (vm->memory_min_mb, 1..memory_mb) for the VM's QEMU
 * (vm->pid): a balloon held below it is given back at once, one at the
 * memory size is given back whole and no longer ballooned, and one that was
 * not ballooned may be from the next round. Nothing without the loop. */
void agent_balloon_set_min(struct agent_local *al, const struct vm_rec *vm);
/* The CPU models this host offers (agent_host.c): what its QEMU runs
 * (engine's probe) within yun's table (sched/cpu_models.h), cut to the
 * cpu_models setting when one is set. A mask over that table. */
struct engine;
uint32_t agent_cpu_models(const struct engine *e);
/* Routes the host's block-job events to the "vm.block_job" agent event
 * (agent_merge.c); agent_local_new runs it. */
void agent_merge_attach(struct agent_local *al);

struct agent *agent_local_new(struct event_base *base, const struct yun_config *cfg, void *host);
static inline struct agent_local *agent_local_of(struct agent *a)
{
    return (struct agent_local *)a;
}

/* For verbs. result is stolen (NULL with err); the first reply counts, a
 * later one is dropped. */
void agent_op_reply(struct agent_op *op, json_t *result, const struct yerr *err);
/* Shorthands: reply {} / reply an error made here. */
void agent_op_ok(struct agent_op *op);
void agent_op_fail(struct agent_op *op, enum yerr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void agent_op_progress(struct agent_op *op, uint64_t done, uint64_t total);
/* The verb's way to stop when the caller cancels: fn runs once, on the
 * loop; the verb still replies (agent_op_fail(op, YE_CANCELLED, ...)). A
 * verb without one cannot be cancelled (cancel returns -1). */
typedef void (*agent_op_cancel_fn)(struct agent_op *op, void *arg);
void agent_op_on_cancel(struct agent_op *op, agent_op_cancel_fn fn, void *arg);
bool agent_op_cancelled(const struct agent_op *op);
uint64_t agent_op_id(const struct agent_op *op);
/* The host's engine (struct engine *), or NULL after failing op with
 * YE_UNAVAILABLE: the argument check every verb on a VM starts with. */
struct engine *agent_op_host(struct agent_local *al, struct agent_op *op);
/* The "vm" argument (a VM id: lowercase hex and dashes, at most 36), or
 * NULL after failing op with YE_INVALID_ARGUMENT. */
const char *agent_op_vm_id(struct agent_op *op, json_t *args);
struct agent_local *agent_op_agent(struct agent_op *op);

/* Blocking socket I/O on an agent thread (agent_netio.c): 1 ready, 0 the
 * deadline (monotonic us) passed, -1 cancelled or failed; the full ones 0,
 * or -1 on EOF, error, cancel or time. */
int netio_wait(atomic_bool *cancel, int fd, short ev, int64_t deadline);
int netio_read_full(atomic_bool *cancel, int fd, void *buf, size_t n, int64_t deadline);
int netio_write_full(atomic_bool *cancel, int fd, const void *buf, size_t n, int64_t deadline);

/* A file yund keeps on this host: under the state directory's pools/ or
 * vms/ (agent_state_path_ok), or the image library too (agent_disk.c). */
bool agent_state_path_ok(struct agent_local *al, const char *p);
bool agent_local_path_ok(struct agent_local *al, const char *p);

/* vm.launch's migration-target part (agent_launch_incoming.c): "incoming"
 * and "pci" checked into in; then -incoming defer and the source's PCI
 * addresses put into argv (-1 with why). */
struct launch_incoming {
    bool on;
    struct pci_pin pins[PCI_PINS_MAX];
    size_t npins;
};
int launch_incoming_parse(json_t *args, struct launch_incoming *in, struct yerr *err);
int launch_incoming_argv(const struct launch_incoming *in, struct qemu_argv *qa, char *why,
                         size_t len);

/* vm.launch's two-QEMU guard (agent_launch_guard.c): 0 when this host
 * shows no QEMU of vm and no start or exit of it in flight, and runs its
 * CPU model; else -1 with YE_CONFLICT (one runs or is being handled, or
 * the model is not one this host runs) or YE_UNAVAILABLE (/proc cannot
 * tell). */
struct engine;
struct vm_rec;
int launch_guard(struct engine *e, const struct vm_rec *vm, struct yerr *err);

#endif
