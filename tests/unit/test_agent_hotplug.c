/* test_agent_hotplug.c - the volume hot-plug verbs (agent_hotplug.c): bad
 * arguments answer YE_INVALID_ARGUMENT from the loop and touch nothing; a
 * well-formed call on a VM yund holds no QMP connection to answers
 * YE_UNAVAILABLE (not a verdict on the volume). And vm.volume_plug against
 * a scripted QMP monitor (a thread): each layer's fd arrives with its
 * add-fd (SCM_RIGHTS on the event connection), blockdev-add spells out the
 * chain, the fdsets go, and a device_add QEMU refuses is undone
 * (blockdev-del). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "compute/qmp.h"

#include "agent/agent_local.h"
#include "compute/engine.h"
#include "lib/config.h"
#include "lib/util.h"

struct got {
    int calls;
    enum yerr_code code;
};

static void on_got(void *ctx, json_t *result, const struct yerr *err)
{
    struct got *g = ctx;
    g->calls++;
    g->code = err ? err->code : YE_NONE;
    assert_true((result == NULL) == (err != NULL));
}

static void test_hotplug_bad_args(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-hotplug-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pool[600], vol[700], outside[700];
    snprintf(pool, sizeof pool, "%s/pools/default", dir);
    assert_int_equal(mkdir_p(pool, 0700), 0);
    snprintf(vol, sizeof vol, "%s/v1.qcow2", pool);
    snprintf(outside, sizeof outside, "%s/elsewhere.qcow2", dir);
    FILE *f = fopen(vol, "w");
    assert_non_null(f);
    fclose(f);
    f = fopen(outside, "w");
    assert_non_null(f);
    fclose(f);

    struct yun_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    snprintf(cfg.images_dir, sizeof cfg.images_dir, "%s/images", dir);
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, &cfg, &e);
    const char *id = "0123abcd-0000-0000-0000-000000000000";
    char dotted[800];
    snprintf(dotted, sizeof dotted, "%s/../../elsewhere.qcow2", pool);
    struct {
        enum agent_verb v;
        json_t *args;
        enum yerr_code want;
    } calls[] = {
        {AV_VM_VOLUME_PLUG, json_object(), YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG,
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", "../x", "node", "vol-1", "device",
                   "vdev-1", "serial", "yun1", "chain", "path", vol, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a node name QEMU would take as JSON */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "a\",\"x", "device",
                   "vdev-1", "serial", "yun1", "chain", "path", vol, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* no serial */
         json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "chain", "path", vol, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* an empty chain */
         json_pack("{s:s,s:s,s:s,s:s,s:[]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a file outside the pool */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", outside, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* out of the pool through .. */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", dotted, "format", "qcow2"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a format qemu would probe */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", vol, "format", "vmdk"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_PLUG, /* a backing layer that is not a pool file */
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s},{s:s,s:s}]}", "vm", id, "node", "vol-1", "device",
                   "vdev-1", "serial", "yun1", "chain", "path", vol, "format", "qcow2", "path",
                   "/etc/passwd", "format", "raw"),
         YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s}", "vm", id), YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s,s:s}", "vm", id, "device", ""), YE_INVALID_ARGUMENT},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s,s:s,s:i}", "vm", id, "device", "vdev-1", "node", 3),
         YE_INVALID_ARGUMENT},
        {AV_VM_NODE_CLOSE, json_pack("{s:s}", "vm", id), YE_INVALID_ARGUMENT},
        {AV_VM_DEVICES, json_pack("{s:i}", "vm", 1), YE_INVALID_ARGUMENT},
        /* well-formed, but yund holds no QMP connection to that VM */
        {AV_VM_VOLUME_PLUG,
         json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "vm", id, "node", "vol-1", "device", "vdev-1",
                   "serial", "yun1", "chain", "path", vol, "format", "qcow2"),
         YE_UNAVAILABLE},
        {AV_VM_VOLUME_UNPLUG, json_pack("{s:s,s:s}", "vm", id, "device", "vdev-1"), YE_UNAVAILABLE},
        {AV_VM_NODE_CLOSE, json_pack("{s:s,s:s}", "vm", id, "node", "vol-1"), YE_UNAVAILABLE},
        {AV_VM_DEVICES, json_pack("{s:s}", "vm", id), YE_UNAVAILABLE},
    };
    size_t n = sizeof calls / sizeof calls[0];
    struct got got[sizeof calls / sizeof calls[0]];
    memset(got, 0, sizeof got);
    for (size_t i = 0; i < n; i++)
        assert_true(agent_call(a, calls[i].v, calls[i].args, on_got, NULL, &got[i]) > 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i].calls, 0); /* never inside the call */
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].calls, 1);
        if (got[i].code != calls[i].want)
            fail_msg("call #%zu answered %d, not %d", i, (int)got[i].code, (int)calls[i].want);
    }
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("vm.volume_plug", &v), 0);
    assert_int_equal(v, AV_VM_VOLUME_PLUG);
    assert_string_equal(agent_verb_name(AV_VM_DEVICES), "vm.devices");
    agent_free(a);
    event_base_free(base);
    unlink(vol);
    unlink(outside);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- a scripted QMP monitor ---- */

struct fake {
    int lsock;
    bool refuse_device_add;
    char log[2048];   /* "command[+fd] " for each command, in order */
    int fds;          /* descriptors received */
    json_t *blockdev; /* blockdev-add's arguments */
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
    say(s, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n");
    char buf[65536];
    size_t len = 0;
    int set = 0;
    bool got_fd = false; /* an fd came: it goes with the next whole line */
    for (;;) {
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {buf + len, sizeof buf - len - 1};
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
        ssize_t n = recvmsg(s, &msg, 0);
        if (n <= 0)
            break;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int fd;
                memcpy(&fd, CMSG_DATA(c), sizeof fd);
                close(fd);
                f->fds++;
                got_fd = true;
            }
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
            char reply[256] = "{\"return\": {}";
            if (cmd && !strcmp(cmd, "add-fd"))
                snprintf(reply, sizeof reply, "{\"return\": {\"fdset-id\": %d, \"fd\": 9}", ++set);
            if (cmd && !strcmp(cmd, "blockdev-add"))
                f->blockdev = json_incref(json_object_get(j, "arguments"));
            if (cmd && !strcmp(cmd, "device_add") && f->refuse_device_add)
                snprintf(reply, sizeof reply,
                         "{\"error\": {\"class\": \"GenericError\", \"desc\": \"boom\"}");
            if (cmd && strcmp(cmd, "qmp_capabilities")) {
                strcat(f->log, cmd);
                strcat(f->log, got_fd ? "+fd " : " ");
                got_fd = false;
            }
            char line[400];
            if (json_is_integer(id))
                snprintf(line, sizeof line, "%s, \"id\": %lld}\n", reply,
                         (long long)json_integer_value(id));
            else
                snprintf(line, sizeof line, "%s}\n", reply);
            say(s, line);
            json_decref(j);
        }
    }
    close(s);
    return NULL;
}

/* One vm.volume_plug of a two-layer chain against the fake monitor. */
static enum yerr_code plug_against(struct fake *f, bool refuse)
{
    char dir[] = "/tmp/yun-hotplug-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pool[600], top[700], base_[700], sock[700];
    snprintf(pool, sizeof pool, "%s/pools/default", dir);
    assert_int_equal(mkdir_p(pool, 0700), 0);
    snprintf(top, sizeof top, "%s/top.qcow2", pool);
    snprintf(base_, sizeof base_, "%s/base.qcow2", pool);
    snprintf(sock, sizeof sock, "%s/qmp.sock", dir);
    for (int i = 0; i < 2; i++) {
        FILE *fp = fopen(i ? base_ : top, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    memset(f, 0, sizeof *f);
    f->refuse_device_add = refuse;
    f->lsock = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    assert_int_equal(bind(f->lsock, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(f->lsock, 1), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, fake_run, f), 0);

    struct yun_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    snprintf(cfg.images_dir, sizeof cfg.images_dir, "%s/images", dir);
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    const char *id = "0123abcd-0000-0000-0000-000000000000";
    struct vm_rec vm;
    memset(&vm, 0, sizeof vm);
    snprintf(vm.id, sizeof vm.id, "%s", id);
    struct vm_rt *rt = engine_rt_get(&e, &vm);
    char why[256];
    rt->watch = qmp_watch_open(base, sock, NULL, NULL, NULL, why, sizeof why);
    assert_non_null(rt->watch);
    /* negotiated first, as a running VM's connection is */
    for (int i = 0; i < 50; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    struct agent *a = agent_local_new(base, &cfg, &e);
    struct got g = {0};
    agent_call(a, AV_VM_VOLUME_PLUG,
               json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s},{s:s,s:s}]}", "vm", id, "node", "vol-1",
                         "device", "voldev-1", "serial", "v1", "chain", "path", top, "format",
                         "qcow2", "path", base_, "format", "raw"),
               on_got, NULL, &g);
    for (int i = 0; i < 500 && !g.calls; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    assert_int_equal(g.calls, 1);
    /* the fire-and-forget commands behind the reply get to the monitor */
    for (int i = 0; i < 20; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    agent_free(a);
    qmp_watch_close(rt->watch);
    rt->watch = NULL;
    event_base_loop(base, EVLOOP_NONBLOCK); /* the socket closes */
    pthread_join(th, NULL);
    close(f->lsock);
    engine_rt_drop(&e, rt);
    event_base_free(base);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return g.code;
}

static void test_plug_passes_fds_and_undoes(void **st)
{
    (void)st;
    struct fake f;
    assert_int_equal(plug_against(&f, false), YE_NONE);
    assert_int_equal(f.fds, 2);
    assert_string_equal(f.log, "add-fd+fd add-fd+fd blockdev-add remove-fd remove-fd device_add ");
    assert_string_equal(json_string_value(json_object_get(f.blockdev, "node-name")), "vol-1");
    json_t *back = json_object_get(f.blockdev, "backing");
    assert_true(json_is_true(json_object_get(back, "read-only")));
    assert_string_equal(json_string_value(json_object_get(back, "driver")), "raw");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(back, "file"), "filename")),
        "/dev/fdset/2");
    assert_null(json_object_get(f.blockdev, "read-only"));
    json_decref(f.blockdev);

    assert_int_equal(plug_against(&f, true), YE_QEMU_ERROR);
    assert_string_equal(f.log, "add-fd+fd add-fd+fd blockdev-add remove-fd remove-fd device_add "
                               "blockdev-del ");
    json_decref(f.blockdev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_hotplug_bad_args),
                                       cmocka_unit_test(test_plug_passes_fds_and_undoes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
