/*
 * job.c - child processes on the event loop: spawn, read stdout/stderr with
 * bufferevents, reap on SIGCHLD (own pids only), timeouts, done callbacks.
 *
 * All jobs of the process are on one list; each event base that runs jobs
 * has one SIGCHLD event (made before the first fork on it, so no exit is
 * missed), and each SIGCHLD tries waitpid(pid, WNOHANG) for every job of
 * that base that is not reaped yet. The done callback runs from a separate
 * one-shot event, so a job is never freed inside the signal callback.
 */
#include "lib/job.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_MAX_BYTES   4096
#define DEFAULT_CAPTURE  (64 * 1024)
#define DEFAULT_GRACE_MS 2000

struct stream {
    int fd;
    struct bufferevent *bev;
    char *cap; /* capture_max + 1 bytes */
    size_t cap_len;
    size_t cap_start; /* tail mode: ring start */
    bool cut;
    char line[LINE_MAX_BYTES + 1];
    size_t line_len;
};

struct job {
    struct job *next;
    struct event_base *base;
    pid_t pid;
    bool reaped, detached, timed_out, finishing;
    int wstatus;
    job_line_fn on_line;
    job_done_fn on_done;
    void *ctx;
    size_t capture_max;
    bool capture_tail;
    int grace_ms;
    struct stream s[2]; /* stdout, stderr */
    struct event *timeout_ev, *kill_ev, *finish_ev;
};

struct reaper {
    struct event_base *base;
    struct event *sig;
    int jobs;
};

static struct job *all_jobs;
#define MAX_BASES 8
static struct reaper reapers[MAX_BASES];

static void on_sigchld(evutil_socket_t fd, short what, void *arg);

static struct reaper *reaper_get(struct event_base *base, bool make)
{
    struct reaper *free_slot = NULL;
    for (int i = 0; i < MAX_BASES; i++) {
        if (reapers[i].base == base)
            return &reapers[i];
        if (!reapers[i].base && !free_slot)
            free_slot = &reapers[i];
    }
    if (!make || !free_slot)
        return NULL;
    free_slot->sig = evsignal_new(base, SIGCHLD, on_sigchld, base);
    if (!free_slot->sig || event_add(free_slot->sig, NULL) < 0) {
        if (free_slot->sig)
            event_free(free_slot->sig);
        free_slot->sig = NULL;
        return NULL;
    }
    free_slot->base = base;
    free_slot->jobs = 0;
    return free_slot;
}

static void reaper_release(struct event_base *base)
{
    struct reaper *r = reaper_get(base, false);
    if (r && --r->jobs <= 0) {
        event_free(r->sig);
        memset(r, 0, sizeof *r);
    }
}

/* ---- output ---- */

static void capture(struct job *j, struct stream *s, const char *p, size_t n)
{
    size_t max = j->capture_max;
    if (!j->capture_tail) {
        size_t take = n;
        if (s->cap_len + take > max) {
            take = max - s->cap_len;
            s->cut = true;
        }
        memcpy(s->cap + s->cap_len, p, take);
        s->cap_len += take;
        return;
    }
    /* tail: a ring of max bytes, straightened at the end */
    for (size_t i = 0; i < n; i++) {
        if (s->cap_len < max) {
            s->cap[(s->cap_start + s->cap_len) % max] = p[i];
            s->cap_len++;
        } else {
            s->cap[s->cap_start] = p[i];
            s->cap_start = (s->cap_start + 1) % max;
            s->cut = true;
        }
    }
}

static void emit_line(struct job *j, struct stream *s)
{
    s->line[s->line_len] = 0;
    if (s->line_len && j->on_line && !j->detached)
        j->on_line(j->ctx, s == &j->s[0] ? JOB_STDOUT : JOB_STDERR, s->line);
    s->line_len = 0;
}

static void consume(struct job *j, struct stream *s, const char *p, size_t n)
{
    capture(j, s, p, n);
    if (!j->on_line)
        return;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            emit_line(j, s);
            continue;
        }
        s->line[s->line_len++] = p[i] ? p[i] : ' ';
        if (s->line_len == LINE_MAX_BYTES)
            emit_line(j, s);
    }
}

static void drain_evbuffer(struct job *j, struct stream *s)
{
    if (!s->bev)
        return;
    struct evbuffer *in = bufferevent_get_input(s->bev);
    char buf[8192];
    int n;
    while ((n = evbuffer_remove(in, buf, sizeof buf)) > 0)
        consume(j, s, buf, (size_t)n);
}

static void stream_close(struct stream *s)
{
    if (s->bev) {
        bufferevent_free(s->bev); /* closes the fd */
        s->bev = NULL;
        s->fd = -1;
    } else if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct job *j = arg;
    drain_evbuffer(j, bev == j->s[0].bev ? &j->s[0] : &j->s[1]);
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct job *j = arg;
    struct stream *s = bev == j->s[0].bev ? &j->s[0] : &j->s[1];
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        drain_evbuffer(j, s);
        stream_close(s);
    }
}

/* After the reap: what the child wrote is in the pipe already. */
static void drain_rest(struct job *j, struct stream *s)
{
    drain_evbuffer(j, s);
    if (s->fd >= 0) {
        char buf[8192];
        ssize_t n;
        while ((n = read(s->fd, buf, sizeof buf)) > 0)
            consume(j, s, buf, (size_t)n);
    }
    if (s->line_len)
        emit_line(j, s);
    stream_close(s);
}

/* ---- life cycle ---- */

static void job_free(struct job *j)
{
    for (struct job **pp = &all_jobs; *pp; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    stream_close(&j->s[0]);
    stream_close(&j->s[1]);
    free(j->s[0].cap);
    free(j->s[1].cap);
    if (j->timeout_ev)
        event_free(j->timeout_ev);
    if (j->kill_ev)
        event_free(j->kill_ev);
    if (j->finish_ev)
        event_free(j->finish_ev);
    if (!j->reaped)
        reaper_release(j->base);
    free(j);
}

static const char *straighten(struct job *j, struct stream *s)
{
    if (j->capture_tail && s->cap_start) {
        char *flat = malloc(j->capture_max + 1);
        if (flat) {
            for (size_t i = 0; i < s->cap_len; i++)
                flat[i] = s->cap[(s->cap_start + i) % j->capture_max];
            free(s->cap);
            s->cap = flat;
            s->cap_start = 0;
        }
    }
    s->cap[s->cap_len] = 0;
    return s->cap;
}

static void on_finish(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    drain_rest(j, &j->s[0]);
    drain_rest(j, &j->s[1]);
    struct job_result r = {.status = -1, .exit_code = -1};
    if (WIFEXITED(j->wstatus)) {
        r.exit_code = WEXITSTATUS(j->wstatus);
        r.status = r.exit_code;
    } else if (WIFSIGNALED(j->wstatus)) {
        r.signal = WTERMSIG(j->wstatus);
        r.status = 128 + r.signal;
    }
    r.timed_out = j->timed_out;
    r.out = straighten(j, &j->s[0]);
    r.out_len = j->s[0].cap_len;
    r.out_cut = j->s[0].cut;
    r.err = straighten(j, &j->s[1]);
    r.err_len = j->s[1].cap_len;
    r.err_cut = j->s[1].cut;
    if (!j->detached && j->on_done)
        j->on_done(j->ctx, &r);
    job_free(j);
}

static void mark_reaped(struct job *j, int wstatus)
{
    j->reaped = true;
    j->wstatus = wstatus;
    reaper_release(j->base);
    if (j->timeout_ev)
        event_del(j->timeout_ev);
    if (j->kill_ev)
        event_del(j->kill_ev);
    j->finishing = true;
    event_active(j->finish_ev, EV_TIMEOUT, 1);
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    struct event_base *base = arg;
    struct job *next;
    for (struct job *j = all_jobs; j; j = next) {
        next = j->next;
        if (j->base != base || j->reaped)
            continue;
        int st;
        pid_t r = waitpid(j->pid, &st, WNOHANG);
        if (r == j->pid)
            mark_reaped(j, st);
        else if (r < 0 && errno == ECHILD) /* someone else reaped it: status unknown */
            mark_reaped(j, 0xff00);
    }
}

void job_kill(struct job *j, int sig)
{
    if (!j || j->reaped || j->pid <= 0)
        return;
    kill(-j->pid, sig);
    kill(j->pid, sig);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
    job_kill(arg, SIGKILL);
}

void job_stop(struct job *j)
{
    if (!j || j->reaped)
        return;
    job_kill(j, SIGTERM);
    if (!j->kill_ev)
        j->kill_ev = evtimer_new(j->base, on_kill_timer, j);
    if (j->kill_ev && !evtimer_pending(j->kill_ev, NULL)) {
        struct timeval tv = {j->grace_ms / 1000, (j->grace_ms % 1000) * 1000};
        evtimer_add(j->kill_ev, &tv);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    j->timed_out = true;
    job_stop(j);
}

static int stream_init(struct job *j, struct stream *s, int fd)
{
    s->fd = fd;
    s->cap = malloc(j->capture_max + 1);
    if (!s->cap)
        return -1;
    evutil_make_socket_nonblocking(fd);
    s->bev = bufferevent_socket_new(j->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev)
        return -1;
    bufferevent_setcb(s->bev, on_read, NULL, on_bev_event, j);
    bufferevent_enable(s->bev, EV_READ);
    return 0;
}

/* ioprio_set(2) has no glibc wrapper: who = process, class best-effort
 * (2) at its lowest level (7). */
#define IOPRIO_WHO_PROCESS_ 1
#define IOPRIO_BE_LOWEST    ((2 << 13) | 7)

static void child(const struct job_spec *spec, int out, int errfd)
{
    /* default dispositions, empty mask: yund's are not the child's */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (spec->new_session)
        setsid();
    else
        setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0 && devnull != 0) {
        dup2(devnull, 0);
        close(devnull);
    }
    dup2(out, 1);
    dup2(errfd, 2);
    if (spec->cwd && chdir(spec->cwd) < 0) {
        dprintf(2, "cannot enter %s: %s\n", spec->cwd, strerror(errno));
        _exit(126);
    }
    if (spec->background_nice > 0) {
        /* best effort: a failure leaves the job at yund's priority */
        (void)setpriority(PRIO_PROCESS, 0, spec->background_nice);
        (void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS_, 0, IOPRIO_BE_LOWEST);
    }
    if (spec->setup && spec->setup(spec->setup_arg) != 0)
        _exit(126);
    execvp(spec->argv[0], spec->argv);
    dprintf(2, "exec %s failed: %s\n", spec->argv[0], strerror(errno));
    _exit(127);
}

struct job *job_start(struct event_base *base, const struct job_spec *spec, char *err,
                      size_t errlen)
{
    if (!spec->argv || !spec->argv[0]) {
        snprintf(err, errlen, "job: no program");
        return NULL;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "job: out of memory");
        return NULL;
    }
    j->base = base;
    j->on_line = spec->on_line;
    j->on_done = spec->on_done;
    j->ctx = spec->ctx;
    j->capture_max = spec->capture_max ? spec->capture_max : DEFAULT_CAPTURE;
    j->capture_tail = spec->capture_tail;
    j->grace_ms = spec->kill_grace_ms > 0 ? spec->kill_grace_ms : DEFAULT_GRACE_MS;
    j->s[0].fd = j->s[1].fd = -1;
    j->reaped = true; /* until the fork: nothing to reap */
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "job: pipe: %s", strerror(errno));
        goto fail;
    }
    j->finish_ev = event_new(base, -1, 0, on_finish, j);
    if (spec->timeout_ms > 0)
        j->timeout_ev = evtimer_new(base, on_timeout, j);
    if (!j->finish_ev || (spec->timeout_ms > 0 && !j->timeout_ev)) {
        snprintf(err, errlen, "job: out of memory");
        goto fail;
    }
    struct reaper *r = reaper_get(base, true);
    if (!r) {
        snprintf(err, errlen, "job: cannot watch SIGCHLD");
        goto fail;
    }
    r->jobs++;
    /* On the list before the fork (still "reaped": nothing to wait for),
     * so that a child whose setup exits instead of exec'ing (one that
     * daemonizes) still reaches it: a leak checker in the child sees none. */
    j->next = all_jobs;
    all_jobs = j;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "job: fork: %s", strerror(errno));
        for (struct job **pp = &all_jobs; *pp; pp = &(*pp)->next)
            if (*pp == j) {
                *pp = j->next;
                break;
            }
        reaper_release(base);
        goto fail;
    }
    if (pid == 0)
        child(spec, po[1], pe[1]);
    j->pid = pid;
    j->reaped = false;
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    if (stream_init(j, &j->s[0], po[0]) < 0)
        po[0] = -1;
    po[0] = -1;
    if (stream_init(j, &j->s[1], pe[0]) < 0)
        pe[0] = -1;
    pe[0] = -1;
    if (!j->s[0].cap || !j->s[1].cap) {
        /* cannot keep its output: end it, the reap reports it */
        job_kill(j, SIGKILL);
    }
    if (j->timeout_ev) {
        struct timeval tv = {spec->timeout_ms / 1000, (spec->timeout_ms % 1000) * 1000};
        evtimer_add(j->timeout_ev, &tv);
    }
    /* an exit before the signal event was armed cannot be missed: it was
     * armed before the fork; this only catches a very fast child early */
    on_sigchld(-1, 0, base);
    return j;
fail:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    if (j->finish_ev)
        event_free(j->finish_ev);
    if (j->timeout_ev)
        event_free(j->timeout_ev);
    free(j);
    return NULL;
}

pid_t job_pid(const struct job *j)
{
    return j ? j->pid : -1;
}

void job_detach(struct job *j, bool kill_it)
{
    if (!j)
        return;
    j->detached = true;
    if (kill_it)
        job_kill(j, SIGKILL);
}

int job_count(void)
{
    int n = 0;
    for (struct job *j = all_jobs; j; j = j->next)
        if (!j->reaped)
            n++;
    return n;
}

void job_kill_all(void)
{
    for (struct job *j = all_jobs; j; j = j->next)
        if (!j->detached)
            job_kill(j, SIGKILL);
}

void job_shutdown_all(void)
{
    while (all_jobs) {
        struct job *j = all_jobs;
        j->detached = true;
        if (!j->reaped) {
            job_kill(j, SIGKILL);
            int st;
            while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
                ;
            j->reaped = true;
            reaper_release(j->base);
        }
        job_free(j);
    }
}

int job_proc_start_time(pid_t pid, uint64_t *out)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *s = read_file(path, 4096, NULL);
    if (!s)
        return -1;
    /* the command name is in parentheses and may hold spaces: skip past
     * the last ')' then fields 3.. follow */
    char *p = strrchr(s, ')');
    int rc = -1;
    if (p) {
        p++;
        unsigned long long v = 0;
        int field = 2;
        char *save = NULL;
        for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            if (++field == 22) {
                if (sscanf(tok, "%llu", &v) == 1) {
                    *out = v;
                    rc = 0;
                }
                break;
            }
        }
    }
    free(s);
    return rc;
}
