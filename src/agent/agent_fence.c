/*
 * agent_fence.c - the self-fencing keeper thread (agent_fence.h).
 */
#include "agent/agent_fence.h"
#include "agent/fence_plan.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FENCE_MAX 1024

struct watched {
    char vm[37];
    pid_t pid;
    uint64_t start;
};

struct fenced {
    char vm[37];
    pid_t pid;
    int64_t at, lease_end;
    int killed;
};

struct agent_fence {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stop, started;
    struct fence_plan plan;
    int64_t mono_to_real; /* CLOCK_REALTIME - CLOCK_MONOTONIC at the last renewal, ms */
    struct watched w[FENCE_MAX];
    size_t nw;
    struct fenced done[FENCE_MAX]; /* killed, not yet reported on the loop */
    size_t nd;
    int pipe[2];
    struct event *ev;
    agent_fence_fn fn;
    void *ctx;
};

/* Under mu: kills every watched QEMU that is still the process watched. */
static size_t fence_all(struct agent_fence *f)
{
    size_t nk = 0;
    int64_t at = now_ms(), end = f->plan.expires + f->mono_to_real;
    for (size_t i = 0; i < f->nw; i++) {
        struct watched *w = &f->w[i];
        uint64_t st = 0;
        int killed = 0;
        if (job_proc_start_time(w->pid, &st) == 0 && st == w->start && kill(w->pid, SIGKILL) == 0)
            killed = 1;
        nk += (size_t)killed;
        if (f->nd < FENCE_MAX) {
            struct fenced *d = &f->done[f->nd++];
            snprintf(d->vm, sizeof d->vm, "%s", w->vm);
            d->pid = w->pid;
            d->at = at;
            d->lease_end = end;
            d->killed = killed;
        }
    }
    f->nw = 0; /* a QEMU killed is not watched again: a new launch watches anew */
    return nk;
}

static void *keeper(void *arg)
{
    struct agent_fence *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        int64_t now = monotonic_ms();
        if (fence_plan_check(&f->plan, now) == FENCE_KILL) {
            size_t n = f->nw, nk = fence_all(f);
            pthread_mutex_unlock(&f->mu);
            /* log_* is thread-safe (one write per line) */
            log_warn("fence: the host lease ends without a renewal: killed %zu of %zu HA QEMU(s)",
                     nk, n);
            char b = 1;
            if (write(f->pipe[1], &b, 1) < 0 && errno != EAGAIN)
                log_warn("fence: cannot wake the loop: %s", strerror(errno));
            pthread_mutex_lock(&f->mu);
            continue;
        }
        int64_t dl = fence_plan_deadline(&f->plan);
        if (dl == FENCE_NEVER) {
            pthread_cond_wait(&f->cv, &f->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait = dl - now;
        if (wait < 1)
            wait = 1;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    struct agent_fence *f = arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    struct fenced d[64];
    for (;;) {
        pthread_mutex_lock(&f->mu);
        size_t n = f->nd < 64 ? f->nd : 64;
        memcpy(d, f->done, n * sizeof d[0]);
        memmove(f->done, f->done + n, (f->nd - n) * sizeof d[0]);
        f->nd -= n;
        pthread_mutex_unlock(&f->mu);
        if (!n)
            break;
        for (size_t i = 0; i < n; i++)
            if (f->fn)
                f->fn(f->ctx, d[i].vm, d[i].pid, d[i].at, d[i].lease_end, d[i].killed);
    }
}

struct agent_fence *agent_fence_new(struct event_base *base, int64_t margin_ms, agent_fence_fn fn,
                                    void *ctx)
{
    struct agent_fence *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->pipe[0] = f->pipe[1] = -1;
    fence_plan_init(&f->plan, margin_ms);
    f->fn = fn;
    f->ctx = ctx;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pipe2(f->pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
        !(f->ev = event_new(base, f->pipe[0], EV_READ | EV_PERSIST, on_pipe, f)) ||
        event_add(f->ev, NULL) < 0 || pthread_create(&f->thread, NULL, keeper, f) != 0) {
        agent_fence_free(f);
        return NULL;
    }
    f->started = true;
    return f;
}

void agent_fence_free(struct agent_fence *f)
{
    if (!f)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
    }
    if (f->ev)
        event_free(f->ev);
    for (int i = 0; i < 2; i++)
        if (f->pipe[i] >= 0)
            close(f->pipe[i]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void agent_fence_renewed(struct agent_fence *f, int64_t sent_ms, int64_t lease_ms)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    bool was_fenced = f->plan.fenced;
    if (fence_plan_renewed(&f->plan, sent_ms, lease_ms)) {
        f->mono_to_real = now_ms() - monotonic_ms();
        if (was_fenced && !f->plan.fenced)
            log_info("fence: the host lease is renewed again");
    }
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

int agent_fence_watch(struct agent_fence *f, const char *vm_id, pid_t pid, uint64_t start)
{
    if (!f)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    size_t i = 0;
    while (i < f->nw && strcmp(f->w[i].vm, vm_id))
        i++;
    if (i == f->nw && f->nw == FENCE_MAX) {
        rc = -1;
    } else {
        if (i == f->nw)
            f->nw++;
        snprintf(f->w[i].vm, sizeof f->w[i].vm, "%s", vm_id);
        f->w[i].pid = pid;
        f->w[i].start = start;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void agent_fence_watch_qemu(struct agent_fence *f, const char *vm_id, const char *name, pid_t pid)
{
    uint64_t start = 0;
    if (!f)
        return;
    if (job_proc_start_time(pid, &start) < 0 || agent_fence_watch(f, vm_id, pid, start) < 0)
        log_warn("vm %s: its QEMU (pid %d) is not watched by the fence keeper", name, (int)pid);
}

void agent_fence_unwatch(struct agent_fence *f, const char *vm_id)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nw; i++)
        if (!strcmp(f->w[i].vm, vm_id)) {
            f->w[i] = f->w[--f->nw];
            break;
        }
    pthread_mutex_unlock(&f->mu);
}

uint64_t agent_fence_lapses(struct agent_fence *f)
{
    pthread_mutex_lock(&f->mu);
    uint64_t n = f->plan.lapses;
    pthread_mutex_unlock(&f->mu);
    return n;
}
