/*
 * routes_guest.c - what yund asks the guest agent: the exec row.
 *
 *   POST /v1/vms/{name}/exec  {"argv":["cat","/etc/hostname"],"timeout":30,"input":"..."}
 *        -> {"exitcode":0,"stdout":"...","stderr":"...","signal":null}
 *        (the body is checked by body_vms.c)
 *
 * guest-exec starts the command; yund then polls guest-exec-status on a
 * timer and answers when the process exits or the timeout passes. Every
 * exchange goes through the VM's asynchronous agent client (guest.h), so
 * the loop never waits on the guest. It also writes the guest facts (OS,
 * hostname, IP addresses) that `vm show` includes, from guest.c's cache.
 */
#include "api/api.h"
#include "api/bodies.h"
#include "compute/guest.h"
#include "compute/qga.h"
#include "lib/jsonw.h"
#include "lib/util.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_POLL_MS   100
#define EXEC_RETRIES   40
#define QGA_TIMEOUT_MS 3000

struct exec_wait {
    struct engine *eng;
    struct hreq *req;
    struct event *timer;
    char vm_id[37];
    char vm[64];
    char cmd[128]; /* argv[0], for the event */
    long long pid;
    int64_t deadline;
    int failures; /* consecutive polls the agent did not answer */
};

static void exec_done(struct exec_wait *w)
{
    hreq_set_closecb(w->req, NULL, NULL);
    event_free(w->timer);
    free(w);
}

static void exec_closed(struct hreq *req, void *arg)
{
    struct exec_wait *w = arg;
    /* The client left; httpd frees the request. The guest process runs on,
     * and an answer still on its way to us is dropped. */
    qga_cancel(guest_agent(w->eng, w->vm_id), w);
    event_free(w->timer);
    free(w);
}

static void put_output(struct jw *jw, const char *key, json_t *b64)
{
    jw_key(jw, key);
    if (!json_is_string(b64)) {
        jw_str(jw, "");
        return;
    }
    size_t n;
    unsigned char *raw = base64_decode(json_string_value(b64), &n);
    jw_str(jw, raw ? (const char *)raw : "");
    free(raw);
}

static void exec_reply_exited(struct exec_wait *w, json_t *ret)
{
    struct jw jw;
    jw_init(&jw);
    jw_obj_open(&jw);
    json_t *code = json_object_get(ret, "exitcode"), *sig = json_object_get(ret, "signal");
    jw_key(&jw, "exitcode");
    if (json_is_integer(code))
        jw_int(&jw, json_integer_value(code));
    else
        jw_num(&jw, 0.0 / 0.0); /* null: killed by a signal */
    jw_key(&jw, "signal");
    if (json_is_integer(sig))
        jw_int(&jw, json_integer_value(sig));
    else
        jw_num(&jw, 0.0 / 0.0);
    put_output(&jw, "stdout", json_object_get(ret, "out-data"));
    put_output(&jw, "stderr", json_object_get(ret, "err-data"));
    jw_key(&jw, "truncated");
    jw_bool(&jw, json_is_true(json_object_get(ret, "out-truncated")) ||
                     json_is_true(json_object_get(ret, "err-truncated")));
    jw_obj_close(&jw);
    reply_jw(w->req, 200, &jw);
    exec_done(w);
}

static void exec_poll_later(struct exec_wait *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->timer, &tv);
}

static void on_exec_status(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct exec_wait *w = ctx;
    if (st == QGA_CANCELLED) {
        reply_errorf(w->req, YE_GUEST_AGENT,
                     "vm '%s' stopped, or its guest agent went away, while guest pid %lld ran",
                     w->vm, w->pid);
        exec_done(w);
        return;
    }
    /* A QEMU busy with a guest's heavy I/O (under TCG) can be slow to take
     * the agent socket's next client (refused, or closed at once); the
     * command runs on in the guest, so keep asking, backing off to once a
     * second, for up to about half a minute before giving up. */
    if (st == QGA_FAILED && ++w->failures <= EXEC_RETRIES && monotonic_ms() < w->deadline) {
        int ms = EXEC_POLL_MS * w->failures > 1000 ? 1000 : EXEC_POLL_MS * w->failures;
        exec_poll_later(w, ms);
        return;
    }
    if (st != QGA_OK) {
        reply_errorf(w->req, YE_GUEST_AGENT, "guest-exec-status: %s", err);
        exec_done(w);
        return;
    }
    w->failures = 0;
    if (json_is_true(json_object_get(ret, "exited"))) {
        exec_reply_exited(w, ret);
        return;
    }
    if (monotonic_ms() > w->deadline) {
        reply_errorf(w->req, YE_TIMEOUT,
                     "command still running in vm '%s' after its timeout (guest pid %lld)", w->vm,
                     w->pid);
        exec_done(w);
        return;
    }
    exec_poll_later(w, EXEC_POLL_MS);
}

static void exec_poll(evutil_socket_t fd, short what, void *arg)
{
    struct exec_wait *w = arg;
    json_t *args = json_pack("{s:I}", "pid", (json_int_t)w->pid);
    int rc = qga_call(guest_agent(w->eng, w->vm_id), "guest-exec-status", args, 0, QGA_TIMEOUT_MS,
                      on_exec_status, w);
    json_decref(args);
    if (rc < 0) {
        reply_errorf(w->req, YE_GUEST_AGENT,
                     "vm '%s' stopped, or its guest agent went away, while guest pid %lld ran",
                     w->vm, w->pid);
        exec_done(w);
    }
}

static void on_exec_started(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct exec_wait *w = ctx;
    json_t *pid = json_object_get(ret, "pid");
    if (st != QGA_OK || !json_is_integer(pid)) {
        reply_errorf(w->req, YE_GUEST_AGENT, "guest-exec: %s",
                     st == QGA_OK ? "the agent returned no pid" : err);
        exec_done(w);
        return;
    }
    w->pid = json_integer_value(pid);
    engine_event(w->eng, "vm", w->vm, "exec", "info", "guest pid %lld: %s", w->pid, w->cmd);
    exec_poll_later(w, 20);
}

static char *b64_encode(const char *in, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *p = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        *p++ = t[(v >> 18) & 63];
        *p++ = t[(v >> 12) & 63];
        *p++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
        *p++ = i + 2 < n ? t[v & 63] : '=';
    }
    *p = 0;
    return o;
}

static void vm_exec(struct route_ctx *c)
{
    struct engine *e = c->api->eng;
    struct yerr err = {0};
    struct exec_body x;
    struct vm_rec vm;
    if (exec_body_from_json(c->body, &x, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!route_vm(c, &vm))
        return;
    json_t *argv = x.argv;
    struct qga_client *qga = guest_agent(e, vm.id);
    char sock[512];
    if (!qga || !engine_vm_agent(e, &vm, sock, sizeof(sock))) {
        reply_errorf(c->req, YE_NO_GUEST_AGENT,
                     "vm '%s' has no guest agent running (it needs qemu-guest-agent inside, "
                     "e.g. the debian image)",
                     vm.name);
        return;
    }
    struct exec_wait *w = calloc(1, sizeof(*w));
    if (!w || !(w->timer = evtimer_new(e->base, exec_poll, w))) {
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->eng = e;
    w->req = c->req;
    snprintf(w->vm_id, sizeof(w->vm_id), "%s", vm.id);
    snprintf(w->vm, sizeof(w->vm), "%s", vm.name);
    snprintf(w->cmd, sizeof(w->cmd), "%s", json_string_value(json_array_get(argv, 0)));
    w->deadline = monotonic_ms() + 1000LL * x.timeout_s;
    json_t *args = json_pack("{s:O,s:b}", "path", json_array_get(argv, 0), "capture-output", 1);
    json_t *rest = json_array();
    for (size_t i = 1; i < json_array_size(argv); i++)
        json_array_append(rest, json_array_get(argv, i));
    json_object_set_new(args, "arg", rest);
    if (x.input) {
        char *enc = b64_encode(x.input, strlen(x.input));
        json_object_set_new(args, "input-data", json_string(enc ? enc : ""));
        free(enc);
    }
    int rc = qga_call(qga, "guest-exec", args, 0, QGA_TIMEOUT_MS, on_exec_started, w);
    json_decref(args);
    if (rc < 0) {
        event_free(w->timer);
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    hreq_set_closecb(c->req, exec_closed, w);
}

void write_guest_facts(struct jw *w, struct engine *e, const struct vm_rec *vm)
{
    /* Only the cache: a guest that does not answer never holds up a reader. */
    const struct guest_facts *f = guest_facts_get(e, vm);
    jw_key(w, "guest_agent");
    jw_bool(w, f != NULL);
    if (!f)
        return;
    jw_key(w, "guest_agent_answering");
    jw_bool(w, f->answering);
    jw_kv_int(w, "guest_agent_pending", f->pending);
    jw_kv_int(w, "guest_facts_at", f->fetched_at);
    if (!f->answering && f->error[0])
        jw_kv_str(w, "guest_agent_error", f->error);
    if (f->os[0])
        jw_kv_str(w, "guest_os", f->os);
    if (f->hostname[0])
        jw_kv_str(w, "guest_hostname", f->hostname);
    if (f->ip_addresses) {
        jw_key(w, "ip_addresses");
        jw_arr_open(w);
        size_t i;
        json_t *ip;
        json_array_foreach(f->ip_addresses, i, ip) jw_str(w, json_string_value(ip));
        jw_arr_close(w);
    }
}

const struct route routes_guest[] = {
    {EVHTTP_REQ_POST, "/v1/vms/{name}/exec", vm_exec, ROUTE_BODY | ROUTE_LONGPOLL,
     "Run a command in the guest through the guest agent; answers when it exits", check_vm_exec},
};
const size_t routes_guest_count = sizeof(routes_guest) / sizeof(routes_guest[0]);
