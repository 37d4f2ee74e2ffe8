/*
 * fuzz_qmp_watch.c - what QEMU sends on the event monitor yund keeps open
 * (compute/qmp.c's struct qmp_watch): the greeting, replies to the commands
 * queued on it (query-chardev, query-blockstats ...), events, noise, and
 * EOF. The harness plays QEMU on a Unix socket: the bytes are its whole
 * output, then it closes; the watch must deliver what parses and report EOF.
 */
#include "fuzz.h"

#include "compute/qmp.h"

#include <event2/event.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

static struct event_base *base;
static int lfd = -1;
static char sock_path[108];
static int eof_seen, replies, events;

static void on_ev(void *ctx, const char *event, json_t *data)
{
    FUZZ_ASSERT(event);
    events++;
    char *s = json_dumps(data, JSON_ENCODE_ANY);
    free(s);
}

static void on_eof(void *ctx)
{
    eof_seen = 1;
}

static void on_reply(void *ctx, json_t *ret, const char *err)
{
    FUZZ_ASSERT(ret || err);
    replies++;
    /* the shapes the engine and the monitor read out of replies */
    size_t i;
    json_t *c;
    json_array_foreach(ret, i, c)
    {
        (void)json_string_value(json_object_get(c, "label"));
        (void)json_is_true(json_object_get(c, "frontend-open"));
        (void)json_integer_value(json_object_get(c, "thread-id"));
        (void)json_integer_value(json_object_get(json_object_get(c, "stats"), "rd_bytes"));
    }
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as yund does */
    base = event_base_new();
    char dir[] = "/tmp/yun-fuzz-qmp-XXXXXX";
    FUZZ_ASSERT(base && mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/qmp.sock", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_ASSERT(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                listen(lfd, 4) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        setup();
    char err[256];
    eof_seen = replies = events = 0;
    struct qmp_watch *w = qmp_watch_open(base, sock_path, on_ev, on_eof, NULL, err, sizeof(err));
    FUZZ_ASSERT(w);
    int qemu = accept(lfd, NULL, NULL);
    FUZZ_ASSERT(qemu >= 0);
    /* queued before the greeting, as engine_attach_watch does */
    FUZZ_ASSERT(qmp_watch_command(w, "query-chardev", NULL, on_reply, NULL) == 0);
    FUZZ_ASSERT(qmp_watch_command(w, "query-blockstats", NULL, on_reply, NULL) == 0);
    int big = 1 << 20;
    setsockopt(qemu, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    FUZZ_ASSERT(fuzz_write_all(qemu, data, size) == 0);
    shutdown(qemu, SHUT_WR);
    while (!eof_seen)
        event_base_loop(base, EVLOOP_ONCE);
    FUZZ_ASSERT(replies <= 2);
    /* one queued after EOF is accepted or refused, never answered */
    (void)qmp_watch_command(w, "query-balloon", NULL, on_reply, NULL);
    qmp_watch_close(w);
    close(qemu);
    return 0;
}
