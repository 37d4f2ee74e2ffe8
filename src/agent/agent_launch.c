/*
 * agent_launch.c - the vm.launch verb: starting one VM's QEMU on this host
 * as a state machine on the event loop, nothing in it waiting.
 *
 *   vm.launch  {"vm": spec, "image": {...}, "volumes": [...]} (agent_wire.h)
 *              -> {"pid", "accel", "spawn_ms"}
 *
 * Steps: the two-QEMU guard (the process table, not only the pidfile, must
 * show no QEMU of the VM: YE_CONFLICT, or YE_UNAVAILABLE when /proc cannot
 * tell; nothing done then) -> the VM's cgroup with boot limits -> the uid
 * claim and files (a new uid is raised as "vm.uid" {vm, uid} before QEMU
 * exists, for the controller's row) -> any disk-layer rebase (qemu-img, a
 * job) -> QEMU spawned through job.c (paused, -S) -> the QMP event monitor
 * connected by retrying a connect on a timer, query-status and the
 * remove-fds for the fdsets QEMU no longer needs queued at once behind the
 * greeting, until QEMU answers (deadline SPAWN_TIMEOUT_MS; given up early
 * when the QEMU is gone) -> pidfile -> cont -> the VM's own cgroup limits
 * -> reply. Store writes are the controller's (ctl/vms_start.c).
 *
 * "incoming": true (a live migration's target, ctl/migrate*.c): QEMU gets
 * -incoming defer and is left paused, not cont'ed (the reply has "uid" and
 * "status"); its "vm.uid" event says "incoming": true, so the VM's row (still
 * on the source) keeps the source's uid. The controller conts it only once
 * the migrations row says committed. With "pci" its devices sit where the
 * source's do (agent_launch_incoming.c).
 *
 * On failure the error carries QEMU's own words (qemu.log since this start)
 * and nothing is left: the QEMU is ended (the vm.end verb, on timers), the
 * cgroup removed, the runtime entry dropped, and then the reply goes. When
 * the QEMU cannot be ended the reply is YE_UNAVAILABLE ("its qemu may still
 * run"); the cgroup and runtime entry stay for reconcile. Not cancellable:
 * a caller that leaves does not stop a start.
 */
#include "agent/agent_fence.h"
#include "agent/agent_local.h"
#include "agent/agent_pin.h"
#include "agent/agent_prexec.h"
#include "agent/agent_record.h"
#include "agent/agent_wire.h"
#include "compute/confine.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "compute/qemu_proc.h"
#include "compute/qmp.h"
#include "lib/failpoint.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/util.h"

#include <event2/event.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MS       5    /* between connects while QEMU is not listening yet */
#define CHECK_MS       20   /* liveness checks while its monitor is silent */
#define PIDFILE_MS     1000 /* a -daemonize QEMU writes its pidfile this soon */
#define CONT_TIMEOUT   5000
#define REBASE_TIMEOUT 60000

enum step { L_REBASE, L_SPAWN, L_QMP, L_REMOVE, L_PIDFILE, L_CONT, L_FAIL, L_ENDING };

struct launch {
    struct agent_op *op;
    struct agent_local *al;
    struct engine *e;
    struct launch_spec spec;
    struct vm_rec vm; /* spec.vm, pid and uid as they become known */
    struct volume_rec *vols;
    struct confine_volin *volin;
    struct vm_confine conf;
    struct confine_rebases fix;
    int next_fix, next_fd, removes_out; /* rebases done; fdsets sent, replies due */
    char group[48];
    struct cg_limits lim;
    bool cg;
    struct launch_prexec ce; /* agent_prexec.c: the cgroup, RLIMIT_MEMLOCK */
    struct qemu_argv qa;
    bool qa_built;
    struct confine_spawn sp;
    struct job *job;
    char qemulog[512];
    off_t log_off;
    pid_t pid;
    struct vm_rt *rt;
    struct event *timer;
    enum step step;
    struct launch_incoming inc; /* a migration's target: -incoming defer, no cont */
    bool ha;                    /* an HA VM: the self-fencing keeper watches its QEMU */
    int64_t t_spawn, deadline, pid_deadline;
    int64_t t0, t_forked, t_answer; /* in us: the verb, the spawn job's start, QMP's first answer */
    enum yerr_code fail_code;       /* L_FAIL: a failure seen inside a QMP callback */
    char fail_msg[400];
    char msg[512];           /* L_ENDING: the error the reply will carry */
    enum yerr_code msg_code; /* ... and its code */
    uint64_t end_call;       /* the vm.end call of a failure, while it runs */
};

/* For the debug line's time split: microseconds, monotonic. */
static void launch_free(struct launch *L)
{
    if (L->end_call)
        agent_forget(&L->al->pub, L); /* yund stops while a failure ends its QEMU */
    if (L->rt && L->rt->launch == L) {
        qmp_watch_forget(L->rt->watch, L);
        L->rt->launch = NULL;
        L->rt->launch_lost = NULL;
        L->rt->launch_abandon = NULL;
    }
    if (L->job)
        job_detach(L->job, true);
    if (L->qa_built)
        qemu_argv_free(&L->qa);
    vm_confine_spawn_close(&L->sp);
    if (L->timer)
        event_free(L->timer);
    launch_spec_free(&L->spec);
    free(L->vols);
    free(L->volin);
    free(L);
}

/* QEMU's words in qemu.log since this start, else the job's last line. */
static void qemu_words(struct launch *L, const char *fallback, char *out, size_t len)
{
    char said[400] = "";
    if (L->qemulog[0])
        qemu_log_since(L->qemulog, L->log_off, said, sizeof(said));
    snprintf(out, len, "%s", said[0] ? said : fallback && fallback[0] ? fallback : "");
}

/* The failure's last step, once vm.end has answered: with no QEMU of the
 * VM left, the cgroup and the runtime entry go and the reply is the
 * launch's error; otherwise they stay for reconcile and the reply says its
 * QEMU may still run (the controller leaves the row to reconcile then). */
static void on_ended(void *ctx, json_t *result, const struct yerr *err)
{
    struct launch *L = ctx;
    struct engine *e = L->e;
    struct agent_op *op = L->op;
    char msg[sizeof L->msg];
    snprintf(msg, sizeof msg, "%s", L->msg);
    L->end_call = 0;
    if (err || !json_is_true(json_object_get(result, "ended"))) {
        engine_reconcile_soon(e);
        launch_free(L); /* the runtime entry and cgroup stay: reconcile's */
        agent_op_fail(op, YE_UNAVAILABLE, "%s (its qemu may still run)", msg);
        return;
    }
    if (L->cg)
        engine_cgroup_remove(e, L->group);
    struct vm_rt *rt = L->rt;
    L->rt = NULL;
    if (rt) {
        qmp_watch_forget(rt->watch, L);
        rt->launch = NULL;
        rt->launch_lost = NULL;
        rt->launch_abandon = NULL;
        engine_rt_drop(e, rt);
    }
    enum yerr_code code = L->msg_code;
    launch_free(L);
    agent_op_fail(op, code, "%s", msg);
}

/* Whatever got as far as spawning QEMU must not leave it behind: the
 * failure ends every process of the VM through vm.end (agent_power.c: the
 * process table and pidfile, SIGTERM, SIGKILL after 2 s, never waiting on
 * the loop) and replies when that has answered, at once when none lives,
 * the usual failure. Until then the VM stays "being started" (a second
 * launch is refused, reconcile leaves it alone), and an EOF or a timer of
 * the launch changes nothing. */
static void launch_fail(struct launch *L, enum yerr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void launch_fail(struct launch *L, enum yerr_code code, const char *fmt, ...)
{
    if (L->step == L_ENDING)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->msg, sizeof L->msg, fmt, ap);
    va_end(ap);
    L->msg_code = code;
    L->step = L_ENDING;
    if (L->job) {
        job_detach(L->job, true);
        L->job = NULL;
    }
    if (L->timer)
        evtimer_del(L->timer);
    if (L->rt)
        qmp_watch_forget(L->rt->watch, L);
    json_t *args = json_pack("{s:s,s:I}", "vm", L->vm.id, "uid", (json_int_t)L->vm.uid);
    if (args && L->pid > 0)
        json_object_set_new(args, "pid", json_integer(L->pid));
    struct agent *a = &L->al->pub;
    L->end_call = args ? agent_call(a, AV_VM_END, args, on_ended, NULL, L) : 0;
    if (!L->end_call) {
        struct yerr err;
        yerr_set(&err, YE_INTERNAL, "agent: vm.end could not be called");
        on_ended(L, NULL, &err); /* the QEMU may still run: reconcile's */
    }
}

static void arm(struct launch *L, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(L->timer, &tv);
}

/* A QMP reply callback runs inside the watch's read loop, which must not
 * be closed under it: the failure is settled from the timer. */
static void fail_later(struct launch *L, enum yerr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_later(struct launch *L, enum yerr_code code, const char *fmt, ...)
{
    if (L->step == L_ENDING)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->fail_msg, sizeof L->fail_msg, fmt, ap);
    va_end(ap);
    L->fail_code = code;
    L->step = L_FAIL;
    if (L->rt)
        qmp_watch_forget(L->rt->watch, L);
    arm(L, 0);
}

/* ---- the end: cont, the VM's limits, the reply ---- */

/* The QEMU runs: recorded, fenced, its threads pinned (agent_pin.c, after
 * the cgroup's limits; a migration's target has its vCPU threads already). */
static void launched(struct launch *L)
{
    agent_record_launched(agent_op_agent(L->op)->record, &L->vm, L->pid);
    if (L->ha) /* the self-fencing keeper's to kill when this host's lease lapses */
        agent_fence_watch_qemu(agent_op_agent(L->op)->fence, L->vm.id, L->vm.name, L->pid);
    agent_pin_launched(L->e, L->rt, &L->vm);
}

static void on_cont(void *ctx, json_t *ret, const char *err)
{
    struct launch *L = ctx;
    struct engine *e = L->e;
    char why[256];
    if (L->step != L_CONT)
        return;
    evtimer_del(L->timer);
    if (err) {
        fail_later(L, YE_QEMU_ERROR, "QMP cont: %s", err);
        return;
    }
    if (L->cg && cg_vm_setup(&e->cg, L->group, &L->lim, why, sizeof(why)) < 0) {
        fail_later(L, YE_CGROUP_ERROR, "%s", why);
        return;
    }
    FAILPOINT("vm_start.after_cont");
    snprintf(L->rt->qmp_status, sizeof(L->rt->qmp_status), "running");
    /* QEMU's own part is from the fork to its first QMP answer; the rest
     * (before the fork, and after the answer) is yund's */
    int64_t t_end = monotonic_us();
    log_debug("vm %s launch: %.1f ms before the fork, qemu spawn %lld ms, QMP answered after "
              "%.1f ms, %.1f ms from that answer to cont done; total %.1f ms",
              L->vm.name, (double)(L->t_forked - L->t0) / 1000, (long long)L->t_spawn,
              (double)(L->t_answer - L->t_forked) / 1000, (double)(t_end - L->t_answer) / 1000,
              (double)(t_end - L->t0) / 1000);
    json_t *r = json_pack("{s:i,s:s,s:I}", "pid", (int)L->pid, "accel", L->vm.accel_used,
                          "spawn_ms", (json_int_t)L->t_spawn);
    struct agent_op *op = L->op;
    launched(L);
    launch_free(L);
    agent_op_reply(op, r, NULL);
}

static void incoming_ready(struct launch *L)
{
    FAILPOINT("migrate_target.after_launch");
    snprintf(L->rt->qmp_status, sizeof(L->rt->qmp_status), "inmigrate");
    json_t *r = json_pack("{s:i,s:s,s:I,s:I,s:s}", "pid", (int)L->pid, "accel", L->vm.accel_used,
                          "spawn_ms", (json_int_t)L->t_spawn, "uid", (json_int_t)L->vm.uid,
                          "status", "inmigrate");
    struct agent_op *op = L->op;
    launched(L);
    launch_free(L);
    agent_op_reply(op, r, NULL);
}

static void send_cont(struct launch *L)
{
    L->rt->pid = L->pid;
    if (L->inc.on) {
        incoming_ready(L); /* paused: the controller conts it after the commit */
        return;
    }
    FAILPOINT("vm_start.after_pid");
    FAILPOINT("vm_start.after_watch");
    L->step = L_CONT;
    if (qmp_watch_command(L->rt->watch, "cont", NULL, on_cont, L) < 0) {
        fail_later(L, YE_QEMU_ERROR, "QMP cont: too many commands in flight");
        return;
    }
    arm(L, CONT_TIMEOUT);
}

static int read_pidfile(struct launch *L, pid_t *pid)
{
    char path[512];
    engine_vm_path(L->e, &L->vm, VMDIR_PIDFILE, path, sizeof(path));
    char *s = read_file(path, 64, NULL);
    if (!s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    bool ok = v > 1 && (!*end || *end == '\n');
    free(s);
    if (!ok)
        return -1;
    *pid = (pid_t)v;
    return 0;
}

/* A confined QEMU cannot write its pidfile (qemu_argv.c): it is written
 * here once QEMU answers; a -daemonize one writes its own. */
static void pidfile_step(struct launch *L)
{
    L->step = L_PIDFILE;
    if (L->conf.on) {
        if (qemu_pidfile_write(L->e->vms_dir, L->vm.id, L->pid) < 0) {
            fail_later(L, YE_QEMU_ERROR, "cannot write %s: %s", VMDIR_PIDFILE, strerror(errno));
            return;
        }
        send_cont(L);
        return;
    }
    pid_t pid = 0;
    if (read_pidfile(L, &pid) == 0) {
        L->pid = pid;
        send_cont(L);
        return;
    }
    if (!L->pid_deadline)
        L->pid_deadline = monotonic_ms() + PIDFILE_MS;
    if (monotonic_ms() > L->pid_deadline) {
        fail_later(L, YE_QEMU_ERROR, "qemu started but wrote no pidfile");
        return;
    }
    arm(L, 2);
}

/* The nodes opened from the fdsets hold their own fds now: drop the sets,
 * so that a volume detached later is closed for good. The image's set
 * stays: its number is how yund knows the image among QEMU's nodes
 * (vm_snapshots.c), and it must not be reused.
 *
 * They are pipelined: queued right behind the first query-status (QMP runs
 * commands in order, and only from its main loop, once every node is
 * open), so that by its answer QEMU has done them and cont follows at
 * once. Their replies only free room; a failure changes nothing. Sets
 * that do not fit the connection's room go out as replies come back. */
#define REMOVE_ROOM 3 /* slots left to others meanwhile (and to cont) */
static void remove_step(struct launch *L);
static void on_removed(void *ctx, json_t *ret, const char *err)
{
    struct launch *L = ctx;
    L->removes_out--;
    if (L->step == L_REMOVE)
        remove_step(L);
}

/* Sends what fits; true when every set is out. */
static bool remove_send(struct launch *L)
{
    while (L->conf.on && L->next_fd < L->conf.nfiles) {
        int i = L->next_fd;
        if (L->conf.files[i].memfd || i == L->conf.image) {
            L->next_fd++;
            continue;
        }
        if (L->removes_out > 0 && qmp_watch_room(L->rt->watch) <= REMOVE_ROOM)
            return false; /* later, as replies come back */
        json_t *args = json_pack("{s:i}", "fdset-id", i + 1);
        int rc = qmp_watch_command(L->rt->watch, "remove-fd", args, on_removed, L);
        json_decref(args);
        L->next_fd++; /* one that cannot be sent even alone is left to QEMU */
        if (rc == 0)
            L->removes_out++;
    }
    return true;
}

static void remove_step(struct launch *L)
{
    L->step = L_REMOVE;
    /* the rest (or room for cont) after a reply, which a live QEMU sends
     * at once */
    if (!remove_send(L) || (L->removes_out > 0 && qmp_watch_room(L->rt->watch) < 1)) {
        arm(L, CONT_TIMEOUT);
        return;
    }
    pidfile_step(L);
}

/* ---- waiting for QMP ---- */

static void on_answer(void *ctx, json_t *ret, const char *err)
{
    struct launch *L = ctx;
    if (L->step != L_QMP)
        return;
    evtimer_del(L->timer);
    if (err) {
        fail_later(L, YE_QEMU_ERROR, "QMP query-status: %s", err);
        return;
    }
    L->t_answer = monotonic_us();
    const char *st = json_string_value(json_object_get(ret, "status"));
    snprintf(L->rt->qmp_status, sizeof(L->rt->qmp_status), "%s", st ? st : "");
    remove_step(L);
}

/* The QEMU has exited (or is going): its own words say why. */
static void qemu_gone(struct launch *L)
{
    char words[400];
    qemu_words(L, "qemu exited during start-up", words, sizeof(words));
    launch_fail(L, YE_QEMU_ERROR, "qemu failed to start: %s", words);
}

static void on_lost(void *arg)
{
    /* EOF on the event connection: the watch is closed already */
    qemu_gone(arg);
}

/* yund stops with the start running: no reply (the agent goes too), the
 * row stays "starting" and the next run's reconcile settles it, as after a
 * kill -9 at this step. */
static void on_abandon(void *arg)
{
    struct launch *L = arg;
    log_warn("vm %s: yund stopped during its start", L->vm.name);
    launch_free(L);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct launch *L = arg;
    if (L->step == L_FAIL) {
        launch_fail(L, L->fail_code, "%s", L->fail_msg);
        return;
    }
    if (L->step == L_PIDFILE) {
        pidfile_step(L);
        return;
    }
    if (L->step == L_CONT || L->step == L_REMOVE) {
        launch_fail(L, YE_QEMU_ERROR, "QMP %s: no answer from QEMU in %d s",
                    L->step == L_CONT ? "cont" : "remove-fd", CONT_TIMEOUT / 1000);
        return;
    }
    if (L->step != L_QMP)
        return;
    if (!L->conf.on && L->pid <= 0) {
        pid_t p = 0;
        if (read_pidfile(L, &p) == 0)
            L->pid = p;
    }
    if (L->pid > 0 && pid_state(L->pid) == PID_GONE) {
        qemu_gone(L);
        return;
    }
    if (monotonic_ms() > L->deadline) {
        if (L->pid > 0)
            kill(L->pid, SIGKILL);
        launch_fail(L, YE_QEMU_ERROR, "qemu failed to start: no answer on QMP in %d s",
                    SPAWN_TIMEOUT_MS / 1000);
        return;
    }
    if (!L->rt->watch) {
        char why[256];
        if (engine_try_watch(L->e, L->rt, &L->vm, why, sizeof(why)) < 0) {
            arm(L, RETRY_MS); /* not listening yet */
            return;
        }
        /* QMP greets a client only from QEMU's main loop, after every device
         * is made and the uid dropped: its answer means QEMU is up. */
        if (qmp_watch_command(L->rt->watch, "query-status", NULL, on_answer, L) < 0) {
            launch_fail(L, YE_QEMU_ERROR, "QMP: cannot send query-status");
            return;
        }
        remove_send(L);
    }
    arm(L, CHECK_MS);
}

/* ---- spawn ---- */

/* The pidfile of an earlier run. Unconfined QEMU writes its own, so it goes
 * before the spawn; a confined QEMU's is written by yund once QEMU answers,
 * so it goes while QEMU starts up (a stale one names a dead pid, or one
 * without the VM's -uuid: qemu_seek looks past it). */
static void stale_pidfile(struct launch *L)
{
    char p[512];
    engine_vm_path(L->e, &L->vm, VMDIR_PIDFILE, p, sizeof(p));
    unlink(p);
}

static void on_spawned(void *ctx, const struct job_result *r)
{
    struct launch *L = ctx;
    L->job = NULL;
    L->t_spawn = monotonic_ms() - L->t_spawn;
    vm_confine_spawn_close(&L->sp);
    qemu_argv_free(&L->qa);
    L->qa_built = false;
    /* Confined, the child's pid line is what counts (its exit status can
     * be a tool's, e.g. valgrind's leak report as it exits); unconfined,
     * the status of QEMU's -daemonize parent says whether it started. */
    char *end = NULL;
    long q = L->conf.on ? strtol(r->out, &end, 10) : 0;
    bool forked = L->conf.on && q > 1 && (!*end || *end == '\n');
    if (L->conf.on ? !forked : r->status != 0) {
        char line[400], words[400];
        proc_last_line(r->err, line, sizeof(line));
        qemu_words(L,
                   line[0]      ? line
                   : L->conf.on ? "fork failed"
                                : "no message (see qemu.log)",
                   words, sizeof(words));
        launch_fail(L, YE_QEMU_ERROR, "qemu failed to start: %s", words);
        return;
    }
    if (forked) {
        L->pid = (pid_t)q;
        stale_pidfile(L); /* while QEMU starts up; the pid it names is not the new QEMU's */
    }
    FAILPOINT("vm_start.after_spawn");
    L->step = L_QMP;
    L->deadline = monotonic_ms() + SPAWN_TIMEOUT_MS;
    arm(L, 0);
}

static void spawn(struct launch *L)
{
    struct engine *e = L->e;
    char dir[512], why[256];
    L->step = L_SPAWN;
    engine_vm_path(e, &L->vm, NULL, dir, sizeof(dir));
    if (qemu_argv_build(e->cfg->qemu_binary, &L->vm, &L->spec.img, dir, L->vm.accel_used, L->vols,
                        L->spec.nvols, &L->conf, &L->qa, why, sizeof(why)) < 0) {
        launch_fail(L, YE_INVALID_ARGUMENT, "%s", why);
        return;
    }
    L->qa_built = true;
    if (launch_incoming_argv(&L->inc, &L->qa, why, sizeof why) < 0) {
        launch_fail(L, YE_INVALID_ARGUMENT, "%s", why);
        return;
    }
    /* QEMU's own errors go to qemu.log (-D), not to stderr: remember where
     * this start's part of the log begins. */
    engine_vm_path(e, &L->vm, VMDIR_QEMULOG, L->qemulog, sizeof(L->qemulog));
    struct stat lst;
    L->log_off = stat(L->qemulog, &lst) == 0 ? lst.st_size : 0;
    L->ce = (struct launch_prexec){.e = e,
                                   .group = L->cg ? L->group : NULL,
                                   .memlock = L->vm.memory_lock ? L->lim.memory_bytes : 0};
    if (vm_confine_spawn_open(e, &L->vm, &L->conf, L->qa.argv, launch_prexec, &L->ce, &L->sp, why,
                              sizeof(why)) < 0) {
        launch_fail(L, YE_QEMU_ERROR, "qemu failed to start: %s", why);
        return;
    }
    struct job_spec js = {.argv = L->qa.argv,
                          .setup = vm_confine_spawn_child,
                          .setup_arg = &L->sp,
                          .timeout_ms = SPAWN_TIMEOUT_MS,
                          .capture_max = 16384,
                          .capture_tail = true,
                          .new_session = true,
                          .on_done = on_spawned,
                          .ctx = L};
    L->t_forked = monotonic_us();
    L->t_spawn = monotonic_ms();
    L->job = job_start(e->base, &js, why, sizeof(why));
    if (!L->job)
        launch_fail(L, YE_QEMU_ERROR, "qemu failed to start: %s", why);
}

/* Layers naming the one under them by an absolute path get the relative
 * name first (qemu-img rebase -u), one job at a time. */
static void rebase_next(struct launch *L);
static void on_rebased(void *ctx, const struct job_result *r)
{
    struct launch *L = ctx;
    L->job = NULL;
    if (r->status != 0) {
        char line[300];
        proc_last_line(r->err[0] ? r->err : r->out, line, sizeof(line));
        launch_fail(L, YE_INTERNAL, "vm '%s': qemu-img rebase: %s", L->vm.name,
                    line[0]        ? line
                    : r->timed_out ? "timed out"
                                   : "failed");
        return;
    }
    rebase_next(L);
}

static void rebase_next(struct launch *L)
{
    L->step = L_REBASE;
    if (L->next_fix == L->fix.n) {
        spawn(L);
        return;
    }
    struct confine_rebase *rb = &L->fix.r[L->next_fix++];
    char *argv[] = {(char *)L->e->cfg->qemu_img,
                    "rebase",
                    "-q",
                    "-u",
                    "-f",
                    "qcow2",
                    "-F",
                    "qcow2",
                    "-b",
                    rb->backing,
                    rb->layer,
                    NULL};
    struct job_spec js = {
        .argv = argv, .timeout_ms = REBASE_TIMEOUT, .on_done = on_rebased, .ctx = L};
    char why[256];
    L->job = job_start(L->e->base, &js, why, sizeof(why));
    if (!L->job)
        launch_fail(L, YE_INTERNAL, "vm '%s': %s", L->vm.name, why);
}

/* ---- the verb ---- */

static void vm_launch(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = al->host;
    if (!e) {
        agent_op_fail(op, YE_UNAVAILABLE, "agent: no compute engine on this host");
        return;
    }
    struct launch *L = calloc(1, sizeof *L);
    struct yerr err;
    if (!L) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    L->op = op;
    L->al = al;
    L->e = e;
    L->t0 = monotonic_us();
    L->sp.logfd = -1;
    L->sp.boot[0].fd = L->sp.boot[1].fd = -1; /* launch_free closes what spawn opened */
    if (launch_incoming_parse(args, &L->inc, &err) < 0) {
        launch_free(L);
        agent_op_reply(op, NULL, &err);
        return;
    }
    json_t *ha = json_object_get(args, "ha");
    if (ha && !json_is_boolean(ha)) {
        launch_free(L);
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: vm.launch: ha must be a boolean");
        return;
    }
    L->ha = json_is_true(ha);
    if (launch_spec_from_json(args, &L->spec, &err) < 0) {
        launch_free(L);
        agent_op_reply(op, NULL, &err);
        return;
    }
    L->vm = L->spec.vm;
    struct vm_rec *vm = &L->vm;
    /* Never a second QEMU of one VM (agent_launch_guard.c) */
    if (launch_guard(e, vm, &err) < 0 || agent_balloon_spec(al, vm, &err) < 0) {
        launch_free(L);
        agent_op_reply(op, NULL, &err);
        return;
    }
    /* the last run's pidfile goes later (stale_pidfile): freeing its block
     * can wait on the file system's journal, a millisecond or more */
    static const char *const stale[] = {VMDIR_QMP, VMDIR_QMPEV, VMDIR_CONSOLE};
    for (size_t i = 0; i < 3; i++) {
        char p[512];
        engine_vm_path(e, vm, stale[i], p, sizeof(p));
        unlink(p);
    }
    L->vols = calloc(L->spec.nvols ? L->spec.nvols : 1, sizeof *L->vols);
    L->volin = launch_spec_volin(&L->spec);
    L->timer = evtimer_new(al->base, tick, L);
    L->rt = engine_rt_get(e, vm);
    if (!L->vols || !L->volin || !L->timer || !L->rt) {
        L->rt = NULL;
        launch_free(L);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    for (size_t k = 0; k < L->spec.nvols; k++)
        L->vols[k] = L->spec.vols[k].rec;
    L->rt->launch = L;
    L->rt->launch_lost = on_lost;
    L->rt->launch_abandon = on_abandon;
    L->rt->pid = 0;
    L->rt->shutdown_seen = false;

    char why[256];
    engine_vm_cgroup(vm, L->group);
    engine_vm_limits(vm, &L->lim);
    if (launch_memory_check(e, vm, &L->lim, &err) < 0) {
        launch_fail(L, err.code, "%s", err.message);
        return;
    }
    /* QEMU's start-up, before the guest runs, is yund's work and not the
     * guest's: it runs at the highest weight and without the VM's quota, so
     * busy neighbours do not slow every start. The VM's CPU policy applies
     * from "cont" on; its memory limit from the first instruction. */
    struct cg_limits boot = L->lim;
    boot.cpu_weight = 10000;
    boot.cpu_quota_us = 0;
    L->cg = e->cg.mode != CG_NONE;
    engine_cgroup_keep(e, L->group); /* an exited QEMU's group still being removed: reused */
    if (L->cg && cg_vm_setup(&e->cg, L->group, &boot, why, sizeof(why)) < 0) {
        launch_fail(L, YE_CGROUP_ERROR, "%s", why);
        return;
    }
    FAILPOINT("vm_start.after_cgroup");
    /* confinement: the VM's uid claimed, its files given to it */
    uint32_t uid0 = vm->uid;
    int rc =
        vm_confine_prepare(e, vm, &L->spec.img, L->volin, L->spec.nvols, &L->conf, &L->fix, &err);
    L->rt->uid = vm->uid; /* its exit is told by the processes of that uid */
    if (vm->uid != uid0) {
        json_t *ev = json_pack("{s:s,s:s,s:I,s:b}", "vm", vm->id, "name", vm->name, "uid",
                               (json_int_t)vm->uid, "incoming", L->inc.on);
        if (ev)
            agent_emit(&al->pub, "vm.uid", ev);
        json_decref(ev);
    }
    if (rc < 0) {
        launch_fail(L, err.code, "%s", err.message);
        return;
    }
    if (!L->conf.on)
        stale_pidfile(L); /* before QEMU writes its own */
    FAILPOINT("vm_start.after_confine");
    rebase_next(L);
}

const struct agent_verb_def agent_launch_verbs[] = {
    {AV_VM_LAUNCH, "vm.launch", vm_launch},
};
const size_t agent_launch_verbs_count = sizeof agent_launch_verbs / sizeof agent_launch_verbs[0];
