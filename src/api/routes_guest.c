/*
 * routes_guest.c - what yund asks the guest agent.
 *
 *   POST /v1/vms/{name}/exec  {"argv":["cat","/etc/hostname"],"timeout":30,"input":"..."}
 *        -> {"exitcode":0,"stdout":"...","stderr":"...","signal":null}
 *
 * guest-exec starts the command; yund then polls guest-exec-status on a
 * timer (never blocking its loop while the command runs) and answers when
 * the process exits or the timeout passes. It also writes the guest facts
 * (OS, hostname, IP addresses) that `vm show` includes.
 */
#include "api/api.h"
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
#define EXEC_MAX_S     3600
#define QGA_TIMEOUT_MS 3000

struct exec_wait {
    struct hreq *req;
    struct event *timer;
    char sock[512];
    char vm[64];
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
    /* The client left; httpd frees the request. The guest process runs on. */
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

static void exec_poll(evutil_socket_t fd, short what, void *arg)
{
    struct exec_wait *w = arg;
    char err[256];
    json_t *args = json_pack("{s:I}", "pid", (json_int_t)w->pid), *ret = NULL;
    int rc =
        qga_command(w->sock, "guest-exec-status", args, &ret, 0, QGA_TIMEOUT_MS, err, sizeof(err));
    json_decref(args);
    /* A QEMU busy with a guest's heavy I/O (under TCG) can be slow to take
     * the agent socket's next client (refused, or closed at once); the
     * command runs on in the guest, so keep asking, backing off to once a
     * second, for up to about half a minute before giving up. */
    if (rc < 0 && ++w->failures <= EXEC_RETRIES && monotonic_ms() < w->deadline) {
        int ms = EXEC_POLL_MS * w->failures > 1000 ? 1000 : EXEC_POLL_MS * w->failures;
        struct timeval tv = {0, ms * 1000};
        evtimer_add(w->timer, &tv);
        return;
    }
    if (rc < 0) {
        reply_errorf(w->req, 502, "guest_agent", "guest-exec-status: %s", err);
        exec_done(w);
        return;
    }
    w->failures = 0;
    if (!json_is_true(json_object_get(ret, "exited"))) {
        json_decref(ret);
        if (monotonic_ms() > w->deadline) {
            reply_errorf(w->req, 504, "timeout",
                         "command still running in vm '%s' after its timeout (guest pid %lld)",
                         w->vm, w->pid);
            exec_done(w);
            return;
        }
        struct timeval tv = {0, EXEC_POLL_MS * 1000};
        evtimer_add(w->timer, &tv);
        return;
    }
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
    json_decref(ret);
    reply_jw(w->req, 200, &jw);
    exec_done(w);
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

void route_vm_exec(struct route_ctx *c, const struct vm_rec *vm)
{
    struct engine *e = c->api->eng;
    static const char *const known[] = {"argv", "timeout", "input", NULL};
    struct yerr err;
    json_t *b = c->body;
    if (!b || !body_keys_known(b, known, &err)) {
        if (!b)
            reply_errorf(c->req, 400, "invalid_argument", "body {\"argv\": [...]} required");
        else
            reply_error(c->req, &err);
        return;
    }
    json_t *argv = json_object_get(b, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > 256) {
        reply_errorf(c->req, 400, "invalid_argument", "argv must be an array of 1..256 strings");
        return;
    }
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a) if (!json_is_string(a))
    {
        reply_errorf(c->req, 400, "invalid_argument", "argv must be an array of strings");
        return;
    }
    json_t *to = json_object_get(b, "timeout");
    if (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
               json_integer_value(to) > EXEC_MAX_S)) {
        reply_errorf(c->req, 400, "invalid_argument", "timeout must be 1..%d seconds", EXEC_MAX_S);
        return;
    }
    json_t *input = json_object_get(b, "input");
    if (input && !json_is_string(input)) {
        reply_errorf(c->req, 400, "invalid_argument", "input must be a string");
        return;
    }
    struct exec_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        reply_errorf(c->req, 500, "internal", "out of memory");
        return;
    }
    if (!engine_vm_agent(e, vm, w->sock, sizeof(w->sock))) {
        free(w);
        reply_errorf(c->req, 409, "no_guest_agent",
                     "vm '%s' has no guest agent running (it needs qemu-guest-agent inside, "
                     "e.g. the debian image)",
                     vm->name);
        return;
    }
    json_t *args = json_pack("{s:O,s:b}", "path", json_array_get(argv, 0), "capture-output", 1);
    json_t *rest = json_array();
    for (i = 1; i < json_array_size(argv); i++)
        json_array_append(rest, json_array_get(argv, i));
    json_object_set_new(args, "arg", rest);
    if (input) {
        char *enc = b64_encode(json_string_value(input), strlen(json_string_value(input)));
        json_object_set_new(args, "input-data", json_string(enc ? enc : ""));
        free(enc);
    }
    char why[256];
    json_t *ret = NULL;
    int rc = qga_command(w->sock, "guest-exec", args, &ret, 0, QGA_TIMEOUT_MS, why, sizeof(why));
    json_decref(args);
    json_t *pid = json_object_get(ret, "pid");
    if (rc < 0 || !json_is_integer(pid)) {
        json_decref(ret);
        free(w);
        reply_errorf(c->req, 502, "guest_agent", "guest-exec: %s", rc < 0 ? why : "no pid");
        return;
    }
    w->pid = json_integer_value(pid);
    json_decref(ret);
    w->req = c->req;
    snprintf(w->vm, sizeof(w->vm), "%s", vm->name);
    w->deadline = monotonic_ms() + 1000LL * (to ? json_integer_value(to) : 60);
    w->timer = evtimer_new(e->base, exec_poll, w);
    struct timeval tv = {0, 20 * 1000};
    evtimer_add(w->timer, &tv);
    hreq_set_closecb(c->req, exec_closed, w);
    engine_event(e, "vm", vm->name, "exec", "info", "guest pid %lld: %s", w->pid,
                 json_string_value(json_array_get(argv, 0)));
}

void write_guest_facts(struct jw *w, struct engine *e, const struct vm_rec *vm)
{
    char sock[512], err[256];
    bool agent = engine_vm_agent(e, vm, sock, sizeof(sock));
    jw_key(w, "guest_agent");
    jw_bool(w, agent);
    if (!agent)
        return;
    json_t *ret = NULL;
    if (qga_command(sock, "guest-get-osinfo", NULL, &ret, 0, 1500, err, sizeof(err)) == 0) {
        const char *pretty = json_string_value(json_object_get(ret, "pretty-name"));
        jw_kv_str(w, "guest_os", pretty ? pretty : "");
    }
    json_decref(ret);
    ret = NULL;
    if (qga_command(sock, "guest-get-host-name", NULL, &ret, 0, 1500, err, sizeof(err)) == 0)
        jw_kv_str(w, "guest_hostname", json_string_value(json_object_get(ret, "host-name")));
    json_decref(ret);
    ret = NULL;
    if (qga_command(sock, "guest-network-get-interfaces", NULL, &ret, 0, 1500, err, sizeof(err)) ==
        0) {
        jw_key(w, "ip_addresses");
        jw_arr_open(w);
        size_t i, k;
        json_t *ifc, *ip;
        json_array_foreach(ret, i, ifc)
        {
            const char *name = json_string_value(json_object_get(ifc, "name"));
            if (name && !strcmp(name, "lo"))
                continue;
            json_array_foreach(json_object_get(ifc, "ip-addresses"), k, ip)
            {
                const char *addr = json_string_value(json_object_get(ip, "ip-address"));
                if (addr)
                    jw_str(w, addr);
            }
        }
        jw_arr_close(w);
    }
    json_decref(ret);
}
