/*
 * agent_hotplug.c - host verbs for hot-plugging a volume into a running
 * QEMU and unplugging it. Everything goes over the VM's event connection
 * (qmp_watch_command / qmp_watch_command_fd): no connect, no blocking
 * exchange on the loop. The rows, the states and the decisions are the
 * controller's; no store access here.
 *
 *   vm.volume_plug   {"vm","node","device","serial","chain":[{"path","format"}...]}
 *                    -> {"node","device"}
 *                    chain is the volume first, then the volumes it is a
 *                    linked clone of (at most 16), each a file inside the
 *                    volume pool. Each file is opened here (the volume
 *                    read-write, the layers below read-only) and handed to
 *                    QEMU (add-fd, SCM_RIGHTS): a confined QEMU opens
 *                    nothing by name. Then blockdev-add (node `node`, the
 *                    chain spelled out as /dev/fdset/N) and device_add
 *                    (virtio-blk `device`, serial `serial`). A failure
 *                    undoes what was done (blockdev-del, remove-fd) and
 *                    answers the error (a command the monitor will not
 *                    take at once is sent again every RETRY_MS: under load
 *                    a busy QEMU stops reading its monitor for a while);
 *                    no answer within QMP_TIMEOUT_MS is
 *                    YE_QEMU_ERROR "no answer" (not "nothing happened":
 *                    ask vm.devices).
 *   vm.volume_unplug {"vm","device"[,"node"]} -> {"gone": bool}
 *                    device_del. "gone": true when QEMU has no such device
 *                    (an earlier request got through; the node, if named,
 *                    is closed then), false when the guest was asked (or
 *                    was asked before): the end is QEMU's DEVICE_DELETED,
 *                    which may come before this reply.
 *   vm.node_close    {"vm","node"} -> {}: blockdev-del; no such node is fine.
 *   vm.devices       {"vm"} -> {"devices": [id...]}: user-created devices
 *                    (qom-list /machine/peripheral).
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/qmp.h"
#include "lib/config.h"
#include "storage/volumes.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QMP_TIMEOUT_MS 10000
#define RETRY_MS       100
#define CHAIN_MAX      16

/* A QEMU id (node-name, device id, serial): [A-Za-z0-9_-], 1..23 chars,
 * starting with a letter. */
static const char *qid_arg(struct agent_op *op, json_t *args, const char *key, bool need)
{
    json_t *j = json_object_get(args, key);
    if (!j && !need)
        return "";
    const char *s = json_string_value(j);
    size_t n = s ? strlen(s) : 0;
    if (!s || !n || n > 23 ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: \"%s\" must be a QEMU id", key);
        return NULL;
    }
    return s;
}

/* ---- one VM's exchange, a chain of commands under one timer ---- */

struct hp;
typedef void (*hp_step)(struct hp *h, json_t *ret, const char *err);

struct hp {
    struct agent_local *al;
    struct agent_op *op; /* NULL once answered */
    char vm[37], node[24], device[24], serial[24];
    json_t *chain; /* [{"path","format"}] */
    int64_t sets[CHAIN_MAX];
    int nsets, next; /* fdsets made; next chain layer to add */
    hp_step step;    /* what the reply in flight goes to */
    bool in_flight;
    struct event *timer;
    /* a command the monitor would not take just now (its socket full, its
     * queue of replies full, the watch between connections) is sent again
     * after RETRY_MS, until the exchange's timer ends it */
    struct event *retry;
    void (*again)(struct hp *h);
};

static struct qmp_watch *watch_of(struct hp *h)
{
    struct vm_rt *rt = h->al->host ? engine_rt_find(h->al->host, h->vm) : NULL;
    return rt ? rt->watch : NULL;
}

static void hp_free(struct hp *h)
{
    struct qmp_watch *w = watch_of(h);
    if (w)
        qmp_watch_forget(w, h);
    if (h->timer)
        event_free(h->timer);
    if (h->retry)
        event_free(h->retry);
    json_decref(h->chain);
    free(h);
}

static void hp_reply(void *ctx, json_t *ret, const char *err)
{
    struct hp *h = ctx;
    h->in_flight = false;
    h->step(h, ret, err);
}

/* Sends cmd (args stolen); the reply goes to step. -1 when it cannot go. */
static int hp_send(struct hp *h, const char *cmd, json_t *args, int fd, hp_step step)
{
    struct qmp_watch *w = watch_of(h);
    h->step = step;
    int rc = w ? qmp_watch_command_fd(w, cmd, args, fd, hp_reply, h) : -1;
    json_decref(args);
    if (rc == 0)
        h->in_flight = true;
    return rc;
}

static void hp_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hp *h = arg;
    if (h->op)
        agent_op_fail(h->op, YE_QEMU_ERROR, "vm %s: QEMU did not answer (no answer)", h->vm);
    hp_free(h); /* forgets the replies still to come */
}

static void hp_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hp *h = arg;
    h->again(h);
}

/* Sends the step again soon (see struct hp): false when there is no
 * watch to send on (the QEMU is gone), which is an error now. */
static bool hp_retry(struct hp *h, void (*again)(struct hp *h))
{
    if (!watch_of(h))
        return false;
    h->again = again;
    struct timeval tv = {0, RETRY_MS * 1000};
    evtimer_add(h->retry, &tv);
    return true;
}

static struct hp *hp_new(struct agent_local *al, struct agent_op *op, const char *vm)
{
    struct hp *h = calloc(1, sizeof *h);
    if (!h || !(h->timer = evtimer_new(al->base, hp_timeout, h)) ||
        !(h->retry = evtimer_new(al->base, hp_again, h))) {
        if (h && h->timer)
            event_free(h->timer);
        free(h);
        agent_op_fail(op, YE_INTERNAL, "agent: out of memory");
        return NULL;
    }
    h->al = al;
    h->op = op;
    snprintf(h->vm, sizeof h->vm, "%s", vm);
    struct timeval tv = {QMP_TIMEOUT_MS / 1000, (QMP_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(h->timer, &tv);
    return h;
}

/* Answers and frees (result stolen; NULL with code/msg). */
static void hp_done(struct hp *h, json_t *result, enum yerr_code code, const char *msg)
{
    if (result)
        agent_op_reply(h->op, result, NULL);
    else
        agent_op_fail(h->op, code, "%s", msg ? msg : "failed");
    h->op = NULL;
    hp_free(h);
}

/* ---- vm.volume_plug ---- */

static void plug_add_next(struct hp *h);

static void ignore_reply(void *ctx, json_t *ret, const char *err)
{
    (void)ctx;
    (void)ret;
    (void)err;
}

/* The fdsets go once the nodes hold their own copies (or on a failure):
 * fire and forget, the replies are not waited for. */
static void drop_sets(struct hp *h)
{
    struct qmp_watch *w = watch_of(h);
    for (int i = 0; w && i < h->nsets; i++) {
        json_t *a = json_pack("{s:I}", "fdset-id", (json_int_t)h->sets[i]);
        qmp_watch_command(w, "remove-fd", a, ignore_reply, NULL);
        json_decref(a);
    }
    h->nsets = 0;
}

static void plug_fail(struct hp *h, const char *what, const char *err, bool close_node)
{
    char msg[400];
    snprintf(msg, sizeof msg, "QMP %s: %s", what, err);
    struct qmp_watch *w = watch_of(h);
    if (close_node && w) {
        json_t *a = json_pack("{s:s}", "node-name", h->node);
        qmp_watch_command(w, "blockdev-del", a, ignore_reply, NULL);
        json_decref(a);
    }
    drop_sets(h);
    hp_done(h, NULL, YE_QEMU_ERROR, msg);
}

static void on_device_add(struct hp *h, json_t *ret, const char *err)
{
    (void)ret;
    if (err)
        return plug_fail(h, "device_add", err, true);
    hp_done(h, json_pack("{s:s,s:s}", "node", h->node, "device", h->device), 0, NULL);
}

static void plug_device_add(struct hp *h)
{
    json_t *a = json_pack("{s:s,s:s,s:s,s:s}", "driver", "virtio-blk-pci", "id", h->device, "drive",
                          h->node, "serial", h->serial);
    if (hp_send(h, "device_add", a, -1, on_device_add) < 0 && !hp_retry(h, plug_device_add))
        plug_fail(h, "device_add", "cannot send the command to QEMU", true);
}

static void on_blockdev_add(struct hp *h, json_t *ret, const char *err)
{
    (void)ret;
    if (err)
        return plug_fail(h, "blockdev-add", err, false);
    drop_sets(h);
    plug_device_add(h);
}

static json_t *chain_spec(struct hp *h)
{
    json_t *top = NULL, *above = NULL;
    for (int i = 0; i < h->nsets; i++) {
        json_t *layer = json_array_get(h->chain, (size_t)i);
        char fdset[32];
        snprintf(fdset, sizeof fdset, "/dev/fdset/%lld", (long long)h->sets[i]);
        json_t *node = json_pack("{s:s,s:{s:s,s:s}}", "driver",
                                 json_string_value(json_object_get(layer, "format")), "file",
                                 "driver", "file", "filename", fdset);
        if (i)
            json_object_set_new(node, "read-only", json_true());
        if (above)
            json_object_set_new(above, "backing", node);
        else
            top = node;
        above = node;
    }
    json_object_set_new(top, "node-name", json_string(h->node));
    json_object_set_new(top, "discard", json_string("unmap"));
    return top;
}

static void on_add_fd(struct hp *h, json_t *ret, const char *err)
{
    json_t *id = json_object_get(ret, "fdset-id");
    if (err || !json_is_integer(id))
        return plug_fail(h, "add-fd", err ? err : "no fdset-id in the reply", false);
    h->sets[h->nsets++] = json_integer_value(id);
    plug_add_next(h);
}

static void plug_add_next(struct hp *h)
{
    if (h->next == (int)json_array_size(h->chain)) {
        if (hp_send(h, "blockdev-add", chain_spec(h), -1, on_blockdev_add) < 0 &&
            !hp_retry(h, plug_add_next))
            plug_fail(h, "blockdev-add", "cannot send the command to QEMU", false);
        return;
    }
    int depth = h->next++;
    const char *path =
        json_string_value(json_object_get(json_array_get(h->chain, (size_t)depth), "path"));
    int fd = open(path, (depth ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        char why[300];
        snprintf(why, sizeof why, "cannot open %s: %s", path, strerror(errno));
        drop_sets(h);
        return hp_done(h, NULL, YE_INTERNAL, why);
    }
    int rc = hp_send(h, "add-fd", json_pack("{s:s}", "opaque", path), fd, on_add_fd);
    close(fd); /* QEMU has its own copy now (or never will) */
    if (rc < 0) {
        h->next--; /* this layer again, opened anew */
        if (!hp_retry(h, plug_add_next))
            plug_fail(h, "add-fd", "cannot send the command to QEMU", false);
    }
}

/* The chain: 1..CHAIN_MAX layers, each a pool file and a known format. */
static json_t *chain_arg(struct agent_local *al, struct agent_op *op, json_t *args)
{
    json_t *c = json_object_get(args, "chain");
    size_t n = json_array_size(c);
    if (!json_is_array(c) || n == 0 || n > CHAIN_MAX) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: \"chain\" must be 1 to %d layers",
                      CHAIN_MAX);
        return NULL;
    }
    size_t i;
    json_t *l;
    json_array_foreach(c, i, l)
    {
        const char *p = json_string_value(json_object_get(l, "path"));
        const char *f = json_string_value(json_object_get(l, "format"));
        char real[4096];
        if (!p || p[0] != '/' || strlen(p) >= 400 || !al->cfg ||
            !volume_inside_pool(al->cfg, p, real, sizeof real)) {
            agent_op_fail(op, YE_INVALID_ARGUMENT,
                          "agent: chain[%zu].path must be a file of the volume pool", i);
            return NULL;
        }
        if (!f || (strcmp(f, "qcow2") && strcmp(f, "raw"))) {
            agent_op_fail(op, YE_INVALID_ARGUMENT,
                          "agent: chain[%zu].format must be \"qcow2\" or \"raw\"", i);
            return NULL;
        }
    }
    return c;
}

static void volume_plug(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *vm, *node, *dev, *serial;
    json_t *chain;
    if (!(vm = agent_op_vm_id(op, args)) || !(node = qid_arg(op, args, "node", true)) ||
        !(dev = qid_arg(op, args, "device", true)) ||
        !(serial = qid_arg(op, args, "serial", true)) || !(chain = chain_arg(al, op, args)) ||
        !agent_op_host(al, op))
        return;
    struct hp *h = hp_new(al, op, vm);
    if (!h)
        return;
    snprintf(h->node, sizeof h->node, "%s", node);
    snprintf(h->device, sizeof h->device, "%s", dev);
    snprintf(h->serial, sizeof h->serial, "%s", serial);
    h->chain = json_incref(chain);
    if (!watch_of(h))
        return hp_done(h, NULL, YE_UNAVAILABLE, "yund holds no QMP connection to the vm");
    plug_add_next(h);
}

/* ---- vm.volume_unplug, vm.node_close ---- */

static void on_node_closed(struct hp *h, json_t *ret, const char *err)
{
    (void)ret;
    if (err && !strstr(err, "not found") && !strstr(err, "Cannot find"))
        return hp_done(h, NULL, YE_QEMU_ERROR, err);
    hp_done(h, json_pack(h->device[0] ? "{s:b}" : "{}", "gone", 1), 0, NULL);
}

static void close_node(struct hp *h)
{
    if (hp_send(h, "blockdev-del", json_pack("{s:s}", "node-name", h->node), -1, on_node_closed) <
        0)
        hp_done(h, NULL, YE_UNAVAILABLE, "yund holds no QMP connection to the vm");
}

static void on_device_del(struct hp *h, json_t *ret, const char *err)
{
    (void)ret;
    if (err && strstr(err, "in the process of unplug"))
        err = NULL; /* asked before; the guest has not let go yet */
    if (err && strstr(err, "not found")) {
        if (h->node[0])
            return close_node(h);
        return hp_done(h, json_pack("{s:b}", "gone", 1), 0, NULL);
    }
    if (err) {
        char msg[300];
        snprintf(msg, sizeof msg, "QMP device_del: %s", err);
        return hp_done(h, NULL, YE_QEMU_ERROR, msg);
    }
    hp_done(h, json_pack("{s:b}", "gone", 0), 0, NULL);
}

static void volume_unplug(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *vm, *dev, *node;
    if (!(vm = agent_op_vm_id(op, args)) || !(dev = qid_arg(op, args, "device", true)) ||
        !(node = qid_arg(op, args, "node", false)) || !agent_op_host(al, op))
        return;
    struct hp *h = hp_new(al, op, vm);
    if (!h)
        return;
    snprintf(h->device, sizeof h->device, "%s", dev);
    snprintf(h->node, sizeof h->node, "%s", node);
    if (hp_send(h, "device_del", json_pack("{s:s}", "id", dev), -1, on_device_del) < 0)
        hp_done(h, NULL, YE_UNAVAILABLE, "yund holds no QMP connection to the vm");
}

static void node_close(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *vm, *node;
    if (!(vm = agent_op_vm_id(op, args)) || !(node = qid_arg(op, args, "node", true)) ||
        !agent_op_host(al, op))
        return;
    struct hp *h = hp_new(al, op, vm);
    if (!h)
        return;
    snprintf(h->node, sizeof h->node, "%s", node);
    close_node(h);
}

/* ---- vm.devices ---- */

static void on_qom_list(struct hp *h, json_t *ret, const char *err)
{
    if (err || !json_is_array(ret)) {
        char msg[300];
        snprintf(msg, sizeof msg, "QMP qom-list: %s", err ? err : "not a list");
        return hp_done(h, NULL, YE_QEMU_ERROR, msg);
    }
    json_t *out = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(ret, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *type = json_string_value(json_object_get(d, "type"));
        if (name && type && !strncmp(type, "child<", 6))
            json_array_append_new(out, json_string(name));
    }
    hp_done(h, json_pack("{s:o}", "devices", out), 0, NULL);
}

static void devices(struct agent_local *al, struct agent_op *op, json_t *args)
{
    const char *vm;
    if (!(vm = agent_op_vm_id(op, args)) || !agent_op_host(al, op))
        return;
    struct hp *h = hp_new(al, op, vm);
    if (!h)
        return;
    if (hp_send(h, "qom-list", json_pack("{s:s}", "path", "/machine/peripheral"), -1, on_qom_list) <
        0)
        hp_done(h, NULL, YE_UNAVAILABLE, "yund holds no QMP connection to the vm");
}

const struct agent_verb_def agent_hotplug_verbs[] = {
    {AV_VM_VOLUME_PLUG, "vm.volume_plug", volume_plug},
    {AV_VM_VOLUME_UNPLUG, "vm.volume_unplug", volume_unplug},
    {AV_VM_NODE_CLOSE, "vm.node_close", node_close},
    {AV_VM_DEVICES, "vm.devices", devices},
};
const size_t agent_hotplug_verbs_count = sizeof agent_hotplug_verbs / sizeof agent_hotplug_verbs[0];
