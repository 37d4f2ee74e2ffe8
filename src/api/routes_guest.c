/*
 * routes_guest.c - running a command in the guest.
 *
 *   POST /v1/vms/{name}/exec  {"argv":["cat","/etc/hostname"],"timeout":30,"input":"..."}
 *        -> {"exitcode":0,"stdout":"...","stderr":"...","signal":null}
 *
 * The controller hands it to the host's agent (guest.exec), which drives
 * the guest agent asynchronously; the request is held until the agent's
 * reply arrives, so the loop never waits on the guest. A client that leaves
 * cancels the exchange (the guest process runs on). The body is checked by
 * body_vms.c.
 */
#include "api/api.h"
#include "api/bodies.h"
#include "lib/base64.h"
#include "lib/jsonw.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct exec_wait {
    struct api *api;
    struct hreq *req;
    uint64_t call;
    char host[37]; /* the VM's host, whose agent runs the call */
};

static void exec_closed(struct hreq *req, void *arg)
{
    struct exec_wait *w = arg;
    /* The client left; httpd frees the request. */
    ctl_cancel(w->api->ctl, w->host, w->call);
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

static void vm_exec(struct route_ctx *c)
{
    struct yerr err = {0};
    struct exec_body x;
    struct vm_rec vm;
    if (exec_body_from_json(c->body, &x, &err) < 0) {
        reply_error(c->req, &err);
        return;
    }
    if (!route_vm(c, &vm))
        return;
    if (!vm_state_has_process(vm.state)) {
        reply_errorf(c->req, YE_NO_GUEST_AGENT,
                     "vm '%s' has no guest agent running (it needs qemu-guest-agent inside, "
                     "e.g. the debian image)",
                     vm.name);
        return;
    }
    struct exec_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
        return;
    }
    w->api = c->api;
    w->req = c->req;
    snprintf(w->host, sizeof w->host, "%s", vm.host);
    hreq_set_closecb(c->req, exec_closed, w);
    w->call = ctl_vm_exec(c->api->ctl, &vm, x.argv, x.timeout_s, x.input, on_exec, w);
    if (!w->call) {
        hreq_set_closecb(c->req, NULL, NULL);
        free(w);
        reply_errorf(c->req, YE_INTERNAL, "out of memory");
    }
}

const struct route routes_guest[] = {
    {EVHTTP_REQ_POST, "/v1/vms/{name}/exec", vm_exec, ROUTE_BODY | ROUTE_LONGPOLL,
     "Run a command in the guest through the guest agent; answers when it exits", check_vm_exec},
};
const size_t routes_guest_count = sizeof(routes_guest) / sizeof(routes_guest[0]);
