/*
 * agent_snap.c - host verbs for disk snapshots: a VM's disk layers and the
 * block-level QEMU and guest-agent steps of taking a snapshot. No store
 * access: a verb gets the VM's id and file names (bare names of files in
 * the VM's directory), nothing else; nothing blocks the loop.
 *
 *   vm.layer_create  {"vm","file","backing"} -> {}
 *                    a qcow2 overlay `file` on `backing` (both in the VM's
 *                    directory, the header naming backing relatively), by
 *                    qemu-img create as a child process, then given to the
 *                    owner of backing (the VM's uid when it is confined).
 *                    A full disk answers YE_NO_SPACE; nothing is left.
 *   vm.layer_remove  {"vm","file"} -> {"removed": bool}
 *   guest.fsfreeze   {"vm"} -> {"count": n}      guest-fsfreeze-freeze
 *   guest.fsthaw     {"vm"} -> {"count": n}      guest-fsfreeze-thaw
 *                    over the VM's asynchronous agent client; YE_UNAVAILABLE
 *                    when the agent is not up, or the background refresh
 *                    found it silent (then nothing is waited for).
 *   vm.snapshot_switch {"vm","file"} -> {}
 *                    blockdev-snapshot-sync of disk0 onto the existing
 *                    layer `file`, on the QMP event connection.
 *   vm.active_layer  {"vm"} -> {"file": path or ""}
 *                    the file QEMU writes disk0 to (query-block), to tell
 *                    after a lost reply whether a switch happened.
 * A QMP verb that gets no reply within QMP_TIMEOUT_MS answers YE_QEMU_ERROR
 * ("no answer"): the caller must not take it for "nothing happened".
 */
#include "agent/agent_local.h"
#include "compute/confine.h"
#include "compute/engine.h"
#include "compute/guest.h"
#include "compute/qga.h"
#include "compute/qmp.h"
#include "lib/job.h"
#include "lib/proc.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QMP_TIMEOUT_MS    10000
#define QGA_TIMEOUT_MS    10000
#define CREATE_TIMEOUT_MS 60000

/* The VM id argument, as a vm_rec naming it (and its QEMU's pid). */
static int vm_arg(struct engine *e, struct agent_op *op, json_t *args, struct vm_rec *vm)
{
    const char *id = agent_op_vm_id(op, args);
    if (!id)
        return -1;
    memset(vm, 0, sizeof *vm);
    snprintf(vm->id, sizeof vm->id, "%s", id);
    struct vm_rt *rt = engine_rt_find(e, id);
    vm->pid = rt ? rt->pid : 0;
    vm->state = VM_RUNNING; /* the caller asks of a running VM where it matters */
    return 0;
}

/* A layer's bare name: disk.qcow2 or disk-XXXXXXXX.qcow2. */
static const char *layer_arg(struct agent_op *op, json_t *args, const char *key)
{
    const char *f = json_string_value(json_object_get(args, key));
    size_t n = f ? strlen(f) : 0;
    bool ok = f && (!strcmp(f, "disk.qcow2") ||
                    (n == 19 && !strncmp(f, "disk-", 5) && !strcmp(f + 13, ".qcow2") &&
                     strspn(f + 5, "0123456789abcdef") == 8));
    if (!ok)
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: \"%s\" must name a disk layer", key);
    return ok ? f : NULL;
}

/* ---- vm.layer_create ---- */

struct layer_job {
    struct layer_job *next;
    struct agent_op *op;
    char path[512], under[512];
};
static struct layer_job *layer_jobs; /* running (reachable until they end) */

static void layer_job_free(struct layer_job *lj)
{
    struct layer_job **pp = &layer_jobs;
    while (*pp && *pp != lj)
        pp = &(*pp)->next;
    if (*pp)
        *pp = lj->next;
    free(lj);
}

/* Gives the new layer to the owner of the layer it sits on. */
static int give_layer(const char *layer, const char *under, char *why, size_t len)
{
    struct stat st;
    int fd = open(layer, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd >= 0 && lstat(under, &st) == 0 && fchown(fd, st.st_uid, st.st_gid) == 0 &&
                     fchmod(fd, 0600) == 0
                 ? 0
                 : -1;
    if (rc < 0)
        snprintf(why, len, "cannot give %s to the vm: %s", layer, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

static void layer_created(void *ctx, const struct job_result *r)
{
    struct layer_job *lj = ctx;
    char why[400];
    struct yerr err = {0};
    if (r->status != 0) {
        char line[300];
        proc_last_line(r->err, line, sizeof line);
        yerr_disk(&err, "qemu-img create failed: %s", line[0] ? line : "?");
    } else if (give_layer(lj->path, lj->under, why, sizeof why) < 0) {
        yerr_set(&err, YE_INTERNAL, "%s", why);
    }
    if (err.code)
        unlink(lj->path);
    agent_op_reply(lj->op, err.code ? NULL : json_object(), err.code ? &err : NULL);
    layer_job_free(lj);
}

static void layer_create(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    struct vm_rec vm;
    const char *file, *backing;
    if (!e || vm_arg(e, op, args, &vm) < 0 || !(file = layer_arg(op, args, "file")) ||
        !(backing = layer_arg(op, args, "backing")))
        return;
    struct layer_job *lj = calloc(1, sizeof *lj);
    if (!lj) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    lj->op = op;
    engine_vm_path(e, &vm, file, lj->path, sizeof lj->path);
    engine_vm_path(e, &vm, backing, lj->under, sizeof lj->under);
    if (path_exists(lj->path)) {
        free(lj);
        agent_op_fail(op, YE_CONFLICT, "agent: %s exists", file);
        return;
    }
    char *argv[] = {(char *)e->cfg->qemu_img, "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    (char *)backing,          lj->path, NULL};
    struct job_spec spec = {
        .argv = argv, .timeout_ms = CREATE_TIMEOUT_MS, .on_done = layer_created, .ctx = lj};
    char why[300];
    if (!job_start(e->base, &spec, why, sizeof why)) {
        free(lj);
        agent_op_fail(op, YE_INTERNAL, "qemu-img create: %s", why);
        return;
    }
    lj->next = layer_jobs;
    layer_jobs = lj;
}

static void layer_remove(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    struct vm_rec vm;
    const char *file;
    if (!e || vm_arg(e, op, args, &vm) < 0 || !(file = layer_arg(op, args, "file")))
        return;
    char path[512];
    engine_vm_path(e, &vm, file, path, sizeof path);
    if (unlink(path) < 0 && errno != ENOENT) {
        agent_op_fail(op, YE_INTERNAL, "cannot remove %s: %s", file, strerror(errno));
        return;
    }
    agent_op_reply(op, json_pack("{s:b}", "removed", 1), NULL);
}

/* ---- guest.fsfreeze / guest.fsthaw ---- */

static void on_fs(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct agent_op *op = ctx;
    if (st == QGA_OK)
        agent_op_reply(op, json_pack("{s:I}", "count", (json_int_t)json_integer_value(ret)), NULL);
    else
        agent_op_fail(op, st == QGA_ERROR ? YE_GUEST_AGENT : YE_UNAVAILABLE, "guest agent: %s",
                      err[0] ? err : "no answer");
}

static void guest_fs(struct agent_local *al, struct agent_op *op, json_t *args, const char *cmd)
{
    struct engine *e = agent_op_host(al, op);
    struct vm_rec vm;
    if (!e || vm_arg(e, op, args, &vm) < 0)
        return;
    struct qga_client *c = guest_agent(e, vm.id);
    if (!c) {
        agent_op_fail(op, YE_UNAVAILABLE, "no guest agent");
        return;
    }
    /* An agent the background refresh found silent is not waited for: the
     * snapshot is crash-consistent rather than late. */
    const struct guest_facts *f = guest_facts_get(e, vm.id);
    if (f && !f->answering && f->error[0] && !f->refreshing) {
        agent_op_fail(op, YE_UNAVAILABLE, "guest agent not answering: %s", f->error);
        return;
    }
    if (qga_call(c, cmd, NULL, 0, QGA_TIMEOUT_MS, on_fs, op) < 0)
        agent_op_fail(op, YE_INTERNAL, "guest agent: cannot queue %s", cmd);
}

static void fs_freeze(struct agent_local *al, struct agent_op *op, json_t *args)
{
    guest_fs(al, op, args, "guest-fsfreeze-freeze");
}

static void fs_thaw(struct agent_local *al, struct agent_op *op, json_t *args)
{
    guest_fs(al, op, args, "guest-fsfreeze-thaw");
}

/* ---- QMP on the event connection ---- */

/* One command in flight. It outlives a timeout (the reply may still come:
 * the watch holds it as its callback's context) and is freed when the reply
 * arrives; calls whose QEMU went away stay on the list, reachable. */
struct qcall {
    struct qcall *next;
    struct agent_op *op; /* NULL once answered (by the reply or the timer) */
    struct engine *e;
    struct event *timer;
    char vm_id[37];
    bool active_layer; /* query-block: answer disk0's file */
};
static struct qcall *qcalls;

static void qcall_free(struct qcall *q)
{
    struct qcall **pp = &qcalls;
    while (*pp && *pp != q)
        pp = &(*pp)->next;
    if (*pp)
        *pp = q->next;
    if (q->timer)
        event_free(q->timer);
    free(q);
}

static void qcall_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct qcall *q = arg;
    if (q->op)
        agent_op_fail(q->op, YE_QEMU_ERROR, "QEMU did not answer (no answer)");
    q->op = NULL;
}

/* disk0's file from query-block's reply: a path (relative names are in the
 * VM's directory). */
static json_t *active_file(struct engine *e, const char *vm_id, json_t *blocks)
{
    size_t i;
    json_t *b;
    struct vm_rec vm = {0};
    snprintf(vm.id, sizeof vm.id, "%s", vm_id);
    json_array_foreach(blocks, i, b)
    {
        const char *dev = json_string_value(json_object_get(b, "device"));
        const char *f = json_string_value(json_object_get(json_object_get(b, "inserted"), "file"));
        if (dev && f && !strcmp(dev, "disk0")) {
            char path[512];
            vm_qemu_abs(e, &vm, f, path, sizeof path);
            return json_pack("{s:s}", "file", path);
        }
    }
    return json_pack("{s:s}", "file", "");
}

static void qcall_reply(void *ctx, json_t *ret, const char *err)
{
    struct qcall *q = ctx;
    if (q->op) {
        if (err)
            agent_op_fail(q->op, YE_QEMU_ERROR, "%s", err);
        else
            agent_op_reply(
                q->op, q->active_layer ? active_file(q->e, q->vm_id, ret) : json_object(), NULL);
    }
    qcall_free(q);
}

static void qmp_send(struct agent_local *al, struct agent_op *op, const struct vm_rec *vm,
                     const char *cmd, json_t *args, bool active_layer)
{
    struct engine *e = al->host;
    struct vm_rt *rt = engine_rt_find(e, vm->id);
    if (!rt || !rt->watch) {
        agent_op_fail(op, YE_UNAVAILABLE, "yund holds no QMP connection to the vm");
        return;
    }
    struct qcall *q = calloc(1, sizeof *q);
    if (!q || !(q->timer = evtimer_new(al->base, qcall_timeout, q))) {
        free(q);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    q->op = op;
    q->e = e;
    q->active_layer = active_layer;
    snprintf(q->vm_id, sizeof q->vm_id, "%s", vm->id);
    if (qmp_watch_command(rt->watch, cmd, args, qcall_reply, q) < 0) {
        event_free(q->timer);
        free(q);
        agent_op_fail(op, YE_QEMU_ERROR, "cannot send %s to QEMU", cmd);
        return;
    }
    q->next = qcalls;
    qcalls = q;
    struct timeval tv = {QMP_TIMEOUT_MS / 1000, (QMP_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(q->timer, &tv);
}

static void snapshot_switch(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    struct vm_rec vm;
    const char *file;
    if (!e || vm_arg(e, op, args, &vm) < 0 || !(file = layer_arg(op, args, "file")))
        return;
    /* QEMU opens it (mode existing) by the name it can reach: relative when
     * it runs in the VM's directory */
    char name[512];
    if (vm_qemu_name(e, &vm, file, name, sizeof name) < 0) {
        agent_op_fail(op, YE_INTERNAL, "path too long");
        return;
    }
    json_t *a = json_pack("{s:s,s:s,s:s,s:s}", "device", "disk0", "snapshot-file", name, "format",
                          "qcow2", "mode", "existing");
    qmp_send(al, op, &vm, "blockdev-snapshot-sync", a, false);
    json_decref(a);
}

static void active_layer(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    struct vm_rec vm;
    if (!e || vm_arg(e, op, args, &vm) < 0)
        return;
    qmp_send(al, op, &vm, "query-block", NULL, true);
}

const struct agent_verb_def agent_snap_verbs[] = {
    {AV_VM_LAYER_CREATE, "vm.layer_create", layer_create},
    {AV_VM_LAYER_REMOVE, "vm.layer_remove", layer_remove},
    {AV_GUEST_FSFREEZE, "guest.fsfreeze", fs_freeze},
    {AV_GUEST_FSTHAW, "guest.fsthaw", fs_thaw},
    {AV_VM_SNAPSHOT_SWITCH, "vm.snapshot_switch", snapshot_switch},
    {AV_VM_ACTIVE_LAYER, "vm.active_layer", active_layer},
};
const size_t agent_snap_verbs_count = sizeof agent_snap_verbs / sizeof agent_snap_verbs[0];
