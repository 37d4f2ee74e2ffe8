/* test_wire.c - the controller-agent wire in one process on 127.0.0.1:
 * agent_serve over a small fake agent (a verb table of this file), called by
 * agent_remote through hclient: results, error codes, idempotent repeats,
 * cancel, deadlines, garbage replies, credentials, and events pushed by
 * agent_push to a tiny controller route that hands them to
 * agent_remote_deliver (with progress of a running call on the way). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/agent_push.h"
#include "agent/agent_remote.h"
#include "agent/agent_serve.h"
#include "lib/hclient.h"
#include "lib/httpd.h"
#include "lib/sha256.h"
#include "wire_world.h"

/* ---- the fake agent: host.facts answers, disk.create fails, vm.status
 * never answers, disk.copy reports progress and waits for a cancel,
 * guest.exec answers after 300 ms ---- */

struct fcall {
    struct fcall *next;
    struct fake *f;
    uint64_t id;
    enum agent_verb v;
    agent_reply_fn done;
    agent_progress_fn progress;
    void *ctx;
    struct event *ev;
    bool forgotten, cancelled, answered;
    int step;
};

struct fake {
    struct agent pub;
    struct event_base *base;
    struct fcall *calls;
    uint64_t next;
    int runs[AV__COUNT];
};

static void fcall_fire(evutil_socket_t fd, short w, void *arg)
{
    struct fcall *c = arg;
    struct yerr e = {0};
    if (c->forgotten || c->answered)
        return;
    switch (c->v) {
    case AV_HOST_FACTS: {
        json_t *r = json_pack("{s:i,s:s}", "cpus", 4, "accel", "tcg");
        c->answered = true;
        c->done(c->ctx, r, NULL);
        json_decref(r);
        return;
    }
    case AV_DISK_CREATE:
        yerr_set(&e, YE_NO_SPACE, "disk full");
        break;
    case AV_GUEST_EXEC: {
        json_t *r = json_pack("{s:i}", "exitcode", 0);
        c->answered = true;
        c->done(c->ctx, r, NULL);
        json_decref(r);
        return;
    }
    case AV_DISK_COPY:
        if (c->cancelled) {
            yerr_set(&e, YE_CANCELLED, "copy cancelled");
            break;
        }
        if (c->progress && c->step < 3)
            c->progress(c->ctx, (uint64_t)++c->step * 10, 30);
        struct timeval tv = {0, 100000};
        evtimer_add(c->ev, &tv);
        return;
    default:
        return; /* never answers */
    }
    c->answered = true;
    c->done(c->ctx, NULL, &e);
}

static uint64_t fake_call(struct agent *a, enum agent_verb v, json_t *args, agent_reply_fn done,
                          agent_progress_fn progress, void *ctx)
{
    struct fake *f = (struct fake *)a;
    struct fcall *c = calloc(1, sizeof *c);
    c->f = f;
    c->id = ++f->next;
    c->v = v;
    c->done = done;
    c->progress = progress;
    c->ctx = ctx;
    c->ev = evtimer_new(f->base, fcall_fire, c);
    c->next = f->calls;
    f->calls = c;
    f->runs[v]++;
    struct timeval tv = {0, v == AV_GUEST_EXEC ? 300000 : 1000};
    evtimer_add(c->ev, &tv);
    json_decref(args);
    return c->id;
}

static int fake_cancel(struct agent *a, uint64_t id)
{
    for (struct fcall *c = ((struct fake *)a)->calls; c; c = c->next)
        if (c->id == id && !c->answered) {
            c->cancelled = true;
            return 0;
        }
    return -1;
}

static void fake_forget(struct agent *a, void *ctx)
{
    for (struct fcall *c = ((struct fake *)a)->calls; c; c = c->next)
        if (c->ctx == ctx)
            c->forgotten = true;
}

static void fake_free(struct agent *a)
{
    struct fake *f = (struct fake *)a;
    for (struct fcall *c = f->calls, *n; c; c = n) {
        n = c->next;
        event_free(c->ev);
        free(c);
    }
    free(f);
}

static const struct agent_ops fake_ops = {
    .call = fake_call, .cancel = fake_cancel, .forget = fake_forget, .free = fake_free};

/* ---- helpers ---- */

static struct wire_world W;
static struct fake *F; /* the agent behind W's agent API */

static void run_for(int ms)
{
    bool never = false;
    wire_run_until(&W, &never, ms);
}

static int setup(void **s)
{
    wire_base(&W);
    F = calloc(1, sizeof *F);
    F->pub.ops = &fake_ops;
    F->base = W.base;
    wire_up(&W, &F->pub);
    return 0;
}

static int teardown(void **s)
{
    wire_down(&W, &F->pub);
    return 0;
}

struct got {
    bool done;
    json_t *result;
    struct yerr err;
    int nprogress;
    uint64_t last_done;
};

static void got_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct got *g = ctx;
    assert_false(g->done);
    g->done = true;
    g->result = json_incref(result);
    if (err)
        g->err = *err;
}

static void got_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct got *g = ctx;
    g->nprogress++;
    g->last_done = done;
}

/* ---- tests ---- */

static void test_url(void **s)
{
    char host[64], prefix[64];
    int port;
    struct yerr e = {0};
    assert_int_equal(hclient_parse_url("http://10.0.0.1:7781", host, sizeof host, &port, prefix,
                                       sizeof prefix, &e),
                     0);
    assert_string_equal(host, "10.0.0.1");
    assert_int_equal(port, 7781);
    assert_string_equal(prefix, "");
    assert_int_equal(hclient_parse_url("http://[::1]:80/x/", host, sizeof host, &port, prefix,
                                       sizeof prefix, &e),
                     0);
    assert_string_equal(host, "::1");
    assert_string_equal(prefix, "/x");
    assert_int_equal(
        hclient_parse_url("http://localhost", host, sizeof host, &port, prefix, sizeof prefix, &e),
        0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 80);
    assert_int_equal(hclient_parse_url("http://example.com:80", host, sizeof host, &port, prefix,
                                       sizeof prefix, &e),
                     -1);
    assert_int_equal(e.code, YE_INVALID_ARGUMENT);
    assert_int_equal(
        hclient_parse_url("https://1.2.3.4", host, sizeof host, &port, prefix, sizeof prefix, &e),
        -1);
    assert_int_equal(hclient_parse_url("http://1.2.3.4:99999", host, sizeof host, &port, prefix,
                                       sizeof prefix, &e),
                     -1);
    assert_null(agent_remote_new(W.base, "http://agent.example:1", CRED, "x"));
}

static void test_result_and_error(void **s)
{
    struct got g = {0}, g2 = {0};
    uint64_t id = agent_call(W.remote, AV_HOST_FACTS, NULL, got_reply, NULL, &g);
    assert_true(id > 0);
    assert_false(g.done); /* never from inside agent_call */
    agent_call(W.remote, AV_DISK_CREATE, json_pack("{s:s}", "path", "/x"), got_reply, NULL, &g2);
    wire_run_until(&W, &g2.done, 3000);
    wire_run_until(&W, &g.done, 3000);
    assert_true(g.done);
    assert_int_equal(g.err.code, YE_NONE);
    assert_int_equal(json_integer_value(json_object_get(g.result, "cpus")), 4);
    assert_true(g2.done);
    assert_null(g2.result);
    assert_int_equal(g2.err.code, YE_NO_SPACE); /* the agent's code, kept */
    assert_string_equal(g2.err.message, "disk full");
    json_decref(g.result);
    assert_int_equal(agent_remote_pending(W.remote), 0);
}

struct hgot {
    bool done;
    int status;
    json_t *reply;
    struct yerr err;
};

static void hgot(void *ctx, int status, json_t *reply, const struct yerr *err)
{
    struct hgot *g = ctx;
    g->done = true;
    g->status = status;
    g->reply = json_incref(reply);
    if (err)
        g->err = *err;
}

static void test_idempotent(void **s)
{
    struct hclient *h = hclient_new(W.base, W.url);
    struct hgot a = {0}, b = {0}, c = {0};
    json_t *body = json_pack("{s:s,s:s,s:{},s:i}", "id", "ctlrun-7", "verb", "guest.exec", "args",
                             "deadline_ms", 5000);
    hclient_request(h, "POST", "/agent/v1/call", json_incref(body), CRED, NULL, 5000, hgot, &a);
    run_for(50);
    /* a repeat while it runs joins it */
    hclient_request(h, "POST", "/agent/v1/call", json_incref(body), CRED, NULL, 5000, hgot, &b);
    wire_run_until(&W, &a.done, 3000);
    wire_run_until(&W, &b.done, 3000);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    assert_true(json_equal(a.reply, b.reply));
    /* a repeat after it finished gets the same answer */
    hclient_request(h, "POST", "/agent/v1/call", body, CRED, NULL, 5000, hgot, &c);
    wire_run_until(&W, &c.done, 3000);
    assert_int_equal(c.status, 200);
    assert_true(json_equal(a.reply, c.reply));
    assert_int_equal(F->runs[AV_GUEST_EXEC], 1);
    assert_int_equal(agent_serve_entries(W.serve), 1);
    assert_true(agent_serve_bytes(W.serve) > 0);
    json_decref(a.reply);
    json_decref(b.reply);
    json_decref(c.reply);

    /* bad bodies: no state change */
    const char *bad[] = {
        "{\"id\":\"\",\"verb\":\"host.facts\",\"args\":{}}",
        "{\"id\":\"x\",\"verb\":\"no.such\",\"args\":{}}",
        "{\"id\":\"x\",\"verb\":\"host.facts\",\"args\":[]}",
        "{\"id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "\",\"verb\":\"host.facts\",\"args\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct hgot d = {0};
        hclient_request(h, "POST", "/agent/v1/call", json_loads(bad[i], 0, NULL), CRED, NULL, 3000,
                        hgot, &d);
        wire_run_until(&W, &d.done, 3000);
        assert_int_equal(d.status, 400);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(d.reply, "error"), "code")),
            "invalid_argument");
        json_decref(d.reply);
    }
    assert_int_equal(agent_serve_entries(W.serve), 1);
    assert_int_equal(F->runs[AV_HOST_FACTS], 0);

    /* past its deadline_ms the agent asks the verb to stop */
    struct hgot dl = {0};
    hclient_request(h, "POST", "/agent/v1/call",
                    json_pack("{s:s,s:s,s:{},s:i}", "id", "ctlrun-8", "verb", "disk.copy", "args",
                              "deadline_ms", 100),
                    CRED, NULL, 5000, hgot, &dl);
    wire_run_until(&W, &dl.done, 4000);
    assert_int_equal(dl.status, 409);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(dl.reply, "error"), "code")),
        "cancelled");
    json_decref(dl.reply);

    /* health */
    struct hgot e = {0};
    hclient_request(h, "GET", "/agent/v1/health", NULL, CRED, NULL, 3000, hgot, &e);
    wire_run_until(&W, &e.done, 3000);
    assert_int_equal(e.status, 200);
    assert_string_equal(json_string_value(json_object_get(e.reply, "host_id")), "h-1");
    assert_int_equal(json_integer_value(json_object_get(e.reply, "protocol")), 1);
    json_decref(e.reply);
    hclient_free(h);
}

static void test_credential(void **s)
{
    struct agent *bad = agent_remote_new(W.base, W.url, "wrong", "h1");
    struct got g = {0};
    agent_call(bad, AV_HOST_FACTS, NULL, got_reply, NULL, &g);
    wire_run_until(&W, &g.done, 3000);
    assert_true(g.done);
    assert_int_equal(g.err.code, YE_UNAUTHORIZED);
    assert_int_equal(F->runs[AV_HOST_FACTS], 0);
    agent_free(bad);

    struct hclient *h = hclient_new(W.base, W.url);
    struct hgot a = {0};
    hclient_request(h, "GET", "/agent/v1/health", NULL, NULL, NULL, 3000, hgot, &a);
    wire_run_until(&W, &a.done, 3000);
    assert_int_equal(a.status, 401);
    json_decref(a.reply);
    /* before the join: nothing is accepted */
    agent_serve_set_credential(W.serve, NULL);
    struct hgot b = {0};
    hclient_request(h, "GET", "/agent/v1/health", NULL, "", NULL, 3000, hgot, &b);
    wire_run_until(&W, &b.done, 3000);
    assert_int_equal(b.status, 401);
    json_decref(b.reply);
    agent_serve_set_credential(W.serve, CRED);
    hclient_free(h);
}

static void test_cancel_and_deadline(void **s)
{
    struct got g = {0}, t = {0};
    uint64_t id = agent_call(W.remote, AV_DISK_COPY, NULL, got_reply, got_progress, &g);
    run_for(150);
    assert_false(g.done);
    assert_int_equal(agent_cancel(W.remote, id), 0);
    assert_int_equal(agent_cancel(W.remote, 999999), -1);
    wire_run_until(&W, &g.done, 3000);
    assert_true(g.done);
    assert_int_equal(g.err.code, YE_CANCELLED);

    agent_remote_set_deadline(W.remote, 300);
    agent_call(W.remote, AV_VM_STATUS, NULL, got_reply, NULL, &t);
    wire_run_until(&W, &t.done, 3000);
    assert_true(t.done);
    assert_int_equal(t.err.code, YE_TIMEOUT);
    agent_remote_set_deadline(W.remote, 0);

    /* forget: the callback never runs */
    struct got f = {0};
    agent_call(W.remote, AV_HOST_FACTS, NULL, got_reply, NULL, &f);
    agent_forget(W.remote, &f);
    run_for(200);
    assert_false(f.done);
    assert_int_equal(agent_remote_pending(W.remote), 0);

    /* calls outstanding at free: dropped, nothing leaks (ASan) */
    struct got z = {0};
    agent_call(W.remote, AV_VM_STATUS, NULL, got_reply, NULL, &z);
    run_for(50);
    assert_int_equal(agent_remote_pending(W.remote), 1);
}

/* ---- a raw server answering garbage ---- */

static const char *raw_answer;

static int raw_drop; /* requests to answer by closing the connection */
static char raw_ids[4][64];
static int raw_nids;

static void raw_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    const char *p = (const char *)evbuffer_pullup(in, -1);
    const char *end = p ? memmem(p, n, "\r\n\r\n", 4) : NULL;
    if (!end)
        return;
    const char *cl = memmem(p, n, "Content-Length: ", 16);
    size_t want = (size_t)(end + 4 - p) + (cl ? strtoul(cl + 16, NULL, 10) : 0);
    if (n < want)
        return;
    json_t *body = json_loadb(end + 4, want - (size_t)(end + 4 - p), 0, NULL);
    const char *id = json_string_value(json_object_get(body, "id"));
    if (id && raw_nids < 4)
        snprintf(raw_ids[raw_nids++], sizeof raw_ids[0], "%s", id);
    json_decref(body);
    evbuffer_drain(in, n);
    if (raw_drop > 0) {
        raw_drop--;
        bufferevent_free(bev);
        return;
    }
    bufferevent_write(bev, raw_answer, strlen(raw_answer));
}

static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                       void *arg)
{
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, raw_read, NULL, raw_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void test_garbage(void **s)
{
    int port;
    int fd = wire_listen_local(&port);
    struct evconnlistener *l =
        evconnlistener_new(W.base, raw_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    struct agent *r = agent_remote_new(W.base, url, CRED, "liar");
    const char *answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 500 Oops\r\nContent-Length: 17\r\n\r\n{\"error\":\"nope\"}\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"result\":[1,2]}",
    };
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        raw_answer = answers[i];
        struct got g = {0};
        agent_call(r, AV_HOST_FACTS, NULL, got_reply, NULL, &g);
        wire_run_until(&W, &g.done, 3000);
        assert_true(g.done);
        if (i == 3) { /* a result that is JSON: the caller's verb checks its shape */
            assert_int_equal(g.err.code, YE_NONE);
            json_decref(g.result);
            continue;
        }
        assert_int_equal(g.err.code, YE_BAD_GATEWAY);
        assert_int_equal(yerr_code_status(g.err.code), 502);
    }
    /* a connection reset before any answer: retried once with the same id */
    raw_answer = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"result\":{}}";
    raw_drop = 1;
    raw_nids = 0;
    struct got rg = {0};
    agent_call(r, AV_VM_END, NULL, got_reply, NULL, &rg);
    wire_run_until(&W, &rg.done, 3000);
    assert_int_equal(rg.err.code, YE_NONE);
    json_decref(rg.result);
    assert_int_equal(raw_nids, 2);
    assert_string_equal(raw_ids[0], raw_ids[1]);
    /* twice: the error */
    raw_drop = 2;
    raw_nids = 0;
    struct got r2 = {0};
    agent_call(r, AV_VM_END, NULL, got_reply, NULL, &r2);
    wire_run_until(&W, &r2.done, 3000);
    assert_int_equal(r2.err.code, YE_UNAVAILABLE);
    assert_int_equal(raw_nids, 2);
    /* guest.exec is never sent twice */
    raw_drop = 1;
    raw_nids = 0;
    struct got r3 = {0};
    agent_call(r, AV_GUEST_EXEC, NULL, got_reply, NULL, &r3);
    wire_run_until(&W, &r3.done, 3000);
    assert_int_equal(r3.err.code, YE_UNAVAILABLE);
    assert_int_equal(raw_nids, 1);
    agent_free(r);

    /* hclient itself: a reply over 64 MiB, a cancelled request, a request
     * that cannot start (its callback still comes from the loop) */
    struct hclient *h = hclient_new(W.base, url);
    raw_answer = "HTTP/1.1 200 OK\r\nContent-Length: 70000000\r\n\r\n{";
    struct hgot big = {0}, gone1 = {0}, bad = {0};
    hclient_request(h, "POST", "/x", json_object(), NULL, NULL, 3000, hgot, &big);
    wire_run_until(&W, &big.done, 3000);
    assert_true(big.done);
    assert_null(big.reply);
    assert_int_equal(big.err.code, YE_TOO_LARGE);
    raw_answer = ""; /* never answers: the request is in flight when cancelled */
    struct hclient_req *cr = hclient_request(h, "GET", "/x", NULL, NULL, NULL, 3000, hgot, &gone1);
    run_for(50);
    assert_false(gone1.done);
    hclient_cancel(cr);
    raw_answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    cr = hclient_request(h, "GET", "/x", NULL, NULL, NULL, 3000, hgot, &gone1);
    hclient_cancel(cr); /* before it was sent */
    run_for(200);
    assert_false(gone1.done);
    hclient_request(h, "BREW", "/x", NULL, NULL, NULL, 3000, hgot, &bad);
    assert_false(bad.done);
    wire_run_until(&W, &bad.done, 1000);
    assert_int_equal(bad.err.code, YE_INVALID_ARGUMENT);
    assert_int_equal(hclient_pending(h), 0);
    hclient_request(h, "GET", "/x", NULL, NULL, NULL, 3000, hgot, &gone1);
    hclient_free(h); /* outstanding: dropped without a callback */
    run_for(100);
    assert_false(gone1.done);
    evconnlistener_free(l);

    /* nobody listening: unavailable, after the one retry */
    struct agent *gone = agent_remote_new(W.base, "http://127.0.0.1:1", CRED, "gone");
    struct got g = {0};
    agent_call(gone, AV_HOST_FACTS, NULL, got_reply, NULL, &g);
    wire_run_until(&W, &g.done, 3000);
    assert_true(g.done);
    assert_int_equal(g.err.code, YE_UNAVAILABLE);
    assert_non_null(strstr(g.err.message, "host gone"));
    agent_free(gone);
}

/* ---- events: agent_push -> a controller route -> agent_remote_deliver ---- */

struct seen {
    char types[64][32];
    int n;
};

static void on_seen(void *ctx, const char *type, json_t *ev)
{
    struct seen *s = ctx;
    if (s->n < 64)
        snprintf(s->types[s->n++], sizeof s->types[0], "%s", type);
}

static int ctl_batches, ctl_fail_first;

static void ctl_request(struct hreq *req, void *arg)
{
    struct agent *remote = arg;
    const char *auth = evhttp_find_header(hreq_input_headers(req), "Authorization");
    const char *host = evhttp_find_header(hreq_input_headers(req), "X-Yun-Host");
    struct evbuffer *out = evbuffer_new();
    int status = 200;
    ctl_batches++;
    if (ctl_fail_first > 0) {
        ctl_fail_first--;
        status = 503;
        evbuffer_add_printf(out, "{\"error\":{\"code\":\"unavailable\",\"message\":\"later\"}}");
    } else if (!auth || strcmp(auth, "Bearer " CRED) || !host || strcmp(host, "h-1")) {
        status = 401;
        evbuffer_add_printf(out, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"no\"}}");
    } else {
        struct evbuffer *b = hreq_body(req);
        json_t *body =
            json_loadb((const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b), 0, NULL);
        uint64_t ack = 0;
        struct yerr e = {0};
        if (agent_remote_deliver(remote, json_object_get(body, "events"),
                                 json_string_value(json_object_get(body, "run")), &ack, &e) < 0) {
            status = 400;
            evbuffer_add_printf(out,
                                "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"x\"}}");
        } else {
            evbuffer_add_printf(out, "{\"ack\":%llu}", (unsigned long long)ack);
        }
        json_decref(body);
    }
    hreq_send(req, status, out);
    evbuffer_free(out);
}

static void test_events(void **s)
{
    struct seen seen = {0};
    agent_subscribe(W.remote, on_seen, &seen);
    struct httpd_limits lim = {1 << 20, 16384, 16, 30};
    struct httpd *ctl = httpd_new(W.base, &lim);
    int port;
    assert_int_equal(httpd_listen_fd(ctl, wire_listen_local(&port), ctl_request, W.remote), 0);
    char url[64], dead[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    snprintf(dead, sizeof dead, "http://127.0.0.1:1");
    const char *urls[] = {dead, "http://not.numeric:1", url};
    struct agent_push *p = agent_push_new(W.base, &F->pub, "h-1", CRED, urls, 3);
    assert_non_null(p);
    ctl_fail_first = 1;
    json_t *ev = json_pack("{s:s}", "vm", "v1");
    agent_emit(&F->pub, "vm.exited", ev);
    agent_emit(&F->pub, "vm.qmp_event", ev);
    agent_emit(&F->pub, "vm.agent", ev);
    json_decref(ev);
    assert_int_equal(agent_push_queued(p), 3);
    for (int i = 0; i < 100 && agent_push_acked(p) < 3; i++)
        run_for(50);
    assert_int_equal(agent_push_acked(p), 3);
    assert_int_equal(agent_push_queued(p), 0);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.types[0], "vm.exited");
    assert_string_equal(seen.types[1], "vm.qmp_event");
    assert_string_equal(seen.types[2], "vm.agent");
    assert_string_equal(agent_push_url(p), url);

    /* a running call's progress travels as call.progress to its caller */
    struct got g = {0};
    uint64_t id = agent_call(W.remote, AV_DISK_COPY, NULL, got_reply, got_progress, &g);
    for (int i = 0; i < 60 && g.nprogress < 2; i++)
        run_for(50);
    assert_true(g.nprogress >= 1);
    agent_cancel(W.remote, id);
    wire_run_until(&W, &g.done, 3000);
    assert_int_equal(g.err.code, YE_CANCELLED);
    assert_int_equal(seen.n, 3); /* progress is not an event of the host */

    /* dedup by (run, seq); a new run starts over; a bad batch takes nothing */
    json_t *batch = json_loads("[{\"seq\":1,\"type\":\"vm.exited\",\"data\":{\"vm\":\"a\"}},"
                               "{\"seq\":2,\"type\":\"vm.exited\",\"data\":{\"vm\":\"b\"}}]",
                               0, NULL);
    uint64_t ack = 0;
    struct yerr e = {0};
    assert_int_equal(agent_remote_deliver(W.remote, batch, "run-b", &ack, &e), 0);
    assert_int_equal(ack, 2);
    assert_int_equal(seen.n, 5);
    assert_int_equal(agent_remote_deliver(W.remote, batch, "run-b", &ack, &e), 0);
    assert_int_equal(ack, 2);
    assert_int_equal(seen.n, 5);
    assert_int_equal(agent_remote_deliver(W.remote, batch, "run-c", &ack, &e), 0);
    assert_int_equal(seen.n, 7);
    json_decref(batch);
    const char *bad[] = {
        "[{\"seq\":3,\"type\":\"x\",\"data\":{}},{\"seq\":3,\"type\":\"y\",\"data\":{}}]",
        "[{\"seq\":3,\"type\":\"x\",\"data\":[]}]",
        "[{\"seq\":\"3\",\"type\":\"x\",\"data\":{}}]",
        "[{\"seq\":3,\"type\":\"\",\"data\":{}}]",
        "[{\"seq\":3,\"data\":{}}]",
        "{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        batch = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_int_equal(agent_remote_deliver(W.remote, batch, "run-c", &ack, &e), -1);
        assert_int_equal(e.code, YE_INVALID_ARGUMENT);
        json_decref(batch);
    }
    assert_int_equal(seen.n, 7);

    agent_push_free(p);
    assert_int_equal(F->pub.nsubs, 0);
    httpd_free(ctl);
}

static void test_push_bound(void **s)
{
    const char *urls[] = {"http://127.0.0.1:1"};
    struct agent_push *p = agent_push_new(W.base, &F->pub, "h-1", "", urls, 1);
    json_t *ev = json_object();
    for (int i = 0; i < AGENT_PUSH_QUEUE_MAX + 10; i++)
        agent_emit(&F->pub, "vm.agent", ev);
    json_decref(ev);
    assert_int_equal(agent_push_queued(p), AGENT_PUSH_QUEUE_MAX);
    assert_true(agent_push_dropped(p) >= 10);
    agent_push_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result_and_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_push_bound, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
