/*
 * routes_guest.c - running a command in the guest.
 *
 *   POST /v1/vms/{name}/exec  {"argv":["cat","/etc/hostname"],"timeout":30,"input":"..."}
 *        -> {"exitcode":0,"stdout":"...","stderr":"...","signal":null}
 *
 * The controller hands it to the host's agent (guest.exec), which drives
 * the guest agent asynchronously; the request is held until the agent's
 * reply arrives, so the loop never waits on the guest. A client that leaves
 * cancels the exchange (the guest process runs on).
 */
#include "api/api.h"
#include "compute/qga.h"
#include "lib/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_MAX_S 3600

struct exec_wait {
    struct api *api;
    struct hreq *req;
    uint64_t call;
};

static void exec_closed(struct hreq *req, void *arg)
{
    struct exec_wait *w = arg;
    /* The client left; httpd frees the request. */
    ctl_cancel(w->api->ctl, w->call);
    ctl_forget(w->api->ctl, w);
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

static void on_exec(void *ctx, json_t *r, const struct yerr *err)
{
    struct exec_wait *w = ctx;
    hreq_set_closecb(w->req, NULL, NULL);
    if (err) {
        reply_error(w->req, err);
        free(w);
        return;
    }
    struct jw jw;
    jw_init(&jw);
    jw_obj_open(&jw);
    json_t *code = json_object_get(r, "exitcode"), *sig = json_object_get(r, "signal");
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
    put_output(&jw, "stdout", json_object_get(r, "out_b64"));
    put_output(&jw, "stderr", json_object_get(r, "err_b64"));
    jw_key(&jw, "truncated");
    jw_bool(&jw, json_is_true(json_object_get(r, "truncated")));
    jw_obj_close(&jw);
    reply_jw(w->req, 200, &jw);
    free(w);
}

void route_vm_exec(struct route_ctx *c, const struct vm_rec *vm)
{
    static const char *const known[] = {"argv", "timeout", "input", NULL};
    struct yerr err;
    json_t *b = c->body;
    if (!b || !body_keys_known(b, known, &err)) {
        if (!b)
            reply_errorf(c->req, YE_INVALID_ARGUMENT, "body {\"argv\": [...]} required");
        else
            reply_error(c->req, &err);
        return;
    }
    json_t *argv = json_object_get(b, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > 256) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "argv must be an array of 1..256 strings");
        return;
    }
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a) if (!json_is_string(a))
    {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "argv must be an array of strings");
        return;
    }
    json_t *to = json_object_get(b, "timeout");
    if (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
               json_integer_value(to) > EXEC_MAX_S)) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "timeout must be 1..%d seconds", EXEC_MAX_S);
        return;
    }
    json_t *input = json_object_get(b, "input");
    if (input && !json_is_string(input)) {
        reply_errorf(c->req, YE_INVALID_ARGUMENT, "input must be a string");
        return;
    }
    if (!vm_state_has_process(vm->state)) {
        reply_errorf(c->req, YE_NO_GUEST_AGENT,
                     "vm '%s' has no guest agent running (it needs qemu-guest-agent inside, "
                     "e.g. the debian image)",
                     vm->name);
        return;
    }
    struct exec_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->api = c->api;
    w->req = c->req;
    hreq_set_closecb(c->req, exec_closed, w);
    w->call = ctl_vm_exec(c->api->ctl, vm, argv, to ? (int)json_integer_value(to) : 0,
                          json_string_value(input), on_exec, w);
    if (!w->call) {
        hreq_set_closecb(c->req, NULL, NULL);
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
    }
}
