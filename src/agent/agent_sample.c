/*
 * agent_sample.c - the sampling verb: this host's raw counters and those of
 * the VMs it runs, read here (from /proc and QEMU) so that the monitor
 * (src/monitor, controller side) never touches a host itself.
 *
 *   host.sample {"vms": [{"vm": id, "pid": n}...], "deadline_ms"?: 1..10000}
 *        -> {"host": {"clk_tck", "ncpus", "cpu": {busy,total}, "memory": {total,
 *                     available}, "load1", "disk": {read_bytes,write_bytes},
 *                     "net": {rx_bytes,tx_bytes,rx_packets,tx_packets}},
 *            "vms": [{"vm", "pid", "cpu_ticks", "rss", "vcpu_ticks": [..],
 *                     "vcpu_run_ns", "vcpu_wait_ns" (the vCPU threads'
 *                     /proc/PID/task/TID/schedstat, summed),
 *                     "blockstats": {rd_bytes,wr_bytes,rd_operations,
 *                     wr_operations,rd_total_time_ns,wr_total_time_ns},
 *                     "balloon", "balloon_target"? (the balloon policy's,
 *                     agent_balloon.c), "swap" (its cgroup's), "qmp_timeout"?: true}...]}
 *        The host's "ksm" counters are agent_ksm.c's (agent_ksm_read).
 *        (the encoding is sample_msg.c's). One verb for the host and all of
 *        its VMs: the monitor samples every interval, and across a network
 *        one round trip per host beats one per VM; the QMP questions to all
 *        the VMs are in flight at once, so the reply waits for the slowest
 *        QEMU only, and at most deadline_ms (default 1 s). A VM whose QEMU
 *        has not answered by then is reported without its QMP figures
 *        (blockstats, balloon, vCPU threads) and with "qmp_timeout": true;
 *        it never holds up the sample. A figure that could not be read is
 *        absent. The VM's pid is the controller's record: the QMP figures
 *        are asked only when this host runs that VM with that pid.
 *
 * QMP goes over the event connection yund keeps open (qmp_watch_command: no
 * connect, no handshake, never blocking). The vCPU thread ids come from
 * query-cpus-fast once per QEMU and are cached here (struct sample_tids),
 * dropped when the VM's QEMU is no longer the one this host runs.
 * Cancellable (the caller goes away): the reply is YE_CANCELLED.
 */
#include "agent/agent_ksm.h"
#include "agent/agent_local.h"
#include "agent/sample_msg.h"
#include "compute/engine.h"
#include "compute/qmp.h"
#include "lib/procfs.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sample_tids {
    struct sample_tids *next;
    char vm[37];
    pid_t pid;
    int n;
    pid_t tids[SAMPLE_MAX_VCPUS];
};

struct sample_call;
struct probe {
    struct sample_call *call;
    char vm[37];
    pid_t pid;
    int waiting; /* QMP answers still to come for this VM */
    bool have_blk, have_balloon;
    uint64_t blk[6]; /* the order of struct vm_counters_raw's rd_bytes.. */
    uint64_t balloon;
};

struct sample_call {
    struct agent_op *op;
    struct agent_local *al;
    struct event *deadline;
    struct probe *p;
    size_t n;
    int waiting;
};

static char *slurp(const char *path)
{
    return read_file(path, 1 << 20, NULL);
}

static struct sample_tids *tids_find(struct agent_local *al, const char *vm, pid_t pid)
{
    for (struct sample_tids *t = al->sample_tids; t; t = t->next)
        if (!strcmp(t->vm, vm) && t->pid == pid)
            return t;
    return NULL;
}

/* Cache entries of QEMUs this host no longer runs. */
static void tids_prune(struct agent_local *al)
{
    struct engine *e = al->host;
    struct sample_tids **pp = &al->sample_tids;
    while (*pp) {
        struct sample_tids *t = *pp;
        struct vm_rt *rt = e ? engine_rt_find(e, t->vm) : NULL;
        if (rt && rt->pid == t->pid) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        free(t);
    }
}

void agent_sample_free(struct agent_local *al)
{
    while (al->sample_tids) {
        struct sample_tids *t = al->sample_tids;
        al->sample_tids = t->next;
        free(t);
    }
}

/* ---- reading ---- */

static void read_host(struct host_counters *h)
{
    long tck = sysconf(_SC_CLK_TCK);
    h->clk_tck = tck > 0 ? tck : 100;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    h->ncpus = nc > 0 && nc <= 65536 ? (int)nc : 0;
    char *st = slurp("/proc/stat"), *mi = slurp("/proc/meminfo"), *la = slurp("/proc/loadavg"),
         *ds = slurp("/proc/diskstats"), *nd = slurp("/proc/net/dev");
    h->have_cpu = procfs_stat_cpu(st, &h->cpu_busy, &h->cpu_total) == 0;
    h->have_mem = procfs_meminfo(mi, &h->mem_total, &h->mem_available) == 0;
    h->have_load = procfs_loadavg(la, &h->load1) == 0;
    h->have_disk = procfs_diskstats(ds, &h->disk_rd_bytes, &h->disk_wr_bytes) == 0;
    h->have_net = procfs_net_dev(nd, &h->net_rx_bytes, &h->net_tx_bytes, &h->net_rx_packets,
                                 &h->net_tx_packets) == 0;
    free(st);
    free(mi);
    free(la);
    free(ds);
    free(nd);
    agent_ksm_read(h);
}

static void read_vm(struct agent_local *al, const struct probe *p, struct vm_counters_raw *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->vm, sizeof v->vm, "%s", p->vm);
    v->pid = p->pid;
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p->pid);
    char *st = slurp(path);
    v->have_cpu = procfs_pid_cpu_ticks(st, &v->cpu_ticks) == 0;
    free(st);
    snprintf(path, sizeof path, "/proc/%d/status", (int)p->pid);
    char *status = slurp(path);
    v->have_rss = procfs_status_rss(status, &v->rss) == 0;
    free(status);
    const struct sample_tids *t = tids_find(al, p->vm, p->pid);
    for (int i = 0; t && i < t->n; i++) {
        snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)p->pid, (int)t->tids[i]);
        char *ts = slurp(path);
        if (procfs_pid_cpu_ticks(ts, &v->vcpu_ticks[i]) == 0)
            v->nvcpu = i + 1;
        else
            i = t->n; /* a thread gone: report the ones before it */
        free(ts);
    }
    /* the vCPUs' run and run-queue wait: all of them or none */
    uint64_t run = 0, wait = 0;
    bool all = t && t->n > 0;
    for (int i = 0; all && i < t->n; i++) {
        snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)p->pid, (int)t->tids[i]);
        char *ss = slurp(path);
        uint64_t r, w;
        all = procfs_schedstat(ss, &r, &w) == 0;
        run += all ? r : 0;
        wait += all ? w : 0;
        free(ss);
    }
    v->have_sched = all;
    v->vcpu_run_ns = run;
    v->vcpu_wait_ns = wait;
    v->have_blk = p->have_blk;
    v->rd_bytes = p->blk[0];
    v->wr_bytes = p->blk[1];
    v->rd_ops = p->blk[2];
    v->wr_ops = p->blk[3];
    v->rd_ns = p->blk[4];
    v->wr_ns = p->blk[5];
    v->have_balloon = p->have_balloon;
    v->balloon = p->balloon;
    v->have_balloon_target = agent_balloon_target(al, p->vm, p->pid, &v->balloon_target);
    v->qmp_timeout = p->waiting > 0;
    struct engine *e = al->host;
    if (e && engine_rt_find(e, p->vm)) {
        char group[48];
        snprintf(group, sizeof group, "vm-%.36s", p->vm); /* engine_vm_cgroup's name */
        int64_t sw = cg_vm_swap_bytes(&e->cg, group);
        v->have_swap = sw >= 0;
        v->swap = sw >= 0 ? (uint64_t)sw : 0;
    }
}

/* ---- the call ---- */

static void call_free(struct sample_call *c)
{
    struct engine *e = c->al->host;
    for (size_t i = 0; i < c->n; i++) {
        struct vm_rt *rt = e ? engine_rt_find(e, c->p[i].vm) : NULL;
        if (rt && rt->watch)
            qmp_watch_forget(rt->watch, &c->p[i]);
    }
    if (c->deadline)
        event_free(c->deadline);
    free(c->p);
    free(c);
}

static void finish(struct sample_call *c)
{
    struct host_counters h;
    read_host(&h);
    json_t *vms = json_array();
    for (size_t i = 0; i < c->n; i++) {
        struct vm_counters_raw v;
        read_vm(c->al, &c->p[i], &v);
        json_array_append_new(vms, sample_vm_encode(&v));
    }
    agent_op_reply(c->op, sample_reply_encode(sample_host_encode(&h), vms), NULL);
    call_free(c);
}

static void answered(struct probe *p)
{
    struct sample_call *c = p->call;
    p->waiting--;
    if (--c->waiting == 0)
        finish(c);
}

static uint64_t jint(json_t *o, const char *k)
{
    json_t *x = json_object_get(o, k);
    return json_is_integer(x) && json_integer_value(x) > 0 ? (uint64_t)json_integer_value(x) : 0;
}

static void on_cpus(void *ctx, json_t *ret, const char *err)
{
    struct probe *p = ctx;
    struct agent_local *al = p->call->al;
    if (json_is_array(ret)) {
        struct sample_tids *t = tids_find(al, p->vm, p->pid);
        if (!t && (t = calloc(1, sizeof *t))) {
            snprintf(t->vm, sizeof t->vm, "%s", p->vm);
            t->pid = p->pid;
            t->next = al->sample_tids;
            al->sample_tids = t;
        }
        size_t i;
        json_t *cpu;
        if (t)
            t->n = 0;
        json_array_foreach(ret, i, cpu)
        {
            json_t *tid = json_object_get(cpu, "thread-id");
            if (t && t->n < SAMPLE_MAX_VCPUS && json_is_integer(tid) &&
                json_integer_value(tid) > 0 && json_integer_value(tid) <= INT32_MAX)
                t->tids[t->n++] = (pid_t)json_integer_value(tid);
        }
    }
    answered(p);
}

static void on_blockstats(void *ctx, json_t *ret, const char *err)
{
    struct probe *p = ctx;
    if (json_is_array(ret)) {
        static const char *const k[6] = {"rd_bytes",      "wr_bytes",         "rd_operations",
                                         "wr_operations", "rd_total_time_ns", "wr_total_time_ns"};
        memset(p->blk, 0, sizeof p->blk);
        size_t i;
        json_t *d;
        json_array_foreach(ret, i, d)
        {
            json_t *s = json_object_get(d, "stats");
            for (int f = 0; f < 6; f++)
                p->blk[f] += jint(s, k[f]);
        }
        p->have_blk = true;
    }
    answered(p);
}

static void on_balloon(void *ctx, json_t *ret, const char *err)
{
    struct probe *p = ctx;
    uint64_t actual = jint(ret, "actual");
    if (actual) {
        p->balloon = actual;
        p->have_balloon = true;
    }
    answered(p);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    finish(arg); /* the VMs still waited for go without their QMP figures */
}

static void on_cancel(struct agent_op *op, void *arg)
{
    agent_op_fail(op, YE_CANCELLED, "host.sample: cancelled");
    call_free(arg);
}

static void ask(struct sample_call *c, struct probe *p, struct qmp_watch *w, const char *cmd,
                qmp_reply_cb cb)
{
    if (qmp_watch_command(w, cmd, NULL, cb, p) == 0) {
        p->waiting++;
        c->waiting++;
    }
}

static void host_sample(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct sample_target *t;
    size_t n;
    int deadline_ms;
    struct yerr err = {0};
    if (sample_args_decode(args, &t, &n, &deadline_ms, &err) < 0) {
        agent_op_reply(op, NULL, &err);
        return;
    }
    struct sample_call *c = calloc(1, sizeof *c);
    struct probe *p = n ? calloc(n, sizeof *p) : NULL;
    if (!c || (n && !p)) {
        free(c);
        free(p);
        free(t);
        agent_op_fail(op, YE_INTERNAL, "host.sample: out of memory");
        return;
    }
    c->op = op;
    c->al = al;
    c->p = p;
    c->n = n;
    struct engine *e = al->host;
    tids_prune(al);
    for (size_t i = 0; i < n; i++) {
        p[i].call = c;
        snprintf(p[i].vm, sizeof p[i].vm, "%s", t[i].vm);
        p[i].pid = t[i].pid;
        struct vm_rt *rt = e ? engine_rt_find(e, t[i].vm) : NULL;
        if (!rt || !rt->watch || rt->pid != t[i].pid)
            continue; /* not this host's QEMU of that VM: /proc figures only */
        if (!tids_find(al, t[i].vm, t[i].pid))
            ask(c, &p[i], rt->watch, "query-cpus-fast", on_cpus);
        ask(c, &p[i], rt->watch, "query-blockstats", on_blockstats);
        ask(c, &p[i], rt->watch, "query-balloon", on_balloon);
    }
    free(t);
    if (c->waiting == 0) {
        finish(c);
        return;
    }
    c->deadline = evtimer_new(al->base, on_deadline, c);
    struct timeval tv = {deadline_ms / 1000, (deadline_ms % 1000) * 1000};
    if (!c->deadline || evtimer_add(c->deadline, &tv) < 0) {
        finish(c);
        return;
    }
    agent_op_on_cancel(op, on_cancel, c);
}

const struct agent_verb_def agent_sample_verbs[] = {
    {AV_HOST_SAMPLE, "host.sample", host_sample},
};
const size_t agent_sample_verbs_count = sizeof agent_sample_verbs / sizeof agent_sample_verbs[0];
