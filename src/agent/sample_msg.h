/*
 * sample_msg.h - the host.sample message (agent.h, AV_HOST_SAMPLE) as C
 * structs, and its JSON encoding both ways: the agent encodes what it read,
 * the controller's monitor decodes it. Pure (no I/O), so the encoding is
 * unit-tested and a remote agent speaks exactly the same message.
 *
 * Everything is a raw counter or gauge as the host reports it: CPU in clock
 * ticks of the agent's host (its "clk_tck" comes along), bytes, operations,
 * nanoseconds. Monotonic counters stay counters; rates are the monitor's.
 * A figure the agent could not read is absent, never zero.
 */
#ifndef YUN_AGENT_SAMPLE_MSG_H
#define YUN_AGENT_SAMPLE_MSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/yerr.h"

#define SAMPLE_MAX_VMS      4096
#define SAMPLE_MAX_VCPUS    64
#define SAMPLE_DEADLINE_MS  1000 /* default wait for QEMU's answers */
#define SAMPLE_DEADLINE_MAX 10000

/* One VM to sample: its id and its QEMU's pid. */
struct sample_target {
    char vm[37];
    pid_t pid;
};

struct host_counters {
    int64_t clk_tck; /* ticks per second of the CPU figures */
    int ncpus;       /* CPUs online; 0: not reported */
    bool have_cpu, have_mem, have_load, have_disk, have_net;
    uint64_t cpu_busy, cpu_total;      /* /proc/stat "cpu" jiffies */
    uint64_t mem_total, mem_available; /* bytes */
    double load1;
    uint64_t disk_rd_bytes, disk_wr_bytes;                               /* whole disks */
    uint64_t net_rx_bytes, net_tx_bytes, net_rx_packets, net_tx_packets; /* all but lo */
    /* KSM (/sys/kernel/mm/ksm; machine-wide): "ksm": {"run", "pages_shared",
     * "pages_sharing", "saved_bytes", "cpu_ticks"?}; cpu_ticks is ksmd's
     * utime + stime, absent when its thread was not found */
    bool have_ksm, have_ksmd;
    uint64_t ksm_run, ksm_pages_shared, ksm_pages_sharing, ksm_saved_bytes, ksmd_ticks;
};

struct vm_counters_raw {
    char vm[37];
    pid_t pid;
    bool have_cpu, have_rss, have_blk, have_balloon;
    bool qmp_timeout;   /* QEMU did not answer by the deadline */
    uint64_t cpu_ticks; /* the QEMU process: utime + stime */
    uint64_t rss;       /* bytes */
    int nvcpu;          /* 0: vCPU threads not known (yet) */
    uint64_t vcpu_ticks[SAMPLE_MAX_VCPUS];
    /* the vCPU threads' schedstat, summed: time on a CPU and time waiting
     * runnable for one (the host's view of the guest's steal time) */
    bool have_sched;
    uint64_t vcpu_run_ns, vcpu_wait_ns;
    uint64_t rd_bytes, wr_bytes, rd_ops, wr_ops, rd_ns, wr_ns; /* query-blockstats, summed */
    uint64_t balloon;                                          /* query-balloon "actual" */
    bool have_swap;
    uint64_t swap;            /* "swap": the VM's cgroup's swapped-out bytes */
    bool have_balloon_target; /* the host's balloon policy steers this VM ... */
    uint64_t balloon_target;  /* ... to this (agent_balloon.c), bytes */
};

/* Arguments: {"vms":[{"vm","pid"}...], "deadline_ms"?}. encode returns a new
 * object; decode validates (YE_INVALID_ARGUMENT) and hands back a malloc'd
 * array (NULL when empty). deadline_ms: 0 means the default. */
json_t *sample_args_encode(const struct sample_target *t, size_t n, int deadline_ms);
int sample_args_decode(json_t *args, struct sample_target **out, size_t *n, int *deadline_ms,
                       struct yerr *err);

json_t *sample_host_encode(const struct host_counters *h);
int sample_host_decode(json_t *j, struct host_counters *h, struct yerr *err);
json_t *sample_vm_encode(const struct vm_counters_raw *v);
int sample_vm_decode(json_t *j, struct vm_counters_raw *v, struct yerr *err);

/* The whole reply: {"host": {...}, "vms": [...]}. encode steals host and
 * vms (an array of encoded VMs); decode hands back a malloc'd array. */
json_t *sample_reply_encode(json_t *host, json_t *vms);
int sample_reply_decode(json_t *j, struct host_counters *h, struct vm_counters_raw **vms, size_t *n,
                        struct yerr *err);

/* The event an agent host pushes each interval ("host.sample", through
 * agent_push.c): the reply above plus "at", when the host read it (ms
 * since the epoch, its clock; 1..2^53). decode also refuses a host whose
 * available memory is more than its total, and a VM listed twice. */
json_t *sample_push_encode(json_t *reply, int64_t at);
int sample_push_decode(json_t *j, int64_t *at, struct host_counters *h,
                       struct vm_counters_raw **vms, size_t *n, struct yerr *err);

#endif
