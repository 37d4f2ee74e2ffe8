/*
 * agent.h - the seam between the controller and a host: the host-local verbs.
 *
 * The controller (src/ctl) owns the state of record; an agent owns what
 * happens on one host: QEMU processes, QMP and guest-agent exchanges, disk
 * files (qemu-img), cgroups, sampling. The controller reaches a host only
 * through this interface, and every exchange is a message that could cross a
 * network: a verb from the enum below with plain JSON arguments in, a plain
 * JSON result or an error out, progress reports while a long verb runs, and
 * events the agent raises on its own (a QEMU event, a QEMU that exited). No
 * pointer of one side is ever seen by the other.
 *
 * One implementation runs in-process (agent_local.c, over src/compute and
 * src/storage); a remote one (HTTP to another host's agent) slots in behind
 * the same struct agent_ops. OpenBSD vmd's imsg types are the model: each
 * operation an enumerated request answered by a reply or an event.
 *
 * Rules every implementation keeps:
 *  - the reply callback runs exactly once per call, always from the event
 *    loop and never from inside agent_call() (so a caller may hold locks or
 *    half-built state across the call);
 *  - progress callbacks run zero or more times before the reply;
 *  - agent_cancel() asks a verb to stop; its reply then carries
 *    YE_CANCELLED unless the verb had already finished;
 *  - arguments are validated by the agent like any outside input: a verb
 *    with bad arguments replies YE_INVALID_ARGUMENT.
 */
#ifndef YUN_AGENT_H
#define YUN_AGENT_H

#include <jansson.h>
#include <stdint.h>

#include "lib/yerr.h"

/* The verbs. Each line says its arguments -> its result; the full contract
 * of each is at its implementation (agent_vm.c, agent_disk.c, ...). Keep
 * the blocks by owner so additions merge cleanly; names in agent_verbs.c. */
enum agent_verb {
    AV_NONE = 0,
    /* host */
    AV_HOST_FACTS, /* {} -> {"cpus","memory","accel","yund_id","cgroups","vms_dir","images_dir",
                      "swap_accounting","memlock_max"} */
    /* sampling (agent_sample.c) */
    AV_HOST_SAMPLE, /* {"vms":[{"vm","pid"}...][,"deadline_ms"]} -> {"host":{..},"vms":[{..}]}:
                       raw counters of the host and of those VMs, one round trip */
    /* VM processes and their monitors (agent_vm.c) */
    AV_VM_FIRST,
    AV_VM_STATUS,  /* {"vm"} -> {"qmp": status|null, "guest": facts|null}: never waits */
    AV_GUEST_EXEC, /* {"vm","argv","timeout","input"} -> {"exitcode","signal","out_b64",...} */
    AV_VM_QMP,     /* {"vm","command","arguments"} -> {"return"}: over the open event connection */
    /* VM launch (agent_launch.c) */
    AV_VM_LAUNCH, /* {"vm": spec,"image","volumes"} (agent_wire.h) -> {"pid","accel","spawn_ms"} */
    /* VM power and files (agent_power.c) */
    AV_POWER_FIRST,
    AV_VM_POWERDOWN, /* {"vm"} -> {"via": "agent"|"acpi"} */
    AV_VM_QUIT,      /* {"vm"} -> {}: QMP quit over the event connection */
    AV_VM_END,       /* {"vm","uid","pid"?} -> {"ended"}: every process of the VM */
    AV_VM_PREPARE,   /* {"vm","disk_bytes","image_path","image_format","seed",...}
                        -> {"disk","seed"?}: directory, overlay, seed ISO */
    AV_VM_REMOVE,    /* {"vm","uid"} -> {}: cgroups, directory, uid claim */
    /* console (agent_console.c) */
    AV_CONSOLE_FIRST,
    AV_VM_CONSOLE_READ, /* {"vm","offset","max"} -> {"data_b64","offset","next","start","end"}:
                           a bounded chunk of the serial console log */
    /* disk files (agent_disk.c) */
    AV_DISK_FIRST,
    AV_DISK_CREATE,  /* {path,format,size[,backing,backing_format][,exclusive]} -> {} */
    AV_DISK_COPY,    /* {src,src_format,dst,dst_format[,import,export,backing,backing_format,
                        sparse,replace,total,identity]} -> {path,bytes}; progress; cancellable */
    AV_DISK_REBASE,  /* {path,format,backing,backing_format[,unsafe]} -> {}; progress;
                        cancellable; backing may be a file name beside path */
    AV_DISK_RESIZE,  /* {path,format,size} -> {} */
    AV_DISK_INFO,    /* {path[,format,import]} -> qemu-img info JSON */
    AV_DISK_CHECK,   /* {path} -> {check,clean} */
    AV_DISK_REMOVE,  /* {path} or {export: path} (its .part) -> {removed} */
    AV_IMAGE_BUILD,  /* {script,outdir[,cache]} -> {} : runs an image builder */
    AV_DISK_INSPECT, /* {path,import|image[,format]} -> {format,virtual_size,backing,
                        backing_format,identity}: an import file (or a built image's disk)
                        checked (info, check); disk.copy takes the identity to copy that
                        same file */
    /* image library directories (agent_disk.c) */
    AV_IMAGE_REMOVE, /* {"dir"} -> {}: an image's directory under images/, removed (rm -rf job) */
    /* image copies from the controller (agent_fetch.c) */
    AV_IMAGE_FETCH, /* {"image","url","host_id","credential","files":[{"file","size","sha256"}]}
                       -> {"dir","bytes","fetched"}; progress; cancellable */
    /* snapshot layers and block steps (agent_snap.c) */
    AV_SNAP_FIRST,
    AV_VM_LAYER_CREATE,    /* {"vm","file","backing"} -> {} */
    AV_VM_LAYER_REMOVE,    /* {"vm","file"} -> {"removed"} */
    AV_GUEST_FSFREEZE,     /* {"vm"} -> {"count"} */
    AV_GUEST_FSTHAW,       /* {"vm"} -> {"count"} */
    AV_VM_SNAPSHOT_SWITCH, /* {"vm","file"} -> {} */
    AV_VM_ACTIVE_LAYER,    /* {"vm"} -> {"file"} */
    /* snapshot merge (agent_merge.c); the end of a stream is the event
     * "vm.block_job" {"vm","job"[,"error"]} */
    AV_MERGE_FIRST,
    AV_VM_BLOCK_STREAM, /* {"vm","job","top","from","base","backing_file"} -> {"started"} */
    AV_VM_BLOCK_JOBS,   /* {"vm"} -> {"jobs": [{"job","offset","len"}]} */
    AV_VM_LAYERS_SWEEP, /* {"vm","keep": [file]} -> {"removed": [file]} */
    /* volume hot-plug (agent_hotplug.c) */
    AV_HOTPLUG_FIRST,
    AV_VM_VOLUME_PLUG,   /* {"vm","node","device","serial","chain":[{"path","format"}]}
                            -> {"node","device"}: add-fd, blockdev-add, device_add (undone
                            on a failure) */
    AV_VM_VOLUME_UNPLUG, /* {"vm","device"[,"node"]} -> {"gone"}: device_del (the end is
                            QEMU's DEVICE_DELETED event); with "node" and the device gone
                            already, the node is closed too */
    AV_VM_NODE_CLOSE,    /* {"vm","node"} -> {}: blockdev-del; a missing node is fine */
    AV_VM_DEVICES,       /* {"vm"} -> {"devices": [id]}: qom-list /machine/peripheral */
    /* reconcile's host side (agent_attach.c); "host.reconcile" {} is the
     * event asking the controller for a pass soon */
    AV_ATTACH_FIRST,
    AV_VM_ATTACH,      /* {"vm","name","uid","pid","check","pass","sweep",limits...}
                          -> {"seen","pid","status","asked","fresh","launching","exiting",
                          "busy","shutdown_seen"}: its QEMU found and watched again */
    AV_HOST_ORPHANS,   /* {"known": [id],"pass"} -> {"orphans": [{"vm","seen","pid"}]} */
    AV_HOST_HOUSEKEEP, /* {"vms": [id]} -> {"cut": [id]}: console logs capped */
    /* live migration's host side (agent_migrate.c); the incoming QEMU is
     * vm.launch with "incoming": true, its QMP steps go through vm.qmp */
    AV_MIGRATE_FIRST,
    AV_HOST_PORTS,      /* {"count": 1..4} -> {"address", "ports": [port]}: free TCP ports on the
                           agent's address, for QEMU's NBD server and incoming migration */
    AV_VM_SEED_READ,    /* {"vm"} -> {"iso_b64", "size"}: the VM's seed ISO, for the target's
                           vm.prepare {"seed_iso_b64"} (the same bytes on both hosts) */
    AV_VM_DISK_RECLAIM, /* {"vm","disk_dir"} -> {"uid"}: a shared pool's disk given back to
                           the uid of the VM's QEMU here (a rolled-back move) */
    /* a running VM's limits and thread pins (agent_pin.c) */
    AV_PIN_FIRST,
    AV_VM_TUNE, /* {"vm","name","uid","pid","cpus","memory_mb","accel",limits...,"cpu_pin",
                   "emulator_pin"} -> {"vcpus","others"}: cgroup and pins set again live */
    /* the link between two hosts measured (agent_link.c) */
    AV_LINK_FIRST,
    AV_LINK_SINK,  /* {} -> {"address","port","token"}: listens for one probe */
    AV_LINK_PROBE, /* {"address","port","token","ms"} -> {"bytes","sent","us","bps"} */
    /* the switchover on the source host itself (agent_switch.c) */
    AV_SWITCH_FIRST,
    AV_VM_SWITCHOVER, /* {"vm","mirror"?,"node"?|"mirrors"?} -> {"migrate": query-migrate, "us"}:
                         mirrors cancelled and gone, nodes deleted, migrate-continue, until
                         completed */
    /* a file copied host to host, a stopped VM's cold move (agent_xfer.c) */
    AV_XFER_FIRST,
    AV_FILE_RECV, /* {"path","exclusive"?} -> {"address","port","token"}: waits for one sender */
    AV_FILE_SEND, /* {"path","address","port","token"} -> {"bytes","sha256","us"} */
    AV__COUNT
};

/* "vm.launch" and back; NULL / -1 for unknown. */
const char *agent_verb_name(enum agent_verb v);
int agent_verb_parse(const char *name, enum agent_verb *out);

/* result is borrowed (incref to keep it); NULL exactly when err != NULL. */
typedef void (*agent_reply_fn)(void *ctx, json_t *result, const struct yerr *err);
typedef void (*agent_progress_fn)(void *ctx, uint64_t done, uint64_t total);
/* An event the agent raised: type such as "vm.qmp_event", "vm.exited",
 * "vm.agent"; ev is a JSON object (borrowed) naming the VM ("vm": id). */
typedef void (*agent_event_fn)(void *ctx, const char *type, json_t *ev);

/* A console stream was opened (bev: a connected bufferevent the callee
 * owns now, bytes to and from the VM's serial console), or not (bev NULL,
 * err set). */
struct bufferevent;
typedef void (*agent_console_fn)(void *ctx, struct bufferevent *bev, const struct yerr *err);

struct agent;
struct agent_ops {
    uint64_t (*call)(struct agent *a, enum agent_verb v, json_t *args, agent_reply_fn done,
                     agent_progress_fn progress, void *ctx);
    int (*cancel)(struct agent *a, uint64_t call_id);
    void (*forget)(struct agent *a, void *ctx);
    void (*free)(struct agent *a);
    /* The VM's serial console as a byte stream (agent_conhub.c locally,
     * an upgraded connection to the agent remotely). */
    int (*console_open)(struct agent *a, const char *vm_id, agent_console_fn done, void *ctx);
    void (*console_forget)(struct agent *a, void *ctx);
};

#define AGENT_MAX_SUBSCRIBERS 8
struct agent {
    const struct agent_ops *ops;
    char host[64]; /* the host's name, for messages */
    struct {
        agent_event_fn fn;
        void *ctx;
    } subs[AGENT_MAX_SUBSCRIBERS];
    int nsubs;
};

/* Runs verb v with args (a JSON object, stolen; NULL means {}). Returns the
 * call's id (> 0), which cancel takes. done runs exactly once, later. */
uint64_t agent_call(struct agent *a, enum agent_verb v, json_t *args, agent_reply_fn done,
                    agent_progress_fn progress, void *ctx);
/* Asks call_id to stop. 0 when the call was still running, -1 when unknown. */
int agent_cancel(struct agent *a, uint64_t call_id);
/* ctx is going away: no callback of any call made with ctx runs again (the
 * verbs themselves go on; their results are dropped). */
void agent_forget(struct agent *a, void *ctx);
/* Events go to every subscriber, in order, from the event loop. */
int agent_subscribe(struct agent *a, agent_event_fn fn, void *ctx);
void agent_free(struct agent *a);

/* Opens vm_id's serial console: done runs once, later, from the loop,
 * with the stream or the error (YE_CONFLICT: the VM has no QEMU on the
 * host; YE_UNAVAILABLE: the host cannot be reached). Several streams may be
 * open on one VM at once (the host fans its console out). 0, or -1 with
 * err (done never runs then). */
int agent_console_open(struct agent *a, const char *vm_id, agent_console_fn done, void *ctx,
                       struct yerr *err);
/* ctx is going away: its console_open's done does not run (a stream made
 * meanwhile is closed). */
void agent_console_forget(struct agent *a, void *ctx);

/* For implementations: hand an event to the subscribers. */
void agent_emit(struct agent *a, const char *type, json_t *ev);

#endif
