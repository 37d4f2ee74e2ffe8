/* test_qmp_watch.c - the QMP event connection (compute/qmp.c) as vm.launch
 * uses it: commands queued before QEMU's greeting (query-status and the
 * pipelined remove-fds) go out only after qmp_capabilities, all at once
 * and in order; each reply reaches its own callback by id, an error as
 * its description; qmp_watch_room() counts the replies still due against
 * the fixed limit, and a full connection refuses a command; a forgotten
 * context gets no reply. The monitor is a scripted thread that greets
 * only when told, as QEMU's main loop answers only once it runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "compute/qmp.h"

struct fake {
    int lsock;
    int greet[2];   /* a byte on greet[1]: send the greeting */
    char log[4096]; /* "command " for each, in the order received */
    int before;     /* commands already in the socket when the greeting went out */
};

static void say(int s, const char *line)
{
    assert_int_equal(write(s, line, strlen(line)), (ssize_t)strlen(line));
}

static void *fake_run(void *arg)
{
    struct fake *f = arg;
    int s = accept(f->lsock, NULL, NULL);
    if (s < 0)
        return NULL;
    char c;
    assert_int_equal(read(f->greet[0], &c, 1), 1);
    say(s, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
    char buf[65536];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(s, buf + len, sizeof buf - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = 0;
            json_t *j = json_loads(buf, 0, NULL);
            memmove(buf, nl + 1, len - (size_t)(nl + 1 - buf) + 1);
            len = strlen(buf);
            const char *cmd = json_string_value(json_object_get(j, "execute"));
            json_t *id = json_object_get(j, "id");
            assert_non_null(cmd);
            strcat(f->log, cmd);
            strcat(f->log, " ");
            char line[300];
            if (!strcmp(cmd, "query-status"))
                snprintf(line, sizeof line, "{\"return\": {\"status\": \"prelaunch\"}");
            else if (!strcmp(cmd, "remove-fd") &&
                     json_integer_value(
                         json_object_get(json_object_get(j, "arguments"), "fdset-id")) == 3)
                snprintf(line, sizeof line,
                         "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no fdset 3\"}");
            else
                snprintf(line, sizeof line, "{\"return\": {}");
            if (json_is_integer(id))
                snprintf(line + strlen(line), sizeof line - strlen(line), ", \"id\": %lld}\n",
                         (long long)json_integer_value(id));
            else
                strcat(line, "}\n");
            say(s, line);
            json_decref(j);
        }
    }
    close(s);
    return NULL;
}

struct replies {
    char log[1024]; /* "tag:ok " or "tag:error(desc) " in the order they came */
};

struct tag {
    struct replies *r;
    const char *name;
};

static void on_reply(void *ctx, json_t *ret, const char *err)
{
    struct tag *t = ctx;
    size_t n = strlen(t->r->log);
    if (err)
        snprintf(t->r->log + n, sizeof t->r->log - n, "%s:error(%s) ", t->name, err);
    else
        snprintf(t->r->log + n, sizeof t->r->log - n, "%s:%s ", t->name,
                 json_is_object(ret) && json_object_get(ret, "status") ? "status" : "ok");
}

static void spin(struct event_base *base, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        struct timeval tv = {0, 5000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static void test_queued_before_greeting(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-qmpw-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sock[600];
    snprintf(sock, sizeof sock, "%s/qmpe.sock", dir);
    struct fake f;
    memset(&f, 0, sizeof f);
    assert_int_equal(pipe(f.greet), 0);
    f.lsock = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    assert_int_equal(bind(f.lsock, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f.lsock, 1), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fake_run, &f), 0);

    struct event_base *base = event_base_new();
    char why[256];
    struct qmp_watch *w = qmp_watch_open(base, sock, NULL, NULL, NULL, why, sizeof why);
    assert_non_null(w);
    assert_int_equal(qmp_watch_room(NULL), 0);
    int room = qmp_watch_room(w);
    assert_true(room >= 8);

    struct replies r;
    memset(&r, 0, sizeof r);
    struct tag status = {&r, "status"}, fd2 = {&r, "fd2"}, fd3 = {&r, "fd3"}, fd4 = {&r, "fd4"},
               gone = {&r, "gone"}, cont = {&r, "cont"};
    assert_int_equal(qmp_watch_command(w, "query-status", NULL, on_reply, &status), 0);
    struct tag *fds[] = {&fd2, &fd3, &fd4};
    for (int i = 0; i < 3; i++) {
        json_t *args = json_pack("{s:i}", "fdset-id", i + 2);
        assert_int_equal(qmp_watch_command(w, "remove-fd", args, on_reply, fds[i]), 0);
        json_decref(args);
    }
    assert_int_equal(qmp_watch_command(w, "query-chardev", NULL, on_reply, &gone), 0);
    assert_int_equal(qmp_watch_room(w), room - 5);
    qmp_watch_forget(w, &gone); /* its reply is dropped; its room comes back with it */
    assert_int_equal(qmp_watch_room(w), room - 4);

    /* nothing goes out before the greeting */
    spin(base, 4);
    assert_string_equal(f.log, "");
    assert_string_equal(r.log, "");
    assert_int_equal(write(f.greet[1], "g", 1), 1);
    for (int i = 0; i < 200 && strlen(r.log) < 30; i++)
        spin(base, 1);
    assert_string_equal(f.log, "qmp_capabilities query-status remove-fd remove-fd remove-fd "
                               "query-chardev ");
    assert_string_equal(r.log, "status:status fd2:ok fd3:error(no fdset 3) fd4:ok ");
    assert_int_equal(qmp_watch_room(w), room);

    /* negotiated: a command goes out at once; a full connection refuses */
    assert_int_equal(qmp_watch_command(w, "cont", NULL, on_reply, &cont), 0);
    for (int i = 0; i < 200 && !strstr(r.log, "cont:"); i++)
        spin(base, 1);
    assert_non_null(strstr(r.log, "cont:ok"));
    for (int i = 0; i < room; i++)
        assert_int_equal(qmp_watch_command(w, "query-status", NULL, on_reply, &gone), 0);
    assert_int_equal(qmp_watch_room(w), 0);
    assert_int_equal(qmp_watch_command(w, "query-status", NULL, on_reply, &gone), -1);
    qmp_watch_forget(w, &gone);
    assert_int_equal(qmp_watch_room(w), room);
    spin(base, 10);
    assert_null(strstr(r.log, "gone:"));

    qmp_watch_close(w);
    event_base_loop(base, EVLOOP_NONBLOCK); /* the socket closes */
    pthread_join(th, NULL);
    close(f.lsock);
    close(f.greet[0]);
    close(f.greet[1]);
    event_base_free(base);
    unlink(sock);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_queued_before_greeting)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
