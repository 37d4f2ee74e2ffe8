/*
 * test_qga.c - the asynchronous guest agent client against a fake agent on
 * a Unix socket, both on one libevent loop: the 0xFF + guest-sync-delimited
 * handshake past stale data, queued exchanges on one connection, agent
 * errors, an agent that never answers, a missing socket, cancellation, and
 * freeing the client from inside its own callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "compute/qga.h"

enum agent_mode { AGENT_OK, AGENT_ERROR, AGENT_SILENT };

struct fake_agent {
    struct event_base *base;
    struct evconnlistener *listener;
    struct bufferevent *bev;
    enum agent_mode mode;
    char path[108];
    int conns;
    int syncs;
    int ff_first; /* syncs that came after a 0xFF byte */
    char cmds[8][64];
    int ncmds;
};

static void agent_read(struct bufferevent *bev, void *arg)
{
    struct fake_agent *a = arg;
    char *line;
    size_t n;
    while ((line = evbuffer_readln(bufferevent_get_input(bev), &n, EVBUFFER_EOL_LF))) {
        char *p = line;
        bool ff = false;
        while (*p == '\xff') {
            p++;
            ff = true;
        }
        json_t *j = json_loads(p, 0, NULL);
        free(line);
        const char *cmd = json_string_value(json_object_get(j, "execute"));
        if (!cmd) {
            json_decref(j);
            continue;
        }
        if (!strcmp(cmd, "guest-sync-delimited")) {
            a->syncs++;
            a->ff_first += ff;
            if (a->mode != AGENT_SILENT) {
                json_int_t id =
                    json_integer_value(json_object_get(json_object_get(j, "arguments"), "id"));
                /* a stale reply from an earlier client first, then ours */
                evbuffer_add_printf(bufferevent_get_output(bev),
                                    "{\"return\": 4242}\n\xff{\"return\": %lld}\n", (long long)id);
            }
        } else {
            snprintf(a->cmds[a->ncmds++ % 8], 64, "%s", cmd);
            if (a->mode == AGENT_OK && strcmp(cmd, "guest-shutdown"))
                evbuffer_add_printf(bufferevent_get_output(bev),
                                    "{\"return\": {\"cmd\": \"%s\"}}\n", cmd);
            else if (a->mode == AGENT_ERROR)
                evbuffer_add_printf(
                    bufferevent_get_output(bev),
                    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\n");
        }
        json_decref(j);
    }
}

static void agent_event(struct bufferevent *bev, short what, void *arg)
{
    struct fake_agent *a = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        bufferevent_free(bev);
        if (a->bev == bev)
            a->bev = NULL;
    }
}

static void agent_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                         void *arg)
{
    struct fake_agent *a = arg;
    a->conns++;
    if (a->bev)
        bufferevent_free(a->bev);
    a->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(a->bev, agent_read, NULL, agent_event, a);
    bufferevent_enable(a->bev, EV_READ | EV_WRITE);
    /* what an earlier client left unread: half a line, then a whole one */
    evbuffer_add_printf(bufferevent_get_output(a->bev), "rn\": {}}\n{\"return\": {}}\n");
}

static void agent_start(struct fake_agent *a, struct event_base *base, enum agent_mode mode)
{
    memset(a, 0, sizeof(*a));
    a->base = base;
    a->mode = mode;
    snprintf(a->path, sizeof(a->path), "/tmp/yun-test-qga-%d.sock", (int)getpid());
    unlink(a->path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->path);
    a->listener = evconnlistener_new_bind(base, agent_accept, a, LEV_OPT_CLOSE_ON_FREE, 16,
                                          (struct sockaddr *)&sa, sizeof(sa));
    assert_non_null(a->listener);
}

static void agent_stop(struct fake_agent *a)
{
    if (a->bev)
        bufferevent_free(a->bev);
    evconnlistener_free(a->listener);
    unlink(a->path);
}

struct result {
    int calls;
    enum qga_status st;
    char ret[128];
    char err[256];
    struct qga_client *free_me; /* freed from inside the callback */
};

static void on_done(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct result *r = ctx;
    r->calls++;
    r->st = st;
    const char *cmd = json_string_value(json_object_get(ret, "cmd"));
    snprintf(r->ret, sizeof(r->ret), "%s", cmd ? cmd : "");
    snprintf(r->err, sizeof(r->err), "%s", err);
    if (r->free_me)
        qga_client_free(r->free_me);
}

/* Runs the loop until every result has been called back (or 5 s pass;
 * each test has its own event base, so the exit timer dies with it). */
static void run_until(struct event_base *base, struct result **rs, int n)
{
    struct timeval limit = {5, 0};
    event_base_loopexit(base, &limit);
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++)
            all &= rs[i]->calls > 0;
        if (all || event_base_got_exit(base))
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
}

static void test_sync_past_stale_data_then_queued_commands(void **state)
{
    struct event_base *base = event_base_new();
    struct fake_agent a;
    agent_start(&a, base, AGENT_OK);
    struct qga_client *c = qga_client_new(base, a.path);
    struct result r1 = {0}, r2 = {0};
    assert_int_equal(qga_call(c, "guest-get-osinfo", NULL, 0, 3000, on_done, &r1), 0);
    assert_int_equal(qga_call(c, "guest-get-host-name", NULL, 0, 3000, on_done, &r2), 0);
    assert_int_equal(r1.calls + r2.calls, 0); /* never called back from inside qga_call */
    assert_int_equal(qga_pending(c), 2);
    run_until(base, (struct result *[]){&r1, &r2}, 2);
    assert_int_equal(r1.st, QGA_OK);
    assert_string_equal(r1.ret, "guest-get-osinfo");
    assert_int_equal(r2.st, QGA_OK);
    assert_string_equal(r2.ret, "guest-get-host-name");
    /* one connection, one handshake (preceded by 0xFF), commands in order */
    assert_int_equal(a.conns, 1);
    assert_int_equal(a.syncs, 1);
    assert_int_equal(a.ff_first, 1);
    assert_string_equal(a.cmds[0], "guest-get-osinfo");
    assert_string_equal(a.cmds[1], "guest-get-host-name");
    assert_int_equal(qga_pending(c), 0);
    qga_client_free(c);
    agent_stop(&a);
    event_base_free(base);
}

static void test_agent_error_and_no_reply_command(void **state)
{
    struct event_base *base = event_base_new();
    struct fake_agent a;
    agent_start(&a, base, AGENT_ERROR);
    struct qga_client *c = qga_client_new(base, a.path);
    struct result r = {0};
    qga_call(c, "guest-exec", NULL, 0, 3000, on_done, &r);
    run_until(base, (struct result *[]){&r}, 1);
    assert_int_equal(r.st, QGA_ERROR);
    assert_string_equal(r.err, "GenericError: nope");
    a.mode = AGENT_OK;
    struct result s = {0};
    qga_call(c, "guest-shutdown", NULL, QGA_NO_REPLY, 3000, on_done, &s);
    run_until(base, (struct result *[]){&s}, 1);
    assert_int_equal(s.st, QGA_OK);
    /* done once written: the agent reads it a moment later */
    struct timeval limit = {5, 0};
    event_base_loopexit(base, &limit);
    while (a.ncmds < 2 && !event_base_got_exit(base))
        event_base_loop(base, EVLOOP_ONCE);
    assert_string_equal(a.cmds[1], "guest-shutdown");
    qga_client_free(c);
    agent_stop(&a);
    event_base_free(base);
}

static void test_silent_agent_times_out_and_missing_socket_fails(void **state)
{
    struct event_base *base = event_base_new();
    struct fake_agent a;
    agent_start(&a, base, AGENT_SILENT);
    struct qga_client *c = qga_client_new(base, a.path);
    struct result r = {0}, q = {0};
    qga_call(c, "guest-get-osinfo", NULL, 0, 100, on_done, &r);
    qga_call(c, "guest-get-host-name", NULL, 0, 100, on_done, &q);
    run_until(base, (struct result *[]){&r, &q}, 2);
    assert_int_equal(r.st, QGA_FAILED);
    assert_non_null(strstr(r.err, "does not answer"));
    assert_int_equal(q.st, QGA_FAILED);
    assert_int_equal(a.ncmds, 0);
    /* one queued behind a long exchange still ends at its own deadline */
    struct result slow = {0}, quick = {0};
    qga_call(c, "guest-get-osinfo", NULL, 0, 60000, on_done, &slow);
    qga_call(c, "guest-shutdown", NULL, QGA_NO_REPLY, 100, on_done, &quick);
    run_until(base, (struct result *[]){&quick}, 1);
    assert_int_equal(quick.st, QGA_FAILED);
    assert_non_null(strstr(quick.err, "busy with an earlier exchange"));
    assert_int_equal(slow.calls, 0);
    assert_int_equal(qga_pending(c), 1);
    qga_client_free(c);
    assert_int_equal(slow.st, QGA_CANCELLED);
    agent_stop(&a);

    c = qga_client_new(base, "/nonexistent/qga.sock");
    struct result m = {0};
    qga_call(c, "guest-ping", NULL, 0, 1000, on_done, &m);
    run_until(base, (struct result *[]){&m}, 1);
    assert_int_equal(m.st, QGA_FAILED);
    assert_non_null(strstr(m.err, "cannot connect"));
    qga_client_free(c);
    event_base_free(base);
}

static void test_cancel_and_free(void **state)
{
    struct event_base *base = event_base_new();
    struct fake_agent a;
    agent_start(&a, base, AGENT_SILENT);
    struct qga_client *c = qga_client_new(base, a.path);
    struct result gone = {0}, kept = {0}, left = {0};
    qga_call(c, "guest-get-osinfo", NULL, 0, 3000, on_done, &gone);
    qga_call(c, "guest-get-host-name", NULL, 0, 3000, on_done, &kept);
    qga_call(c, "guest-ping", NULL, 0, 3000, on_done, &gone);
    qga_cancel(c, &gone);
    assert_int_equal(qga_pending(c), 1);
    event_base_loop(base, EVLOOP_NONBLOCK); /* starts the exchange */
    /* freeing reports what is left as cancelled, and nothing else after */
    qga_call(c, "guest-info", NULL, 0, 3000, on_done, &left);
    qga_client_free(c);
    assert_int_equal(gone.calls, 0);
    assert_int_equal(kept.calls, 1);
    assert_int_equal(kept.st, QGA_CANCELLED);
    assert_int_equal(left.calls, 1);
    assert_int_equal(left.st, QGA_CANCELLED);
    event_base_loop(base, EVLOOP_NONBLOCK);

    /* a callback may free its own client */
    a.mode = AGENT_OK;
    c = qga_client_new(base, a.path);
    struct result first = {.free_me = c}, second = {0};
    qga_call(c, "guest-get-osinfo", NULL, 0, 3000, on_done, &first);
    qga_call(c, "guest-get-host-name", NULL, 0, 3000, on_done, &second);
    run_until(base, (struct result *[]){&first, &second}, 2);
    assert_int_equal(first.st, QGA_OK);
    assert_int_equal(second.st, QGA_CANCELLED);
    assert_int_equal(first.calls + second.calls, 2);
    agent_stop(&a);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_past_stale_data_then_queued_commands),
        cmocka_unit_test(test_agent_error_and_no_reply_command),
        cmocka_unit_test(test_silent_agent_times_out_and_missing_socket_fails),
        cmocka_unit_test(test_cancel_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
