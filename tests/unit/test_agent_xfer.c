/* test_agent_xfer.c - the agents' file copy of a cold move (agent_xfer.c)
 * on the loopback: a real file sent and received, its bytes and SHA-256
 * the same on both sides and the progress told; a stranger's token dropped
 * while the receiver waits on; exclusive refusing a path that exists; a
 * file that is not there; a receiver no sender comes to ended by
 * agent_free with no .part left; a send cancelled while the other side
 * takes nothing; every bad argument. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_local.h"
#include "compute/engine.h"
#include "lib/config.h"
#include "lib/sha256.h"
#include "lib/util.h"

struct seen {
    int calls, progress;
    enum yerr_code code;
    json_t *result;
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->calls++;
    s->code = err ? err->code : YE_NONE;
    json_decref(s->result);
    s->result = result ? json_incref(result) : NULL;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct seen *s = ctx;
    assert_true(done <= total);
    s->progress++;
}

static enum yerr_code call(struct agent *a, struct event_base *b, enum agent_verb v, json_t *args,
                           struct seen *s)
{
    json_decref(s->result);
    memset(s, 0, sizeof *s);
    assert_true(agent_call(a, v, args, on_reply, on_progress, s) > 0);
    for (int i = 0; i < 6000 && !s->calls; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(b, &tv);
        event_base_dispatch(b);
    }
    assert_int_equal(s->calls, 1);
    return s->code;
}

static json_t *send_args(const char *path, json_t *recv, const char *token)
{
    return json_pack("{s:s,s:O,s:O,s:s}", "path", path, "address", json_object_get(recv, "address"),
                     "port", json_object_get(recv, "port"), "token",
                     token ? token : json_string_value(json_object_get(recv, "token")));
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*n ? *n : 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void test_copy(void **st)
{
    (void)st;
    struct yun_config cfg;
    config_defaults(&cfg);
    char dir[] = "/tmp/yun-xfer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    char pool[300], src[400], dst[400], part[420];
    snprintf(pool, sizeof pool, "%s/pools/default", dir);
    assert_int_equal(mkdir_p(pool, 0700), 0);
    snprintf(src, sizeof src, "%s/src.qcow2", pool);
    snprintf(dst, sizeof dst, "%s/dst.qcow2", pool);
    snprintf(part, sizeof part, "%s.part", dst);
    /* 3 MiB and a bit, not a whole number of chunks */
    size_t n = (3u << 20) + 12345;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 2654435761u >> 13);
    FILE *f = fopen(src, "wb");
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);

    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, &cfg, &e);
    struct seen r = {0}, s = {0};
    assert_int_equal(call(a, base, AV_FILE_RECV, json_pack("{s:s}", "path", dst), &r), YE_NONE);
    assert_int_equal(strlen(json_string_value(json_object_get(r.result, "token"))), 32);
    /* a stranger's token: dropped, the receiver waits on */
    assert_int_equal(call(a, base, AV_FILE_SEND,
                          send_args(src, r.result, "0123456789abcdef0123456789abcdef"), &s),
                     YE_UNAVAILABLE);
    assert_int_equal(access(dst, F_OK), -1);
    assert_int_equal(call(a, base, AV_FILE_SEND, send_args(src, r.result, NULL), &s), YE_NONE);
    assert_int_equal(json_integer_value(json_object_get(s.result, "bytes")), (json_int_t)n);
    uint8_t d[SHA256_LEN];
    char hex[SHA256_HEX];
    sha256(data, n, d);
    hex_encode(d, sizeof d, hex);
    assert_string_equal(json_string_value(json_object_get(s.result, "sha256")), hex);
    assert_true(s.progress >= 1);
    size_t got_n;
    char *got = slurp(dst, &got_n);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, data, n);
    free(got);
    assert_int_equal(access(part, F_OK), -1);
    /* served its one sender: a second finds none */
    assert_int_equal(call(a, base, AV_FILE_SEND, send_args(src, r.result, NULL), &s),
                     YE_UNAVAILABLE);

    /* exclusive: the path is there now */
    assert_int_equal(
        call(a, base, AV_FILE_RECV, json_pack("{s:s,s:b}", "path", dst, "exclusive", 1), &r),
        YE_CONFLICT);
    /* not exclusive: it replaces it; a source that is not there fails the send */
    assert_int_equal(call(a, base, AV_FILE_RECV, json_pack("{s:s}", "path", dst), &r), YE_NONE);
    char ghost[420];
    snprintf(ghost, sizeof ghost, "%s/ghost.qcow2", pool);
    assert_int_equal(call(a, base, AV_FILE_SEND, send_args(ghost, r.result, NULL), &s),
                     YE_NOT_FOUND);

    /* bad arguments */
    const char *tok = "0123456789abcdef0123456789abcdef";
    char outside[300], dots[400], images[400];
    snprintf(outside, sizeof outside, "%s/elsewhere.qcow2", dir);
    snprintf(dots, sizeof dots, "%s/../x.qcow2", pool);
    snprintf(images, sizeof images, "%s/images/tiny/disk.qcow2", dir);
    json_t *bad_recv[] = {
        json_pack("{}"),
        json_pack("{s:s}", "path", "relative.qcow2"),
        json_pack("{s:s}", "path", outside),
        json_pack("{s:s}", "path", dots),
        json_pack("{s:s}", "path", images),
        json_pack("{s:s,s:s}", "path", dst, "exclusive", "yes"),
    };
    for (size_t i = 0; i < sizeof bad_recv / sizeof bad_recv[0]; i++)
        assert_int_equal(call(a, base, AV_FILE_RECV, bad_recv[i], &r), YE_INVALID_ARGUMENT);
    json_t *bad_send[] = {
        json_pack("{s:s,s:s,s:i,s:s}", "path", outside, "address", "127.0.0.1", "port", 9, "token",
                  tok),
        json_pack("{s:s,s:s,s:i,s:s}", "path", src, "address", "localhost", "port", 9, "token",
                  tok),
        json_pack("{s:s,s:s,s:i,s:s}", "path", src, "address", "127.0.0.1", "port", 0, "token",
                  tok),
        json_pack("{s:s,s:s,s:i,s:s}", "path", src, "address", "127.0.0.1", "port", 65536, "token",
                  tok),
        json_pack("{s:s,s:s,s:s,s:s}", "path", src, "address", "127.0.0.1", "port", "9", "token",
                  tok),
        json_pack("{s:s,s:s,s:i,s:s}", "path", src, "address", "127.0.0.1", "port", 9, "token",
                  "short"),
    };
    for (size_t i = 0; i < sizeof bad_send / sizeof bad_send[0]; i++)
        assert_int_equal(call(a, base, AV_FILE_SEND, bad_send[i], &s), YE_INVALID_ARGUMENT);

    /* a send cancelled while the other side takes no more bytes (a listener
     * that never reads: the socket buffers fill, then the sender waits) */
    char big[420];
    snprintf(big, sizeof big, "%s/big.raw", pool);
    FILE *bf = fopen(big, "wb");
    assert_int_equal(fseek(bf, (64L << 20) - 1, SEEK_SET), 0);
    fputc(1, bf);
    fclose(bf);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ll = sizeof la;
    assert_int_equal(bind(lfd, (struct sockaddr *)&la, sizeof la), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&la, &ll), 0);
    json_decref(s.result);
    memset(&s, 0, sizeof s);
    uint64_t id = agent_call(a, AV_FILE_SEND,
                             json_pack("{s:s,s:s,s:i,s:s}", "path", big, "address", "127.0.0.1",
                                       "port", (int)ntohs(la.sin_port), "token", tok),
                             on_reply, on_progress, &s);
    assert_true(id > 0);
    for (int i = 0; i < 30 && !s.calls; i++) { /* 300 ms: it is stuck by then */
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    assert_int_equal(s.calls, 0);
    assert_int_equal(agent_cancel(a, id), 0);
    for (int i = 0; i < 3000 && !s.calls; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.code, YE_CANCELLED);
    close(lfd);
    unlink(big);

    /* a receiver no one comes to: ended with the agent, no .part */
    char lone[420];
    snprintf(lone, sizeof lone, "%s/lone.qcow2", pool);
    assert_int_equal(call(a, base, AV_FILE_RECV, json_pack("{s:s}", "path", lone), &r), YE_NONE);
    json_decref(r.result);
    json_decref(s.result);
    agent_free(a);
    event_base_free(base);
    char lpart[440];
    snprintf(lpart, sizeof lpart, "%s.part", lone);
    assert_int_equal(access(lone, F_OK), -1);
    assert_int_equal(access(lpart, F_OK), -1);
    unlink(src);
    unlink(dst);
    free(data);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_copy)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
