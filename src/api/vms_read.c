/*
 * vms_read.c - the VM list's reader thread: every VM row read through a
 * store connection of its own (its own libpq connection, or its own
 * SQLite connection, which WAL lets read beside the loop's writes), so
 * the loop never waits for PostgreSQL's sort or libpq's parsing of
 * 10,000 rows. The loop asks (vm_reader_start), the thread reads, and a
 * byte on a pipe brings the rows back to the loop (vm_read_done).
 */
#include "api/vms_read.h"
#include "store/store.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vm_reader {
    const struct store *main; /* only its spec is read, at open */
    vm_read_done done;
    void *ctx;
    struct event *wake_ev; /* the pipe's read end, on the loop */
    int pipe_fd[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* under mu */
    bool want, stop;
    bool busy;  /* from start until done has run (loop side) */
    bool ready; /* a result waits for the loop */
    struct vm_rec *vms;
    size_t n;
    char err[512];
    struct store *st; /* the thread's own */
};

static void read_all(struct vm_reader *r, struct vm_rec **vms, size_t *n, char *err, size_t errlen)
{
    *vms = NULL;
    *n = 0;
    if (!r->st && store_open_again(r->main, &r->st, err, errlen) < 0) {
        r->st = NULL;
        return;
    }
    if (store_vm_list(r->st, vms, n) != 0) {
        snprintf(err, errlen, "%s", store_errmsg(r->st));
        *vms = NULL;
        /* a broken connection is opened anew by the next read */
        store_close(r->st);
        r->st = NULL;
        return;
    }
    if (!*vms) { /* no rows: an empty list, not an error */
        *vms = malloc(sizeof **vms);
        if (!*vms)
            snprintf(err, errlen, "out of memory");
    }
}

static void *reader(void *arg)
{
    struct vm_reader *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->want && !r->stop)
            pthread_cond_wait(&r->cond, &r->mu);
        if (r->stop)
            break;
        r->want = false;
        pthread_mutex_unlock(&r->mu);
        struct vm_rec *vms;
        size_t n;
        char err[512] = "";
        read_all(r, &vms, &n, err, sizeof err);
        pthread_mutex_lock(&r->mu);
        r->vms = vms;
        r->n = n;
        snprintf(r->err, sizeof r->err, "%s", err[0] ? err : "read failed");
        r->ready = true;
        char b = 1;
        while (write(r->pipe_fd[1], &b, 1) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&r->mu);
    store_close(r->st);
    r->st = NULL;
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct vm_reader *r = arg;
    char buf[16];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&r->mu);
    bool ready = r->ready;
    struct vm_rec *vms = r->vms;
    size_t n = r->n;
    char err[512];
    snprintf(err, sizeof err, "%s", r->err);
    r->ready = false;
    r->vms = NULL;
    pthread_mutex_unlock(&r->mu);
    if (!ready)
        return;
    r->busy = false;
    r->done(r->ctx, vms, n, vms ? NULL : err);
}

struct vm_reader *vm_reader_new(struct event_base *base, const struct store *main,
                                vm_read_done done, void *ctx)
{
    struct vm_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->main = main;
    r->done = done;
    r->ctx = ctx;
    if (pipe2(r->pipe_fd, O_NONBLOCK | O_CLOEXEC) < 0) {
        free(r);
        return NULL;
    }
    r->wake_ev = event_new(base, r->pipe_fd[0], EV_READ | EV_PERSIST, on_wake, r);
    if (!r->wake_ev || event_add(r->wake_ev, NULL) < 0)
        goto fail;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, reader, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cond);
        goto fail;
    }
    return r;
fail:
    if (r->wake_ev)
        event_free(r->wake_ev);
    close(r->pipe_fd[0]);
    close(r->pipe_fd[1]);
    free(r);
    return NULL;
}

void vm_reader_start(struct vm_reader *r)
{
    pthread_mutex_lock(&r->mu);
    r->want = true;
    r->busy = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

bool vm_reader_busy(const struct vm_reader *r)
{
    return r->busy;
}

void vm_reader_free(struct vm_reader *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    free(r->vms);
    event_free(r->wake_ev);
    close(r->pipe_fd[0]);
    close(r->pipe_fd[1]);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
    free(r);
}
