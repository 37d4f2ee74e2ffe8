/*
 * cgroup_remove.c - owns the timer-driven removal of a VM's cgroups
 * (cg_vm_destroy_once, retried every RMDIR_RETRY_MS while busy): used by the
 * exit path (vm_run.c) and the agent's vm.remove (agent_vmfiles.c), so no
 * rmdir retry sleeps on the event loop.
 */
#include "compute/cgroup_remove.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>

#define RMDIR_RETRY_MS 25
#define RMDIR_TRIES    40 /* ~1 s in all */

struct cg_removal {
    const struct cg_layout *lay;
    struct event *timer;
    cg_removed_fn done;
    void *ctx;
    char group[48];
    int tries;
};

/* 1 when it is to be tried again later; else rc is final. */
static int try_once(struct cg_removal *r, int *rc)
{
    *rc = cg_vm_destroy_once(r->lay, r->group);
    if (*rc == 1 && ++r->tries < RMDIR_TRIES)
        return 1;
    if (*rc != 0)
        log_warn("cgroup %s could not be removed (%s)", r->group,
                 *rc == 1 ? "still busy" : "error");
    return 0;
}

static void finish(struct cg_removal *r, int rc)
{
    cg_removed_fn done = r->done;
    void *ctx = r->ctx;
    if (r->timer)
        event_free(r->timer);
    free(r);
    if (done)
        done(ctx, rc);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cg_removal *r = arg;
    int rc;
    if (try_once(r, &rc)) {
        struct timeval tv = {0, RMDIR_RETRY_MS * 1000};
        evtimer_add(r->timer, &tv);
        return;
    }
    finish(r, rc);
}

struct cg_removal *cg_remove_start(struct event_base *base, const struct cg_layout *lay,
                                   const char *group, cg_removed_fn done, void *ctx)
{
    struct cg_removal one = {.lay = lay, .done = done, .ctx = ctx};
    snprintf(one.group, sizeof one.group, "%s", group);
    int rc;
    if (!try_once(&one, &rc)) {
        if (done)
            done(ctx, rc);
        return NULL;
    }
    struct cg_removal *r = malloc(sizeof *r);
    if (!r || !(r->timer = evtimer_new(base, on_timer, r))) {
        free(r);
        log_warn("cgroup %s: out of memory; left busy", group);
        if (done)
            done(ctx, 1);
        return NULL;
    }
    struct event *t = r->timer;
    *r = one;
    r->timer = t;
    struct timeval tv = {0, RMDIR_RETRY_MS * 1000};
    evtimer_add(r->timer, &tv);
    return r;
}

void cg_remove_cancel(struct cg_removal *r)
{
    if (!r)
        return;
    event_free(r->timer);
    free(r);
}

const char *cg_removal_group(const struct cg_removal *r)
{
    return r->group;
}
