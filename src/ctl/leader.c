/*
 * leader.c - leadership for the event loop (leader.h). A worker thread owns
 * the leadership connection (store/store_leader.h) and does every blocking
 * call; what it learns (elected with an epoch, the last renewal's start,
 * the lease lost, the leader's URL, an error) it leaves in a small state
 * under a mutex and wakes the loop with one byte on a pipe. The loop turns
 * that into this controller's state: standby, leader (the main store
 * connection given the epoch) or deposed. The lease is also checked on the
 * local monotonic clock: it ends lease_ms after the start of the last
 * renewal that succeeded (the database's own lease ends later), so a leader
 * that cannot renew stops serving before a standby may take over.
 */
#include "ctl/leader.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"
#include "store/store_leader.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum lstate { L_STANDBY, L_LEADER, L_DEPOSED };

struct leader {
    struct event_base *base;
    struct store *st;
    struct leader_opts o;
    char url[256];
    char id[160];
    struct store_leader *sl;
    int pipe[2];
    struct event *wake, *tick;
    pthread_t thread;
    bool thread_running;
    /* the loop's */
    enum lstate state;
    int64_t epoch;
    int64_t deadline; /* monotonic ms the lease holds until */
    char leader_url[256];
    unsigned logged_errors;
    /* shared with the thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    int64_t th_epoch;    /* > 0 once elected */
    int64_t th_renew_t0; /* monotonic ms the last good renewal (or the election) began */
    bool th_lost;
    char th_why[300];
    char th_url[256];
    char th_err[300];
    unsigned th_errors;
};

static void poke(struct leader *l)
{
    char b = 1;
    (void)!write(l->pipe[1], &b, 1); /* full: the loop is woken already */
}

/* Sleeps ms, or less when asked to stop; true when asked. Under mu. */
static bool nap(struct leader *l, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT)
        ;
    return l->stop;
}

static void th_error(struct leader *l, const char *err)
{
    snprintf(l->th_err, sizeof(l->th_err), "%s", err);
    l->th_errors++;
}

static void *thread_main(void *arg)
{
    struct leader *l = arg;
    int lease = l->o.lease_ms;
    char err[300];
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->stop)
            break;
        bool leading = l->th_epoch > 0;
        int64_t epoch = l->th_epoch;
        pthread_mutex_unlock(&l->mu);
        int64_t t0 = monotonic_ms();
        int rc;
        struct leader_row row;
        int64_t got = 0;
        err[0] = 0;
        if (leading)
            rc = store_leader_renew(l->sl, epoch, err, sizeof(err));
        else
            rc = store_leader_try(l->sl, l->id, l->url, &got, &row, err, sizeof(err));
        pthread_mutex_lock(&l->mu);
        int wait_ms = 1000;
        if (leading) {
            wait_ms = lease / 3;
            if (rc == 0) {
                l->th_renew_t0 = t0;
            } else if (rc == 1) {
                l->th_lost = true;
                snprintf(l->th_why, sizeof(l->th_why), "lease lost: %s", err);
            } else {
                th_error(l, err);
                wait_ms = lease / 6; /* again soon: the lease is running out */
            }
        } else if (rc == 1) {
            l->th_epoch = got;
            l->th_renew_t0 = t0;
            snprintf(l->th_url, sizeof(l->th_url), "%s", l->url);
            wait_ms = lease / 3;
        } else if (rc == 0) {
            /* a leader whose lease lapsed is no one's to follow */
            snprintf(l->th_url, sizeof(l->th_url), "%s",
                     row.lease_until > row.db_now ? row.url : "");
        } else {
            th_error(l, err);
        }
        poke(l);
        if (l->th_lost)
            break;
        nap(l, wait_ms);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void depose(struct leader *l, const char *why)
{
    if (l->state == L_DEPOSED)
        return;
    bool was = l->state == L_LEADER;
    l->state = L_DEPOSED;
    log_err("leader: %s of epoch %lld: %s; stepping down (exit %d, to come back as a standby)",
            was ? "deposed" : "cannot lead", (long long)l->epoch, why, LEADER_EXIT_DEPOSED);
    if (l->o.deposed) {
        l->o.deposed(l->o.ctx, why);
        return;
    }
    /* no clean-up: the fence holds whatever is left half done, and a
     * restart recovers it like after a kill -9 */
    _exit(LEADER_EXIT_DEPOSED);
}

static void check_lease(struct leader *l)
{
    if (l->state == L_LEADER && monotonic_ms() >= l->deadline)
        depose(l, "the lease was not renewed before it ended");
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct leader *l = arg;
    char buf[64];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&l->mu);
    int64_t epoch = l->th_epoch, t0 = l->th_renew_t0;
    bool lost = l->th_lost;
    char why[300], url[256], errtext[300];
    snprintf(why, sizeof(why), "%s", l->th_why);
    snprintf(url, sizeof(url), "%s", l->th_url);
    snprintf(errtext, sizeof(errtext), "%s", l->th_err);
    unsigned errors = l->th_errors;
    pthread_mutex_unlock(&l->mu);

    if (errors != l->logged_errors) {
        /* the first of a run, then every 30th: a database away for long
         * does not flood the log */
        if (errors - l->logged_errors == 1 || errors % 30 == 0)
            log_warn("leader: %s", errtext);
        l->logged_errors = errors;
    }
    snprintf(l->leader_url, sizeof(l->leader_url), "%s", url);
    if (l->state == L_DEPOSED)
        return;
    if (lost) {
        depose(l, why);
        return;
    }
    if (l->state == L_STANDBY && epoch > 0) {
        l->epoch = epoch;
        l->deadline = t0 + l->o.lease_ms;
        if (store_set_epoch(l->st, epoch) < 0) {
            /* elected but the store cannot write as the leader */
            depose(l, store_errmsg(l->st));
            return;
        }
        l->state = L_LEADER;
        log_info("leader: elected, epoch %lld (%s, lease %d ms)", (long long)epoch,
                 l->url[0] ? l->url : "no URL", l->o.lease_ms);
        if (l->o.elected)
            l->o.elected(l->o.ctx, epoch);
        return;
    }
    if (l->state == L_LEADER) {
        l->deadline = t0 + l->o.lease_ms;
        check_lease(l);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    check_lease(arg);
}

struct leader *leader_start(struct event_base *base, struct store *st, const struct leader_opts *o,
                            char *err, size_t errlen)
{
    struct leader *l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->base = base;
    l->st = st;
    l->o = *o;
    l->pipe[0] = l->pipe[1] = -1;
    snprintf(l->url, sizeof(l->url), "%s", o->url ? o->url : "");
    l->o.url = l->url;
    l->o.store_spec = NULL; /* not kept: it may carry a password */
    char host[64] = "", rnd[37];
    gethostname(host, sizeof(host) - 1);
    uuid_generate_str(rnd);
    snprintf(l->id, sizeof(l->id), "%s:%d:%.8s", host, (int)getpid(), rnd);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (store_leader_open(o->store_spec, o->lease_ms, &l->sl, err, errlen) < 0)
        goto fail;
    if (pipe2(l->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    l->wake = event_new(base, l->pipe[0], EV_READ | EV_PERSIST, on_wake, l);
    l->tick = event_new(base, -1, EV_PERSIST, on_tick, l);
    int ms = o->lease_ms / 10 < 250 ? o->lease_ms / 10 : 250;
    struct timeval tv = {0, ms * 1000};
    if (!l->wake || !l->tick || event_add(l->wake, NULL) < 0 || event_add(l->tick, &tv) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, thread_main, l) != 0) {
        snprintf(err, errlen, "cannot start the leader thread");
        goto fail;
    }
    l->thread_running = true;
    log_info("leader: %s standing for leadership (lease %d ms)", l->id, o->lease_ms);
    return l;
fail:
    leader_stop(l);
    return NULL;
}

void leader_stop(struct leader *l)
{
    if (!l)
        return;
    if (l->thread_running) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    if (l->sl && l->state == L_LEADER) {
        store_leader_release(l->sl, l->epoch);
        log_info("leader: epoch %lld released", (long long)l->epoch);
    }
    store_leader_close(l->sl);
    if (l->wake)
        event_free(l->wake);
    if (l->tick)
        event_free(l->tick);
    if (l->pipe[0] >= 0)
        close(l->pipe[0]);
    if (l->pipe[1] >= 0)
        close(l->pipe[1]);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    *(bool *)arg = true;
}

int leader_wait(struct leader *l, int64_t timeout_ms)
{
    bool timed_out = false;
    struct event *t = NULL;
    if (timeout_ms >= 0) {
        t = evtimer_new(l->base, on_wait_timeout, &timed_out);
        struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
        if (!t || evtimer_add(t, &tv) < 0) {
            if (t)
                event_free(t);
            return 0;
        }
    }
    while (l->state == L_STANDBY && !timed_out && !event_base_got_exit(l->base) &&
           !event_base_got_break(l->base))
        if (event_base_loop(l->base, EVLOOP_ONCE) < 0)
            break;
    if (t)
        event_free(t);
    return leader_serving(l) ? 1 : 0;
}

bool leader_serving(struct leader *l)
{
    check_lease(l);
    return l->state == L_LEADER;
}

const char *leader_url(const struct leader *l)
{
    return l->state == L_LEADER ? l->url : l->leader_url;
}

int64_t leader_epoch(const struct leader *l)
{
    return l->state == L_LEADER ? l->epoch : 0;
}

const char *leader_id(const struct leader *l)
{
    return l->id;
}
