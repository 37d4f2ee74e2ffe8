/*
 * agent_record.h - an agent host's own record of the QEMUs it launched
 * (docs/cluster.md, "The agent's record"): STATE/agent-vms.json, so that an
 * agent restarted (kill -9) finds its QEMUs again without its controller,
 * watches them, and tells the controller what it missed.
 */
#ifndef YUN_AGENT_RECORD_H
#define YUN_AGENT_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_RECORD_FILE "agent-vms.json"
#define AGENT_RECORD_MAX  4096 /* entries; a file with more is refused */

struct agent;
struct event_base;
struct vm_rec;

/* One QEMU this agent launched: who it is, and the limits vm.attach gives
 * back to its cgroup when it is found again. */
struct agent_record_entry {
    char vm[37];
    char name[64];
    uint32_t uid;
    pid_t pid;
    uint64_t start;      /* its start time, clock ticks after boot (/proc/PID/stat field 22) */
    int64_t launched_at; /* ms, wall clock */
    uint64_t memory_mb;
    char accel[8];
    unsigned cpu_weight;
    uint64_t cpu_quota_us, cpu_period_us;
    char cpuset[64];
    /* the memory policy vm.attach writes again (absent from an older
     * record: -1, 0, 0, the host's defaults) */
    int64_t memory_swap_mb;
    uint64_t memory_high_mb;
    int memory_lock;
};

struct agent_record;

/* Loads STATE/agent-vms.json (a file that is not a valid record is logged
 * and renamed aside, STATE/agent-vms.json.bad-MS, and the record starts
 * empty) and starts its writer thread. NULL only on out of memory or no
 * thread. */
struct agent_record *agent_record_open(const char *state_dir);
/* Waits for the last write, stops the writer. */
void agent_record_free(struct agent_record *r);

/* The QEMU of vm (pid) runs: its entry is made or replaced. */
void agent_record_launched(struct agent_record *r, const struct vm_rec *vm, pid_t pid);
/* The VM's QEMU is gone (pid 0: whichever it was): its entry goes. */
void agent_record_forget(struct agent_record *r, const char *vm, pid_t pid);
size_t agent_record_count(const struct agent_record *r);
const struct agent_record_entry *agent_record_get(const struct agent_record *r, size_t i);
const struct agent_record_entry *agent_record_find(const struct agent_record *r, const char *vm);
/* Waits until what was recorded so far is on disk (tests, shutdown). */
void agent_record_flush(struct agent_record *r);

/* Pure: the record's text and back. parse: 0 and the entries (malloc'd,
 * *n of them), or -1 with why. */
char *agent_record_dump(const struct agent_record_entry *e, size_t n);
int agent_record_parse(const char *text, struct agent_record_entry **out, size_t *n, char *why,
                       size_t whylen);
/* Does the entry's QEMU still run: its pid, with the same start time, and
 * a command line naming its VM (a reused pid is not it). */
bool agent_record_alive(const struct agent_record_entry *e);

/* At an agent's start, before it serves: every entry whose QEMU still runs
 * is attached again through vm.attach (its watch, its pidfile, its cgroup
 * limits); every entry whose QEMU is gone raises "vm.exited" {"vm","pid",
 * "shutdown_seen": false,"while_down": true} on local (the pusher queues it
 * for the controller) and goes. Runs the loop until the attaches have
 * answered. Returns how many were attached. */
int agent_record_recover(struct agent_record *r, struct event_base *base, struct agent *local);

#endif
