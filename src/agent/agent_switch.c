/*
 * agent_switch.c - a live migration's switchover done on the source host
 * itself (docs/cluster.md, "Live migration"): from the source QEMU's pause
 * at pre-switchover to its completion every step is a QMP command on the
 * connection this agent keeps open, with no controller -> agent hop between
 * them, because the guest is paused the whole time (each hop was 5-15 ms of
 * its downtime on a loaded machine, and a controller polling for the pause
 * saw it up to a poll and a hop late).
 *
 *   vm.switchover {"vm", "mirror"?, "node"?, "mirrors"?: [{"job","node"}...],
 *                  "wait_ms"?: 0..5000}
 *              -> {"switched": true, "migrate": <query-migrate>, "us": {...}}
 *               | {"switched": false, "migrate": <query-migrate>}
 *              With wait_ms, query-migrate until the source is at
 *              pre-switchover (a quarter of the time what is left would
 *              take at the current rate between two queries, within
 *              SW_WAIT_POLL_MIN_US..SW_WAIT_POLL_MAX_US: every QMP command
 *              takes QEMU's main loop from the migration a moment); still not there after wait_ms:
 *              {"switched": false} with the last query (the controller's
 *              progress figures; it asks again). At pre-switchover (or at
 *              once without wait_ms), with mirrors (a local disk, attached
 *              volumes: "mirror"/"node" for one, "mirrors" for up to
 *              SW_MIRRORS_MAX): block-job-cancel of each READY mirror (the
 *              target's copy is consistent, the source stays on its own
 *              disk for a rollback), query-block-jobs every SW_POLL_US until
 *              every job is gone, blockdev-del of each NBD client node; then
 *              (with no mirror,
 *              first) migrate-continue and query-migrate every SW_POLL_US
 *              until "completed", whose return is the reply. "failed" or
 *              "cancelled" is a YE_QEMU_ERROR with QEMU's error-desc; no end
 *              within SW_MAX_MS of the pause a YE_QEMU_ERROR too. "us" has
 *              each step's end from the verb's start ("paused": the pause
 *              seen). Cancellable between steps. What it leaves when it
 *              fails or the agent dies midway (the mirror gone, the source
 *              paused or completed) is what the controller's settle already
 *              handles: it asks QEMU, not the steps.
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/qmp.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SW_POLL_US          1000 /* between two queries of the job or the migration */
#define SW_WAIT_POLL_MIN_US 1000 /* between two queries while the memory still moves */
#define SW_WAIT_POLL_MAX_US 25000
#define SW_WAIT_MAX_MS      5000  /* wait_ms at most */
#define SW_MAX_MS           30000 /* from the pause to the source's completion */
#define SW_MIRRORS_MAX      33    /* the disk and 32 volumes (LAUNCH_VOLS_MAX) */

enum sw_step { SW_WAIT, SW_CANCEL, SW_JOBS, SW_DEL, SW_CONT, SW_QUERY, SW__COUNT };
static const char *const sw_cmd[SW__COUNT] = {"query-migrate",    "block-job-cancel",
                                              "query-block-jobs", "blockdev-del",
                                              "migrate-continue", "query-migrate"};
static const char *const sw_key[SW__COUNT] = {"paused",  "cancel",    "gone",
                                              "deleted", "continued", "completed"};

struct sw {
    struct agent_op *op;
    struct engine *e;
    struct event *poll, *deadline;
    char vm_id[37];
    char mirror[SW_MIRRORS_MAX][64], node[SW_MIRRORS_MAX][64];
    int nm, k; /* mirrors; the one the current cancel or delete is of */
    enum sw_step step;
    int64_t t0;
    int wait_ms;
    int64_t wait_poll_us; /* the next query's delay while the memory moves */
    json_t *us;
};

static void sw_free(struct sw *s)
{
    struct vm_rt *rt = engine_rt_find(s->e, s->vm_id);
    if (rt && rt->watch)
        qmp_watch_forget(rt->watch, s);
    if (s->op)
        agent_op_on_cancel(s->op, NULL, NULL);
    if (s->poll)
        event_free(s->poll);
    if (s->deadline)
        event_free(s->deadline);
    json_decref(s->us);
    free(s);
}

static void sw_fail(struct sw *s, enum yerr_code code, const char *fmt, const char *a,
                    const char *b)
{
    agent_op_fail(s->op, code, fmt, a, b);
    sw_free(s);
}

static void on_reply(void *ctx, json_t *ret, const char *err);

static void sw_send(struct sw *s, enum sw_step step)
{
    s->step = step;
    json_t *args = NULL;
    if (step == SW_CANCEL)
        args = json_pack("{s:s}", "device", s->mirror[s->k]);
    else if (step == SW_DEL)
        args = json_pack("{s:s}", "node-name", s->node[s->k]);
    else if (step == SW_CONT)
        args = json_pack("{s:s}", "state", "pre-switchover");
    struct vm_rt *rt = engine_rt_find(s->e, s->vm_id);
    int rc = rt && rt->watch ? qmp_watch_command(rt->watch, sw_cmd[step], args, on_reply, s) : -1;
    json_decref(args);
    if (rc < 0)
        sw_fail(s, YE_QEMU_ERROR, "QMP %s: %s", sw_cmd[step],
                rt && rt->watch ? "too many commands in flight"
                                : "yund holds no connection to this VM's QEMU");
}

static void sw_mark(struct sw *s, enum sw_step step)
{
    json_object_set_new(s->us, sw_key[step], json_integer(monotonic_us() - s->t0));
}

static void sw_again(struct sw *s)
{
    struct timeval tv = {0, s->step == SW_WAIT ? s->wait_poll_us : SW_POLL_US};
    evtimer_add(s->poll, &tv);
}

/* The source is paused at pre-switchover: the steps, SW_MAX_MS from now. */
static void sw_paused(struct sw *s)
{
    sw_mark(s, SW_WAIT);
    struct timeval tv = {SW_MAX_MS / 1000, 0};
    evtimer_add(s->deadline, &tv);
    s->k = 0;
    sw_send(s, s->nm ? SW_CANCEL : SW_CONT);
}

static void on_reply(void *ctx, json_t *ret, const char *err)
{
    struct sw *s = ctx;
    if (err) {
        sw_fail(s, YE_QEMU_ERROR, "QMP %s: %s", sw_cmd[s->step], err);
        return;
    }
    switch (s->step) {
    case SW_WAIT: {
        const char *st = json_string_value(json_object_get(ret, "status"));
        if (st && !strcmp(st, "pre-switchover")) {
            sw_paused(s);
            return;
        }
        if (!st || !strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "completed") ||
            monotonic_us() - s->t0 >= (int64_t)s->wait_ms * 1000) {
            /* not paused in time, or over: the controller judges it */
            agent_op_reply(s->op, json_pack("{s:b,s:O}", "switched", 0, "migrate", ret), NULL);
            sw_free(s);
            return;
        }
        /* a quarter of what is left at the current rate: seldom while far,
         * every millisecond near the pause */
        json_t *ram = json_object_get(ret, "ram");
        double left = (double)json_integer_value(json_object_get(ram, "remaining"));
        double bps = json_real_value(json_object_get(ram, "mbps")) * 1e6 / 8;
        double next = bps > 0 ? left / bps * 1e6 / 4 : SW_WAIT_POLL_MIN_US;
        s->wait_poll_us = next < SW_WAIT_POLL_MIN_US   ? SW_WAIT_POLL_MIN_US
                          : next > SW_WAIT_POLL_MAX_US ? SW_WAIT_POLL_MAX_US
                                                       : (int64_t)next;
        sw_again(s);
        return;
    }
    case SW_CANCEL:
        if (++s->k < s->nm) {
            sw_send(s, SW_CANCEL); /* the next mirror */
            return;
        }
        sw_mark(s, SW_CANCEL);
        sw_send(s, SW_JOBS);
        return;
    case SW_JOBS: {
        size_t i;
        json_t *j;
        bool there = false;
        json_array_foreach(ret, i, j)
        {
            const char *dev = json_string_value(json_object_get(j, "device"));
            for (int k = 0; dev && k < s->nm; k++)
                there |= !strcmp(dev, s->mirror[k]);
        }
        if (there) {
            sw_again(s);
            return;
        }
        sw_mark(s, SW_JOBS);
        s->k = 0;
        sw_send(s, SW_DEL);
        return;
    }
    case SW_DEL:
        if (++s->k < s->nm) {
            sw_send(s, SW_DEL);
            return;
        }
        sw_mark(s, SW_DEL);
        sw_send(s, SW_CONT);
        return;
    case SW_CONT:
        sw_mark(s, SW_CONT);
        sw_send(s, SW_QUERY);
        return;
    case SW_QUERY: {
        const char *st = json_string_value(json_object_get(ret, "status"));
        if (st && !strcmp(st, "completed")) {
            sw_mark(s, SW_QUERY);
            agent_op_reply(s->op,
                           json_pack("{s:b,s:O,s:O}", "switched", 1, "migrate", ret, "us", s->us),
                           NULL);
            sw_free(s);
            return;
        }
        if (!st || !strcmp(st, "failed") || !strcmp(st, "cancelled")) {
            const char *d = json_string_value(json_object_get(ret, "error-desc"));
            sw_fail(s, YE_QEMU_ERROR, "the source's migration ended %s at switchover: %s",
                    st ? st : "without a status", d ? d : "QEMU gave no reason");
            return;
        }
        sw_again(s);
        return;
    }
    case SW__COUNT:
        break;
    }
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sw *s = arg;
    if (agent_op_cancelled(s->op)) {
        sw_fail(s, YE_CANCELLED, "vm.switchover cancelled at %s%s", sw_cmd[s->step], "");
        return;
    }
    sw_send(s, s->step);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sw *s = arg;
    sw_fail(s, YE_QEMU_ERROR, "vm.switchover: no end in time (at %s)%s", sw_cmd[s->step], "");
}

static void sw_cancel(struct agent_op *op, void *arg)
{
    (void)op;
    struct sw *s = arg;
    sw_fail(s, YE_CANCELLED, "vm.switchover cancelled at %s%s", sw_cmd[s->step], "");
}

/* "mirror" and "node" (one), or "mirrors" [{"job","node"}...]: into s;
 * false when malformed. */
static bool sw_mirrors(struct sw *s, json_t *args)
{
    json_t *mj = json_object_get(args, "mirror"), *nj = json_object_get(args, "node");
    json_t *list = json_object_get(args, "mirrors");
    const char *mirror = json_string_value(mj), *node = json_string_value(nj);
    if ((mj && !json_is_null(mj) && !qmp_name_ok(mirror, 63)) ||
        (nj && !json_is_null(nj) && !qmp_name_ok(node, 63)) || !mirror != !node)
        return false;
    if (mirror) {
        if (list)
            return false; /* one way or the other */
        snprintf(s->mirror[0], sizeof s->mirror[0], "%s", mirror);
        snprintf(s->node[0], sizeof s->node[0], "%s", node);
        s->nm = 1;
        return true;
    }
    if (!list || json_is_null(list))
        return true;
    if (!json_is_array(list) || json_array_size(list) > SW_MIRRORS_MAX)
        return false;
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it)
    {
        const char *job = json_string_value(json_object_get(it, "job"));
        const char *nd = json_string_value(json_object_get(it, "node"));
        if (!json_is_object(it) || json_object_size(it) != 2 || !qmp_name_ok(job, 63) ||
            !qmp_name_ok(nd, 63))
            return false;
        for (int k = 0; k < s->nm; k++)
            if (!strcmp(s->mirror[k], job) || !strcmp(s->node[k], nd))
                return false; /* each once */
        snprintf(s->mirror[s->nm], sizeof s->mirror[0], "%s", job);
        snprintf(s->node[s->nm], sizeof s->node[0], "%s", nd);
        s->nm++;
    }
    return true;
}

static void vm_switchover(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    json_t *wj = json_object_get(args, "wait_ms");
    json_int_t wait_ms = wj ? json_integer_value(wj) : 0;
    struct sw probe = {0};
    if (!sw_mirrors(&probe, args) || (wj && !json_is_integer(wj)) || wait_ms < 0 ||
        wait_ms > SW_WAIT_MAX_MS) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.switchover takes a mirror job and its node (both or neither: "
                      "names of 1..63 of [A-Za-z0-9_-]), or mirrors [{\"job\",\"node\"}...] "
                      "(at most %d, each once), and wait_ms (0..%d)",
                      SW_MIRRORS_MAX, SW_WAIT_MAX_MS);
        return;
    }
    struct vm_rt *rt = engine_rt_find(e, id);
    if (!rt || !rt->watch) {
        agent_op_fail(op, YE_QEMU_ERROR,
                      "vm.switchover: yund holds no connection to this VM's QEMU");
        return;
    }
    struct sw *s = calloc(1, sizeof *s);
    if (!s || !(s->us = json_object()) || !(s->poll = evtimer_new(al->base, on_poll, s)) ||
        !(s->deadline = evtimer_new(al->base, on_deadline, s))) {
        if (s)
            sw_free(s);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    s->op = op;
    s->e = e;
    s->t0 = monotonic_us();
    s->wait_ms = (int)wait_ms;
    s->wait_poll_us = SW_WAIT_POLL_MIN_US;
    snprintf(s->vm_id, sizeof s->vm_id, "%s", id);
    sw_mirrors(s, args); /* checked above */
    agent_op_on_cancel(op, sw_cancel, s);
    if (!wait_ms) {
        sw_paused(s); /* the caller saw the pause */
        return;
    }
    /* a QMP reply that never comes (QEMU gone) ends the wait too */
    struct timeval tv = {(wait_ms + 5000) / 1000, ((wait_ms + 5000) % 1000) * 1000};
    evtimer_add(s->deadline, &tv);
    sw_send(s, SW_WAIT);
}

const struct agent_verb_def agent_switch_verbs[] = {
    {AV_VM_SWITCHOVER, "vm.switchover", vm_switchover},
};
const size_t agent_switch_verbs_count = sizeof agent_switch_verbs / sizeof agent_switch_verbs[0];
