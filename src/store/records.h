/*
 * records.h - the objects yun keeps in its state of record: VMs, images and
 * events, as plain structs shared by the store, the engine and the API.
 */
#ifndef YUN_RECORDS_H
#define YUN_RECORDS_H

#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/yerr.h"

/* Observed state of a VM. "creating" and "deleting" are intents written before
 * side effects, so a crash in the middle is finished or undone on restart. */
enum vm_state {
    VM_CREATING = 0,
    VM_STOPPED,
    VM_STARTING,
    VM_RUNNING,
    VM_PAUSED,
    VM_STOPPING,
    VM_CRASHED,
    VM_DELETING,
    VM_UNKNOWN, /* its host is down: whether its QEMU runs is not known (it may) */
    VM_STATE_COUNT
};

/* What the user asked for; the reconcile loop drives state toward it. */
enum vm_desired { WANT_STOPPED = 0, WANT_RUNNING, WANT_PAUSED, WANT_DELETED, WANT_COUNT };

enum restart_policy { RESTART_NO = 0, RESTART_ON_FAILURE, RESTART_ALWAYS };

struct vm_rec {
    char id[37];
    char name[64];
    char image[64];
    int cpus;
    uint64_t memory_mb;
    uint64_t disk_bytes;
    char cmdline[512];
    char machine[32];
    char accel[8]; /* requested: auto, kvm, tcg */
    char accel_used[8];
    enum restart_policy restart;
    unsigned cpu_weight;
    uint64_t cpu_quota_us;
    uint64_t cpu_period_us;
    char cpuset[64];
    enum vm_desired desired;
    enum vm_state state;
    pid_t pid;
    int64_t started_at; /* ms since epoch, 0 when not running */
    int64_t created_at;
    int64_t updated_at;
    int restarts;
    char last_error[256];
    char hostname[64];     /* cloud-init local-hostname ("" = none) */
    int seed;              /* a NoCloud seed disk (seed.iso) is in the VM's directory */
    char disk[64];         /* the active disk layer, a file in the VM's directory */
    char disk_parent[37];  /* snapshot the active layer sits on ("" = the image) */
    int64_t stop_deadline; /* ms since epoch: a graceful stop turns into quit then (0 = none) */
    uint32_t uid;          /* unprivileged uid its QEMU runs as (0 = not assigned yet) */
    char host[37];         /* id of the host it is placed on ("" = not placed yet) */
    char group[64];        /* placement group ("" = none) */
    char requires[256];    /* required host labels, "k=v,k=v" ("" = none) */
    char pool[64];         /* the pool its disk lives in ("" = the VM's directory) */
    int ha;                /* restarted on another host when its host's lease lapses */
    char ha_from[37];      /* the host an HA restart took it from ("" = none) */
    char cpu_pin[256];     /* per-vCPU host CPUs, "VCPU:CPUS[,VCPU:CPUS...]" ("" = none) */
    char emulator_pin[64]; /* host CPUs of QEMU's other threads, cpuset syntax ("" = none) */
    /* memory policy (docs/architecture.md "Memory policy") */
    uint64_t memory_min_mb;  /* the balloon never squeezes it below this (0 = memory_mb) */
    int64_t memory_swap_mb;  /* swap allowed beyond memory_mb; -1 = the host's default */
    uint64_t memory_high_mb; /* soft limit (memory.high, v1 soft_limit); 0 = none */
    int memory_lock;         /* QEMU's memory locked resident (mem-lock=on), never swapped */
    int no_merge;            /* KSM opt-out: mem-merge=off */
    /* QEMU's -cpu (sched/cpu_models.h), fixed at create: the cluster
     * baseline or its own; "" = rows made before (host under KVM, max) */
    char cpu_model[64];
    /* not stored: where its disk chain lies on the host ("" = the VM's
     * directory), POOL_PATH/vms/ID, filled in for the wire */
    char disk_dir[256];
};

/* A storage pool declared by name (pools table). */
struct pool_rec {
    char name[64];
    char path[256]; /* absolute; a shared pool: the same path on every host */
    int shared;
    int64_t created_at;
};

/* A host of the cluster: an agent that joined, or the all-in-one's own. */
struct host_rec {
    char id[37];
    char name[64];
    char address[64];    /* where the agent is reached (IP or name) */
    char agent_url[160]; /* http://ADDRESS:PORT of its agent API ("" = in-process) */
    int cpus;
    uint64_t memory; /* bytes */
    char accel[8];
    char cpu_model[128];
    char cpu_flags[1024]; /* space-separated, as /proc/cpuinfo */
    char cpu_models[512]; /* the QEMU CPU models it runs, ','-separated (agent_cpu_models) */
    char labels[512];     /* "k=v,k=v" */
    char state[16];       /* "up", "maintenance" or "down" */
    int maintenance;      /* an operator asked for maintenance (kept across a lapse) */
    int64_t lease_until;  /* ms, database clock: down after it */
    char cred_hash[65];   /* hex SHA-256 of its credential */
    char run[37];         /* the agent process's run id (changes on restart) */
    double cpu_load;      /* last heartbeat's usage */
    uint64_t mem_used;
    char vms_dir[300];
    char images_dir[300];
    int64_t joined_at;
    int64_t updated_at;
};

struct image_rec {
    char id[37];
    char name[64];
    char format[8]; /* qcow2 or raw */
    char path[512]; /* disk file, absolute */
    char kernel[512];
    char initrd[512];
    char cmdline[256];
    char os[32];
    uint64_t virtual_size;
    uint64_t actual_size;
    int64_t created_at;
    uint64_t min_memory_mb; /* the least guest memory it boots with (0 = unknown) */
    /* "DISK KERNEL INITRD": each file's SHA-256 in hex, "-" for none; ""
     * until a host without the library first needs it (images_fetch.c) */
    char sha256[200];
};

/* A host's verified copy of an image (hosts whose images_dir is not the
 * cluster's library; ctl/images_fetch.c). image is the image's id. */
struct host_image_rec {
    char host[37];
    char image[37];
    char name[64];
    char sha256[200];
    uint64_t bytes;
    int64_t fetched_at;
};

/* A volume's state. "creating" and "deleting" are intents written before
 * side effects (a crash in between is finished or undone); attaching and
 * detaching wait for QEMU (the transitions: storage/volstate.c). */
enum vol_state {
    VOL_CREATING = 0,
    VOL_READY,
    VOL_ATTACHING,
    VOL_ATTACHED,
    VOL_DETACHING,
    VOL_DELETING,
    VOL_STATE_COUNT
};

struct volume_rec {
    char id[37];
    char name[64];
    char pool[64];
    char format[8]; /* qcow2 or raw */
    char path[512];
    uint64_t virtual_size;
    char backing[64];     /* volume this one is a linked clone of ("" = none) */
    char attached_to[37]; /* VM id ("" = none) */
    enum vol_state state;
    int64_t created_at;
    char task[37]; /* the task that owns the row while one runs ("" = none) */
    char host[37]; /* id of the host whose pool holds it ("" = the all-in-one's own) */
};

/* A snapshot's state (ctl/snapstate.c has the transitions): "creating" and
 * "deleting" are intents written before the side effects. */
enum snap_state { SNAP_CREATING = 0, SNAP_READY, SNAP_DELETING, SNAP_STATE_COUNT };

/* A disk snapshot of a VM: `file` (in the VM's directory) froze when the
 * snapshot was taken and holds the disk as it was then, on top of the
 * parent snapshot's file (or the image). */
struct snapshot_rec {
    char id[37];
    char vm_id[37];
    char name[64];
    char file[64];
    char parent[37]; /* snapshot id, "" = the image */
    enum snap_state state;
    char consistency[16]; /* "application" (guest fs frozen) or "crash" */
    char new_disk[64];    /* while creating: the active layer being made */
    int64_t created_at;
};

struct event_rec {
    int64_t id;
    int64_t ts; /* ms since epoch */
    char object_type[16];
    char object[64];
    char action[32];
    char result[16]; /* ok, error, info */
    char reason[512];
};
/* Fills ev (zeroed first) from its parts; the reason, formatted from fmt,
 * is served as JSON, so it is kept valid UTF-8 and a character the buffer
 * cuts is not left half there. */
void event_rec_vfill(struct event_rec *ev, const char *type, const char *object, const char *action,
                     const char *result, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* A long operation (ctl/tasks.h): a row written before its first side
 * effect, so a restart finds what was in flight. */
enum task_state {
    TASK_QUEUED = 0,
    TASK_RUNNING,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_CANCELLED,
    TASK_STATE_COUNT
};

struct task_rec {
    char id[37];
    char kind[32];        /* "volume.clone" */
    char object_type[16]; /* volume, image, vm, snapshot */
    char object_id[37];
    char object_name[64];
    enum task_state state;
    uint64_t done, total; /* progress (bytes); total 0 = unknown */
    char *result;         /* JSON text on success (malloc'd, may be NULL) */
    enum yerr_code error_code;
    char error_message[512];
    int64_t created_at, started_at, finished_at; /* ms, 0 = not yet */
    char owner[16];                              /* the yund run that runs it */
    bool cancellable, cancel_requested;
    /* For recovery (additions to the shared API): the operation's own
     * notes (JSON text, malloc'd, may be NULL: what to remove on rollback),
     * and a helper process it runs (pid and its start time, 0 = none). */
    char *params;
    int32_t pid;
    uint64_t pid_start;
};
/* Frees result and params (the struct itself is the caller's). */
void task_rec_clear(struct task_rec *t);
/* A deep copy (result and params duplicated); 0 or -1 (out of memory). */
int task_rec_copy(struct task_rec *dst, const struct task_rec *src);

const char *vm_state_name(enum vm_state s);
int vm_state_parse(const char *s, enum vm_state *out);
const char *snap_state_name(enum snap_state s);
int snap_state_parse(const char *s, enum snap_state *out);
const char *vm_desired_name(enum vm_desired d);
int vm_desired_parse(const char *s, enum vm_desired *out);
const char *restart_policy_name(enum restart_policy p);
int restart_policy_parse(const char *s, enum restart_policy *out);
const char *vol_state_name(enum vol_state s);
int vol_state_parse(const char *s, enum vol_state *out);
const char *task_state_name(enum task_state s);
int task_state_parse(const char *s, enum task_state *out);

#endif
