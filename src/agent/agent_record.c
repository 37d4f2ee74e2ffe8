/*
 * agent_record.c - an agent host's own record of the QEMUs it launched,
 * STATE/agent-vms.json (docs/cluster.md, "The agent's record").
 *
 * One entry per QEMU: the VM's id, name and uid, the pid and its start time
 * (/proc/PID/stat field 22, so a reused pid is never taken for the QEMU),
 * when it was launched, and the cgroup limits vm.attach puts back. Made when
 * vm.launch succeeds (agent_launch.c) or vm.attach watches a QEMU the record
 * misses (agent_attach.c), dropped on "vm.exited" and on a
 * vm.end that ended it or a vm.remove (agent_local.c). At the agent's start
 * (role_agent.c) agent_record_recover() attaches every QEMU that still runs
 * through vm.attach, and reports the others as exited while the agent was
 * down, so neither needs the controller to be there.
 *
 * Writes are off the loop: the loop only renders the record (a few hundred
 * bytes an entry, AGENT_RECORD_MAX entries at most) and hands the text to a
 * writer thread, which writes it atomically (a temporary file, fsync,
 * rename, fsync of the directory; mode 0600). A newer text replaces one not
 * yet written, so a burst of launches costs one write. The thread touches
 * nothing of the loop's but the text handed over under its own mutex (the
 * loop's forks of QEMU and qemu-img stay safe: glibc's fork resets malloc's
 * locks in the child). The file is read
 * once, at start, before the agent serves; it is checked like any outside
 * input: a file that is not a record is logged and renamed aside.
 */
#include "agent/agent_record.h"
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/qemu_proc.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RECORD_FILE_MAX (8u << 20)

struct agent_record {
    char path[PATH_MAX];
    char dir[PATH_MAX];
    struct agent_record_entry *e;
    size_t n, cap;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    char *pending; /* the text the writer writes next */
    bool busy, stop;
};

/* ---- the text ---- */

char *agent_record_dump(const struct agent_record_entry *e, size_t n)
{
    json_t *vms = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            vms,
            json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:s}", "vm", e[i].vm, "name",
                      e[i].name, "uid", (json_int_t)e[i].uid, "pid", (json_int_t)e[i].pid, "start",
                      (json_int_t)e[i].start, "launched_at", (json_int_t)e[i].launched_at,
                      "memory_mb", (json_int_t)e[i].memory_mb, "accel", e[i].accel, "cpu_weight",
                      (json_int_t)e[i].cpu_weight, "cpu_quota_us", (json_int_t)e[i].cpu_quota_us,
                      "cpu_period_us", (json_int_t)e[i].cpu_period_us, "cpuset", e[i].cpuset));
    for (size_t i = 0; i < n; i++)
        json_object_update_new(json_array_get(vms, i),
                               json_pack("{s:I,s:I,s:b}", "memory_swap_mb",
                                         (json_int_t)e[i].memory_swap_mb, "memory_high_mb",
                                         (json_int_t)e[i].memory_high_mb, "memory_lock",
                                         e[i].memory_lock != 0));
    json_t *root = json_pack("{s:i,s:o}", "version", 1, "vms", vms);
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return s;
}

static bool vm_id_ok(const char *s)
{
    size_t len = s ? strlen(s) : 0;
    return len && len <= 36 && strspn(s, "0123456789abcdef-") == len;
}

/* A string field of at most max-1 bytes into out; false when it is not. */
static bool str_field(json_t *o, const char *key, char *out, size_t max)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || strlen(s) >= max)
        return false;
    snprintf(out, max, "%s", s);
    return true;
}

static bool int_field(json_t *o, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *j = json_object_get(o, key);
    if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > hi)
        return false;
    *out = json_integer_value(j);
    return true;
}

/* Each field may be absent (a record from before them): the defaults. */
static int memory_policy_parse(json_t *o, struct agent_record_entry *e)
{
    json_int_t sw = -1, hi = 0;
    json_t *lk = json_object_get(o, "memory_lock");
    if ((json_object_get(o, "memory_swap_mb") &&
         !int_field(o, "memory_swap_mb", -1, 16LL << 20, &sw)) ||
        (json_object_get(o, "memory_high_mb") &&
         !int_field(o, "memory_high_mb", 0, 16LL << 20, &hi)) ||
        (lk && !json_is_boolean(lk)))
        return -1;
    e->memory_swap_mb = sw;
    e->memory_high_mb = (uint64_t)hi;
    e->memory_lock = json_is_true(lk);
    return 0;
}

static int entry_parse(json_t *o, struct agent_record_entry *e, char *why, size_t whylen)
{
    memset(e, 0, sizeof *e);
    json_int_t uid, pid, start, at, mem, w, q, p;
    const char *bad = NULL;
    if (!json_is_object(o))
        bad = "an entry is not an object";
    else if (!str_field(o, "vm", e->vm, sizeof e->vm) || !vm_id_ok(e->vm))
        bad = "\"vm\" is not a VM id";
    else if (!str_field(o, "name", e->name, sizeof e->name) || !e->name[0])
        bad = "\"name\" is not a name";
    else if (!int_field(o, "uid", 0, UINT32_MAX, &uid))
        bad = "\"uid\" is out of range";
    else if (!int_field(o, "pid", 2, INT_MAX, &pid))
        bad = "\"pid\" is not a process id";
    else if (!int_field(o, "start", 0, INT64_MAX, &start))
        bad = "\"start\" is out of range";
    else if (!int_field(o, "launched_at", 0, INT64_MAX, &at))
        bad = "\"launched_at\" is out of range";
    else if (!int_field(o, "memory_mb", 0, 16LL << 20, &mem))
        bad = "\"memory_mb\" is out of range";
    else if (!str_field(o, "accel", e->accel, sizeof e->accel))
        bad = "\"accel\" is not a string of at most 7 bytes";
    else if (!int_field(o, "cpu_weight", 0, 10000, &w))
        bad = "\"cpu_weight\" is out of range";
    else if (!int_field(o, "cpu_quota_us", 0, INT64_MAX, &q) ||
             !int_field(o, "cpu_period_us", 0, INT64_MAX, &p))
        bad = "a CPU quota is out of range";
    else if (!str_field(o, "cpuset", e->cpuset, sizeof e->cpuset))
        bad = "\"cpuset\" is not a string of at most 63 bytes";
    else if (memory_policy_parse(o, e) < 0)
        bad = "a memory policy field is out of range";
    if (bad) {
        snprintf(why, whylen, "%s", bad);
        return -1;
    }
    e->uid = (uint32_t)uid;
    e->pid = (pid_t)pid;
    e->start = (uint64_t)start;
    e->launched_at = at;
    e->memory_mb = (uint64_t)mem;
    e->cpu_weight = (unsigned)w;
    e->cpu_quota_us = (uint64_t)q;
    e->cpu_period_us = (uint64_t)p;
    return 0;
}

int agent_record_parse(const char *text, struct agent_record_entry **out, size_t *n, char *why,
                       size_t whylen)
{
    *out = NULL;
    *n = 0;
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(why, whylen, "not JSON: %s (line %d)", jerr.text, jerr.line);
        return -1;
    }
    json_t *vms = json_object_get(root, "vms");
    json_int_t version = 0;
    int rc = -1;
    if (!json_is_object(root) || !int_field(root, "version", 1, 1, &version))
        snprintf(why, whylen, "not a record of version 1");
    else if (!json_is_array(vms) || json_array_size(vms) > AGENT_RECORD_MAX)
        snprintf(why, whylen, "\"vms\" is not an array of at most %d entries", AGENT_RECORD_MAX);
    else
        rc = 0;
    size_t cnt = rc == 0 ? json_array_size(vms) : 0;
    struct agent_record_entry *e = cnt ? calloc(cnt, sizeof *e) : NULL;
    if (cnt && !e) {
        snprintf(why, whylen, "out of memory");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < cnt; i++) {
        char w[160];
        if (entry_parse(json_array_get(vms, i), &e[i], w, sizeof w) < 0) {
            snprintf(why, whylen, "entry %zu: %s", i, w);
            rc = -1;
        }
        for (size_t k = 0; rc == 0 && k < i; k++)
            if (!strcmp(e[k].vm, e[i].vm)) {
                snprintf(why, whylen, "entry %zu: VM %s is in the record twice", i, e[i].vm);
                rc = -1;
            }
    }
    json_decref(root);
    if (rc < 0) {
        free(e);
        return -1;
    }
    *out = e;
    *n = cnt;
    return 0;
}

bool agent_record_alive(const struct agent_record_entry *e)
{
    uint64_t start;
    if (e->pid <= 1 || job_proc_start_time(e->pid, &start) < 0 || start != e->start)
        return false;
    return qemu_pid_state(e->pid, e->vm, e->uid) == PID_LIVE;
}

/* ---- the writer ---- */

static void write_text(struct agent_record *r, const char *text)
{
    if (write_file_atomic(r->path, text, strlen(text), 0600) < 0) {
        log_warn("agent record: cannot write %s: %s", r->path, strerror(errno));
        return;
    }
    int fd = open(r->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* the rename itself is durable */
        close(fd);
    }
}

static void *writer(void *arg)
{
    struct agent_record *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->pending && !r->stop)
            pthread_cond_wait(&r->wake, &r->mu);
        if (!r->pending)
            break;
        char *text = r->pending;
        r->pending = NULL;
        r->busy = true;
        pthread_mutex_unlock(&r->mu);
        write_text(r, text);
        free(text);
        pthread_mutex_lock(&r->mu);
        r->busy = false;
        pthread_cond_broadcast(&r->idle);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void save(struct agent_record *r)
{
    char *text = agent_record_dump(r->e, r->n);
    if (!text) {
        log_warn("agent record: out of memory: %s not written", r->path);
        return;
    }
    pthread_mutex_lock(&r->mu);
    free(r->pending);
    r->pending = text;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
}

void agent_record_flush(struct agent_record *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    while (r->pending || r->busy)
        pthread_cond_wait(&r->idle, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

/* ---- open and free ---- */

static void load(struct agent_record *r)
{
    size_t len = 0;
    errno = 0;
    char *text = read_file(r->path, RECORD_FILE_MAX, &len);
    if (!text) {
        if (errno != ENOENT)
            log_warn("agent record: cannot read %s: %s; starting with an empty record", r->path,
                     strerror(errno ? errno : EIO));
        return;
    }
    char why[256];
    bool ok = strlen(text) == len && agent_record_parse(text, &r->e, &r->n, why, sizeof why) == 0;
    if (strlen(text) != len)
        snprintf(why, sizeof why, "a NUL byte in it");
    free(text);
    if (ok) {
        r->cap = r->n;
        log_info("agent record: %zu QEMUs in %s", r->n, r->path);
        return;
    }
    char aside[PATH_MAX + 32];
    snprintf(aside, sizeof aside, "%s.bad-%lld", r->path, (long long)now_ms());
    if (rename(r->path, aside) < 0)
        log_warn("agent record: %s is not a record (%s), and cannot be renamed: %s", r->path, why,
                 strerror(errno));
    else
        log_warn("agent record: %s is not a record (%s): renamed %s; starting empty", r->path, why,
                 aside);
}

struct agent_record *agent_record_open(const char *state_dir)
{
    struct agent_record *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (snprintf_checked(r->path, sizeof r->path, "%s/" AGENT_RECORD_FILE, state_dir) < 0) {
        log_err("agent record: state directory path too long");
        free(r);
        return NULL;
    }
    snprintf(r->dir, sizeof r->dir, "%s", state_dir);
    load(r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, NULL);
    pthread_cond_init(&r->idle, NULL);
    if (pthread_create(&r->thread, NULL, writer, r) != 0) {
        log_err("agent record: cannot start its writer");
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->wake);
        pthread_cond_destroy(&r->idle);
        free(r->e);
        free(r);
        return NULL;
    }
    return r;
}

void agent_record_free(struct agent_record *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true; /* the writer writes what is pending first */
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->idle);
    free(r->pending);
    free(r->e);
    free(r);
}

/* ---- entries ---- */

size_t agent_record_count(const struct agent_record *r)
{
    return r ? r->n : 0;
}

const struct agent_record_entry *agent_record_get(const struct agent_record *r, size_t i)
{
    return r && i < r->n ? &r->e[i] : NULL;
}

const struct agent_record_entry *agent_record_find(const struct agent_record *r, const char *vm)
{
    for (size_t i = 0; r && vm && i < r->n; i++)
        if (!strcmp(r->e[i].vm, vm))
            return &r->e[i];
    return NULL;
}

void agent_record_launched(struct agent_record *r, const struct vm_rec *vm, pid_t pid)
{
    if (!r || pid <= 1 || !vm_id_ok(vm->id))
        return;
    struct agent_record_entry *e = (struct agent_record_entry *)agent_record_find(r, vm->id);
    if (!e) {
        if (r->n >= AGENT_RECORD_MAX) {
            log_warn("agent record: full (%d QEMUs): vm %s not recorded", AGENT_RECORD_MAX,
                     vm->name);
            return;
        }
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            struct agent_record_entry *ne = realloc(r->e, cap * sizeof *ne);
            if (!ne) {
                log_warn("agent record: out of memory: vm %s not recorded", vm->name);
                return;
            }
            r->e = ne;
            r->cap = cap;
        }
        e = &r->e[r->n++];
    }
    memset(e, 0, sizeof *e);
    snprintf(e->vm, sizeof e->vm, "%s", vm->id);
    snprintf(e->name, sizeof e->name, "%s", vm->name[0] ? vm->name : vm->id);
    e->uid = vm->uid;
    e->pid = pid;
    if (job_proc_start_time(pid, &e->start) < 0)
        log_warn("vm %s: no start time for pid %d: it will not be found again", vm->name, (int)pid);
    e->launched_at = now_ms();
    e->memory_mb = vm->memory_mb;
    snprintf(e->accel, sizeof e->accel, "%s", vm->accel_used);
    e->cpu_weight = vm->cpu_weight;
    e->cpu_quota_us = vm->cpu_quota_us;
    e->cpu_period_us = vm->cpu_period_us;
    snprintf(e->cpuset, sizeof e->cpuset, "%s", vm->cpuset);
    e->memory_swap_mb = vm->memory_swap_mb;
    e->memory_high_mb = vm->memory_high_mb;
    e->memory_lock = vm->memory_lock;
    save(r);
}

void agent_record_forget(struct agent_record *r, const char *vm, pid_t pid)
{
    if (!r || !vm)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->e[i].vm, vm)) {
            if (pid > 0 && r->e[i].pid != pid)
                return; /* an older QEMU's news: the entry is a later one's */
            r->e[i] = r->e[--r->n];
            save(r);
            return;
        }
}

/* ---- recovery at start ---- */

struct recover {
    struct agent_record *r;
    struct agent *local;
    int waiting, attached;
};

struct recover_one {
    struct recover *rc;
    char vm[37];
    char name[64];
    pid_t pid;
    bool done;
};

/* The QEMU is gone, and nobody watched it go: the controller hears of it. */
static void report_gone(struct agent_record *r, struct agent *local, const char *vm, pid_t pid)
{
    struct engine *e = agent_local_of(local)->host;
    if (e) {
        struct vm_rec probe = {0};
        char group[48];
        snprintf(probe.id, sizeof probe.id, "%s", vm);
        engine_vm_cgroup(&probe, group);
        engine_cgroup_remove(e, group);
    }
    json_t *ev = json_pack("{s:s,s:I,s:b,s:b}", "vm", vm, "pid", (json_int_t)pid, "shutdown_seen",
                           0, "while_down", 1);
    agent_emit(local, "vm.exited", ev);
    json_decref(ev);
    agent_record_forget(r, vm, pid);
}

static void on_attached(void *ctx, json_t *res, const struct yerr *err)
{
    struct recover_one *o = ctx;
    struct recover *rc = o->rc;
    o->done = true;
    rc->waiting--;
    const char *seen = json_string_value(json_object_get(res, "seen"));
    if (err) {
        log_warn("vm %s: re-attach failed: %s", o->name, err->message);
    } else if (seen && !strcmp(seen, "up")) {
        rc->attached++;
        const char *e = json_string_value(json_object_get(res, "error"));
        log_info("vm %s: qemu pid %d attached again from the agent's record%s%s", o->name,
                 (int)o->pid, e ? ": " : "", e ? e : "");
        /* the controller has not seen this re-attach: its first vm.attach
         * that asks QEMU says "fresh" (and records it) */
        struct engine *eng = agent_local_of(rc->local)->host;
        struct vm_rt *rt = eng ? engine_rt_find(eng, o->vm) : NULL;
        if (rt && rt->watch)
            rt->reattach_fresh = true;
    } else if (seen && !strcmp(seen, "gone")) {
        report_gone(rc->r, rc->local, o->vm, o->pid);
    } else if (!json_is_true(json_object_get(res, "exiting"))) {
        log_warn("vm %s: qemu pid %d: %s; the controller's reconcile decides", o->name, (int)o->pid,
                 seen ? seen : "not settled");
    }
}

int agent_record_recover(struct agent_record *r, struct event_base *base, struct agent *local)
{
    if (!r || !local)
        return 0;
    struct recover rc = {.r = r, .local = local};
    /* a copy: report_gone changes the record */
    size_t n = r->n;
    struct agent_record_entry *copy = n ? malloc(n * sizeof *copy) : NULL;
    struct recover_one **ones = n ? calloc(n, sizeof *ones) : NULL;
    if (n && (!copy || !ones)) {
        free(copy);
        free(ones);
        return 0;
    }
    if (n)
        memcpy(copy, r->e, n * sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        const struct agent_record_entry *e = &copy[i];
        if (!agent_record_alive(e)) {
            log_info("vm %s: qemu pid %d exited while the agent was down", e->name, (int)e->pid);
            report_gone(r, local, e->vm, e->pid);
            continue;
        }
        struct recover_one *o = calloc(1, sizeof *o);
        if (!o)
            break;
        ones[i] = o;
        o->rc = &rc;
        o->pid = e->pid;
        snprintf(o->vm, sizeof o->vm, "%s", e->vm);
        snprintf(o->name, sizeof o->name, "%s", e->name);
        /* pass INT64_MAX: a walk of its own, never one of the controller's
         * passes (they count from 1) */
        json_t *args = json_pack(
            "{s:s,s:s,s:I,s:I,s:b,s:I,s:I,s:s,s:I,s:I,s:I,s:s}", "vm", e->vm, "name", e->name,
            "uid", (json_int_t)e->uid, "pid", (json_int_t)e->pid, "check", 1, "pass",
            (json_int_t)INT64_MAX, "memory_mb", (json_int_t)e->memory_mb, "accel", e->accel,
            "cpu_weight", (json_int_t)e->cpu_weight, "cpu_quota_us", (json_int_t)e->cpu_quota_us,
            "cpu_period_us", (json_int_t)e->cpu_period_us, "cpuset", e->cpuset);
        if (args)
            json_object_update_new(args, json_pack("{s:I,s:I,s:b}", "memory_swap_mb",
                                                   (json_int_t)e->memory_swap_mb, "memory_high_mb",
                                                   (json_int_t)e->memory_high_mb, "memory_lock",
                                                   e->memory_lock != 0));
        if (!agent_call(local, AV_VM_ATTACH, args, on_attached, NULL, o)) {
            o->done = true;
            continue;
        }
        rc.waiting++;
    }
    free(copy);
    /* vm.attach answers within its query-status bound (5 s) */
    while (rc.waiting > 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    for (size_t i = 0; i < n; i++) {
        if (ones[i] && !ones[i]->done)
            agent_forget(local, ones[i]); /* the loop stopped: no answer comes to it */
        free(ones[i]);
    }
    free(ones);
    return rc.attached;
}
