/*
 * agent_remote.c - struct agent_ops over HTTP to another host's agent (see
 * agent_remote.h and docs/cluster.md): calls with ids "RUN-N", per-verb
 * deadlines, one retry (same id, so the agent runs it once) of a call whose
 * connection failed before any answer, cancel and forget, the answer's
 * checks (anything but {"result"} or {"error":{code,message}} is
 * bad_gateway), the calls still pending handed over when the agent goes,
 * and the pushed events' intake with their dedup.
 */
#include "agent/agent_remote.h"
#include "agent/agent_rconsole.h"
#include "lib/hclient.h"
#include "lib/log.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_DEFAULT_MS 30000
#define RUN_MAX             64

struct rcall {
    struct rcall *prev, *next;
    struct agent_remote *ar;
    uint64_t id;
    char wire_id[48];
    enum agent_verb verb;
    json_t *args;
    int deadline_ms;
    int64_t started_ms;
    bool retried;
    agent_reply_fn done;
    agent_progress_fn progress;
    void *ctx;
    struct hclient_req *hr;
};

struct agent_remote {
    struct agent pub; /* first */
    struct event_base *base;
    struct hclient *h;
    char credential[256];
    struct rcall *calls;
    int ncalls;
    uint64_t next_id;
    char ev_run[RUN_MAX + 1]; /* the pushed events' run, and the last seq taken */
    uint64_t ev_seq;
    int deadline_override;
    struct rconsole *consoles; /* live-console opens in flight (agent_rconsole.c) */
};

static struct agent_remote *ar_of(struct agent *a)
{
    return (struct agent_remote *)a;
}

const char *agent_run_id(void)
{
    static char run[17];
    if (!run[0]) {
        uint8_t b[8] = {0};
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t x =
                (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 44);
            memcpy(b, &x, sizeof b);
        }
        if (fd >= 0)
            close(fd);
        for (int i = 0; i < 8; i++)
            snprintf(run + 2 * i, 3, "%02x", b[i]);
    }
    return run;
}

int agent_remote_deadline_ms(enum agent_verb v, json_t *args)
{
    json_int_t t;
    switch (v) {
    case AV_GUEST_EXEC:
        t = json_integer_value(json_object_get(args, "timeout"));
        if (t < 0 || t > 24 * 3600)
            t = 0;
        return (int)(t ? t : 30) * 1000 + 15000;
    case AV_HOST_SAMPLE:
        t = json_integer_value(json_object_get(args, "deadline_ms"));
        return (int)(t > 0 && t <= 10000 ? t : 1000) + 10000;
    case AV_DISK_COPY:
    case AV_DISK_REBASE:
    case AV_IMAGE_BUILD:
    case AV_IMAGE_FETCH:
        return 12 * 3600 * 1000; /* the task's own cancel is the limit that matters */
    case AV_DISK_CHECK:
    case AV_DISK_INSPECT:
    case AV_DISK_INFO:
    case AV_DISK_CREATE:
    case AV_DISK_RESIZE:
        return 30 * 60 * 1000;
    case AV_DISK_REMOVE:
    case AV_IMAGE_REMOVE:
    case AV_VM_PREPARE:
    case AV_VM_REMOVE:
        return 10 * 60 * 1000;
    case AV_VM_LAUNCH:
    case AV_VM_END:
    case AV_VM_ATTACH:
    case AV_HOST_ORPHANS:
    case AV_HOST_HOUSEKEEP:
    case AV_VM_LAYERS_SWEEP:
    case AV_GUEST_FSFREEZE:
    case AV_GUEST_FSTHAW:
        return 120 * 1000;
    default:
        return DEADLINE_DEFAULT_MS;
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void call_unlink_free(struct rcall *c)
{
    struct agent_remote *ar = c->ar;
    if (c->prev)
        c->prev->next = c->next;
    else if (ar->calls == c)
        ar->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ar->ncalls--;
    if (c->hr)
        hclient_cancel(c->hr);
    json_decref(c->args);
    free(c);
}

static void deliver(struct rcall *c, json_t *result, const struct yerr *err)
{
    agent_reply_fn done = c->done;
    void *ctx = c->ctx;
    c->hr = NULL; /* hclient is done with it */
    call_unlink_free(c);
    if (done)
        done(ctx, err ? NULL : result, err);
}

static void cancel_done(void *ctx, int status, json_t *reply, const struct yerr *err)
{
    if (err)
        log_debug("agent %s: cancel: %s", (const char *)ctx, err->message);
}

static void send_cancel(struct agent_remote *ar, const char *wire_id)
{
    json_t *body = json_pack("{s:s}", "id", wire_id);
    hclient_request(ar->h, "POST", "/agent/v1/cancel", body, ar->credential, NULL, 10000,
                    cancel_done, ar->pub.host);
}

static void send_call(struct rcall *c);

static void on_reply(void *ctx, int status, json_t *reply, const struct yerr *err)
{
    struct rcall *c = ctx;
    struct agent_remote *ar = c->ar;
    struct yerr e = {0};
    c->hr = NULL;
    if (err) {
        int left = c->deadline_ms - (int)(mono_ms() - c->started_ms);
        if (status == 0 && err->code == YE_UNAVAILABLE && !c->retried && c->verb != AV_GUEST_EXEC &&
            left > 0) {
            c->retried = true;
            log_info("agent %s: call %s (%s): %s; retrying once", ar->pub.host, c->wire_id,
                     agent_verb_name(c->verb), err->message);
            send_call(c);
            return;
        }
        if (err->code == YE_TIMEOUT)
            send_cancel(ar, c->wire_id);
        e = *err;
        if (err->code == YE_BAD_GATEWAY || err->code == YE_TOO_LARGE)
            log_warn("agent %s: call %s (%s): %s", ar->pub.host, c->wire_id,
                     agent_verb_name(c->verb), err->message);
        yerr_wrap(&e, "host %s: %s: ", ar->pub.host, agent_verb_name(c->verb));
        deliver(c, NULL, &e);
        return;
    }
    json_t *res = json_object_get(reply, "result");
    json_t *jerr = json_object_get(reply, "error");
    const char *code = json_string_value(json_object_get(jerr, "code"));
    const char *msg = json_string_value(json_object_get(jerr, "message"));
    enum yerr_code yc;
    if (json_is_object(reply) && res && !jerr && status >= 200 && status < 300) {
        deliver(c, res, NULL);
        return;
    }
    if (json_is_object(reply) && !res && json_is_object(jerr) && code && msg && status >= 400) {
        if (yerr_code_parse(code, &yc) < 0)
            yc = status >= 500 ? YE_INTERNAL : YE_BAD_REQUEST;
        yerr_set(&e, yc, "%s", msg);
        deliver(c, NULL, &e);
        return;
    }
    log_warn("agent %s: call %s (%s): HTTP %d with a reply that is neither a result nor an error",
             ar->pub.host, c->wire_id, agent_verb_name(c->verb), status);
    yerr_set(&e, YE_BAD_GATEWAY,
             "host %s: %s: the agent answered HTTP %d with neither a result nor an error",
             ar->pub.host, agent_verb_name(c->verb), status);
    deliver(c, NULL, &e);
}

static void send_call(struct rcall *c)
{
    struct agent_remote *ar = c->ar;
    int left = c->deadline_ms - (int)(mono_ms() - c->started_ms);
    if (left < 1)
        left = 1;
    json_t *body = json_pack("{s:s,s:s,s:O,s:i}", "id", c->wire_id, "verb",
                             agent_verb_name(c->verb), "args", c->args, "deadline_ms", left);
    c->hr = hclient_request(ar->h, "POST", "/agent/v1/call", body, ar->credential, NULL, left,
                            on_reply, c);
}

static uint64_t remote_call(struct agent *a, enum agent_verb v, json_t *args, agent_reply_fn done,
                            agent_progress_fn progress, void *ctx)
{
    struct agent_remote *ar = ar_of(a);
    struct rcall *c = calloc(1, sizeof *c);
    if (!c) {
        json_decref(args);
        log_err("agent %s: out of memory", a->host);
        return 0;
    }
    c->ar = ar;
    c->id = ++ar->next_id;
    snprintf(c->wire_id, sizeof c->wire_id, "%s-%llu", agent_run_id(), (unsigned long long)c->id);
    c->verb = v;
    c->args = args ? args : json_object();
    c->done = done;
    c->progress = progress;
    c->ctx = ctx;
    c->deadline_ms =
        ar->deadline_override ? ar->deadline_override : agent_remote_deadline_ms(v, c->args);
    c->started_ms = mono_ms();
    c->next = ar->calls;
    if (ar->calls)
        ar->calls->prev = c;
    ar->calls = c;
    ar->ncalls++;
    if (!agent_verb_name(v) || !json_is_object(c->args)) {
        /* answered from the loop like any other: an unknown verb or bad
         * arguments go out and come back as the agent's error */
        json_decref(c->args);
        c->args = json_object();
    }
    if (!agent_verb_name(v)) {
        json_t *body = json_pack("{s:s,s:s,s:o,s:i}", "id", c->wire_id, "verb", "unknown", "args",
                                 json_object(), "deadline_ms", c->deadline_ms);
        c->hr = hclient_request(ar->h, "POST", "/agent/v1/call", body, ar->credential, NULL,
                                c->deadline_ms, on_reply, c);
    } else {
        send_call(c);
    }
    return c->id;
}

static int remote_cancel(struct agent *a, uint64_t id)
{
    struct agent_remote *ar = ar_of(a);
    for (struct rcall *c = ar->calls; c; c = c->next)
        if (c->id == id) {
            send_cancel(ar, c->wire_id);
            return 0;
        }
    return -1;
}

static void remote_forget(struct agent *a, void *ctx)
{
    struct agent_remote *ar = ar_of(a);
    for (struct rcall *c = ar->calls, *n; c; c = n) {
        n = c->next;
        if (c->ctx == ctx)
            call_unlink_free(c); /* the verb goes on at the agent; its answer is dropped */
    }
}

int agent_remote_hand_over(struct agent *a, agent_remote_owe_fn owe, void *arg)
{
    struct agent_remote *ar = ar_of(a);
    int n = 0;
    while (ar->calls) {
        struct rcall *c = ar->calls;
        agent_reply_fn done = c->done;
        void *ctx = c->ctx;
        call_unlink_free(c);
        if (done)
            owe(arg, done, ctx);
        n++;
    }
    return n;
}

static void remote_free(struct agent *a)
{
    struct agent_remote *ar = ar_of(a);
    while (ar->calls)
        call_unlink_free(ar->calls);
    rconsole_fail_all(&ar->consoles);
    hclient_free(ar->h);
    free(ar);
}

static int remote_console_open(struct agent *a, const char *vm_id, agent_console_fn done, void *ctx)
{
    struct agent_remote *ar = ar_of(a);
    return rconsole_open(&ar->consoles, ar->base, hclient_url(ar->h), ar->credential, a->host,
                         vm_id, done, ctx);
}

static void remote_console_forget(struct agent *a, void *ctx)
{
    rconsole_forget(&ar_of(a)->consoles, ctx);
}

static const struct agent_ops remote_ops = {
    .call = remote_call,
    .cancel = remote_cancel,
    .forget = remote_forget,
    .free = remote_free,
    .console_open = remote_console_open,
    .console_forget = remote_console_forget,
};

struct agent *agent_remote_new(struct event_base *base, const char *agent_url,
                               const char *credential, const char *host_name)
{
    struct agent_remote *ar = calloc(1, sizeof *ar);
    if (!ar)
        return NULL;
    ar->h = hclient_new(base, agent_url);
    if (!ar->h) {
        free(ar);
        return NULL;
    }
    ar->pub.ops = &remote_ops;
    ar->base = base;
    snprintf(ar->pub.host, sizeof ar->pub.host, "%s", host_name ? host_name : agent_url);
    agent_remote_set_credential(&ar->pub, credential);
    return &ar->pub;
}

void agent_remote_set_credential(struct agent *a, const char *credential)
{
    snprintf(ar_of(a)->credential, sizeof ar_of(a)->credential, "%s", credential ? credential : "");
}

void agent_remote_set_deadline(struct agent *a, int ms)
{
    ar_of(a)->deadline_override = ms > 0 ? ms : 0;
}

int agent_remote_pending(const struct agent *a)
{
    return ((const struct agent_remote *)a)->ncalls;
}

/* ---- pushed events ---- */

static bool printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
            return false;
    return n > 0;
}

static int check_events(json_t *events, const char *run, struct yerr *err)
{
    if (!run || !printable(run, RUN_MAX))
        return yerr_set(err, YE_INVALID_ARGUMENT, "events: \"run\" must be 1..64 characters");
    if (!json_is_array(events))
        return yerr_set(err, YE_INVALID_ARGUMENT, "events: \"events\" must be an array");
    json_int_t prev = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        json_t *seq = json_object_get(e, "seq");
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!json_is_object(e) || !json_is_integer(seq) || json_integer_value(seq) < 1)
            return yerr_set(err, YE_INVALID_ARGUMENT,
                            "events[%zu]: \"seq\" must be a positive integer", i);
        if (json_integer_value(seq) <= prev)
            return yerr_set(err, YE_INVALID_ARGUMENT, "events[%zu]: \"seq\" must increase", i);
        prev = json_integer_value(seq);
        if (!type || !printable(type, 64))
            return yerr_set(err, YE_INVALID_ARGUMENT,
                            "events[%zu]: \"type\" must be a name of 1..64 characters", i);
        if (!json_is_object(json_object_get(e, "data")))
            return yerr_set(err, YE_INVALID_ARGUMENT, "events[%zu]: \"data\" must be an object", i);
    }
    return 0;
}

static void progress_event(struct agent_remote *ar, json_t *data)
{
    const char *id = json_string_value(json_object_get(data, "id"));
    json_t *d = json_object_get(data, "done"), *t = json_object_get(data, "total");
    if (!id || !json_is_integer(d) || !json_is_integer(t) || json_integer_value(d) < 0 ||
        json_integer_value(t) < 0) {
        log_debug("agent %s: a call.progress event without id, done, total", ar->pub.host);
        return;
    }
    for (struct rcall *c = ar->calls; c; c = c->next)
        if (!strcmp(c->wire_id, id)) {
            if (c->progress)
                c->progress(c->ctx, (uint64_t)json_integer_value(d),
                            (uint64_t)json_integer_value(t));
            return;
        }
}

int agent_remote_deliver(struct agent *a, json_t *events, const char *run, uint64_t *ack,
                         struct yerr *err)
{
    struct agent_remote *ar = ar_of(a);
    if (check_events(events, run, err) < 0)
        return -1;
    if (strcmp(ar->ev_run, run)) {
        if (ar->ev_run[0])
            log_info("agent %s: a new agent run %s (was %s): its events start over", ar->pub.host,
                     run, ar->ev_run);
        snprintf(ar->ev_run, sizeof ar->ev_run, "%s", run);
        ar->ev_seq = 0;
    }
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
        if (seq <= ar->ev_seq)
            continue; /* a resend of one taken already */
        ar->ev_seq = seq;
        const char *type = json_string_value(json_object_get(e, "type"));
        json_t *data = json_object_get(e, "data");
        if (!strcmp(type, "call.progress"))
            progress_event(ar, data);
        else
            agent_emit(a, type, data);
    }
    *ack = ar->ev_seq;
    return 0;
}
