/*
 * volumes_quick.c - the quick volume operations of the controller: create,
 * linked clone, resize (offline or online), delete, and the pool's usage.
 *
 * Each one validates, writes its intent to the store (a new row "creating",
 * a row "deleting"), then hands the disk work to the agent (disk.create,
 * disk.resize, disk.remove; vm.qmp block_resize for a volume a running QEMU
 * holds) and finishes the row from the agent's reply, on the loop. Nothing
 * here waits on qemu-img or QEMU. While one is in flight its volume is
 * busy (ctl_volume_quick_busy): other operations are refused and the
 * reconcile pass leaves the row alone. A crash in between leaves a
 * transient row the reconcile pass settles (ctl_volumes_reconcile).
 */
#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/ctl.h"
#include "compute/qemu_argv.h"
#include "ctl/volumes.h"
#include "lib/log.h"
#include "lib/util.h"
#include "storage/volstate.h"
#include "storage/volumes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qop {
    struct ctl *c;
    struct qop *next;
    struct volume_rec v;
    char action[16]; /* the event's action: create, clone-linked, resize, delete */
    uint64_t size;   /* resize: the new size */
    bool live;       /* resize: through the running QEMU */
    ctl_volume_fn done;
    void *ctx;
};

/* In flight, for ctl_volume_quick_busy (one list: a process has one loop). */
static struct qop *inflight;

bool ctl_volume_quick_busy(struct ctl *c, const char *id)
{
    for (struct qop *q = inflight; q; q = q->next)
        if (q->c == c && !strcmp(q->v.id, id))
            return true;
    return false;
}

static struct qop *qop_new(struct ctl *c, const char *action, ctl_volume_fn done, void *ctx,
                           struct yerr *err)
{
    struct qop *op = calloc(1, sizeof *op);
    if (!op) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        return NULL;
    }
    op->c = c;
    op->done = done;
    op->ctx = ctx;
    snprintf(op->action, sizeof op->action, "%s", action);
    return op;
}

static void qop_track(struct qop *op)
{
    op->next = inflight;
    inflight = op;
}

/* Reports to the caller and frees op. */
static void qop_end(struct qop *op, const struct yerr *err)
{
    for (struct qop **p = &inflight; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            break;
        }
    if (op->done)
        op->done(op->ctx, err ? NULL : &op->v, err);
    free(op);
}

int ctl_volume_get(struct ctl *c, const char *name, struct volume_rec *v, struct yerr *err)
{
    int rc = store_volume_get(c->store, name, v);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "volume '%s' does not exist", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_volume_refuse_backing(struct ctl *c, const struct volume_rec *v, const char *consequence,
                              struct yerr *err)
{
    int deps = 0;
    if (store_volume_dependents(c->store, v->name, &deps) != 0)
        return yerr_db(err, store_errmsg(c->store));
    if (deps > 0)
        return yerr_set(err, YE_CONFLICT, "volume '%s' backs %d linked clone%s: %s", v->name, deps,
                        deps == 1 ? "" : "s", consequence);
    return 0;
}

int ctl_volume_list(struct ctl *c, struct volume_rec **out, size_t *n, struct yerr *err)
{
    if (store_volume_list(c->store, out, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_pool_info(struct ctl *c, struct pool_info *p, struct yerr *err)
{
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(c->store, &vs, &n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    volume_pool_info(c->cfg, vs, n, p);
    free(vs);
    return 0;
}

/* The volume pool's directory on a host: under its own state directory
 * (the parent of the vms_dir it reported, as engine_init lays it out), so
 * that a host whose state directory is not the controller's gets paths
 * its agent accepts. */
int ctl_host_pool_dir(struct ctl *c, const char *host, char *buf, size_t len, struct yerr *err)
{
    const struct ctl_host *f = ctl_host_facts(c, host);
    const char *vms = f ? f->vms_dir : "";
    size_t n = strlen(vms);
    if (n > 4 && !strcmp(vms + n - 4, "/vms")) {
        if (snprintf_checked(buf, len, "%.*s/pools/" VOLUME_POOL, (int)(n - 4), vms) < 0)
            return yerr_set(err, YE_INVALID_ARGUMENT, "host %s: its state directory is too long",
                            ctl_host_label(c, host));
        return 0;
    }
    if (host[0] && strcmp(host, c->local_host))
        return yerr_set(err, YE_UNAVAILABLE, "host %s: where its pool is is not known yet",
                        ctl_host_label(c, host));
    volume_pool_dir(c->cfg, buf, len); /* the all-in-one's own */
    return 0;
}

/* Validates a new volume and writes its intent row ("creating"); the file
 * does not exist yet. */
int ctl_volume_begin_row(struct ctl *c, const struct volume_row_spec *r, struct volume_rec *v,
                         struct yerr *err)
{
    char why[256], dir[512];
    const char *name = r->name, *format = r->format;
    uint64_t size = r->size;
    if (!name_valid(name, why, sizeof(why)))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (strcmp(format, "qcow2") && strcmp(format, "raw"))
        return yerr_set(err, YE_INVALID_ARGUMENT, "format must be qcow2 or raw, not '%s'", format);
    if (size < (1 << 20) || size > VOLUME_MAX || size % 512)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "size must be 1M..16T and a whole number of 512-byte sectors");
    char host[37];
    if (r->host) {
        snprintf(host, sizeof host, "%s", r->host);
        if (!ctl_host_agent(c, host, err))
            return -1; /* made on a host that is up, or not at all (503) */
    } else if (!ctl_disk_agent(c, host, err)) {
        return -1; /* the local host, else the first up; none: 503 */
    }
    memset(v, 0, sizeof(*v));
    snprintf(v->host, sizeof(v->host), "%s", host);
    if (r->id)
        snprintf(v->id, sizeof(v->id), "%s", r->id);
    else
        uuid_generate_str(v->id);
    snprintf(v->name, sizeof(v->name), "%s", name);
    snprintf(v->pool, sizeof(v->pool), VOLUME_POOL);
    snprintf(v->format, sizeof(v->format), "%s", format);
    if (ctl_host_pool_dir(c, host, dir, sizeof dir, err) < 0)
        return -1;
    snprintf(v->path, sizeof(v->path), "%s/%s.%s", dir, name, format);
    snprintf(v->task, sizeof(v->task), "%s", r->task ? r->task : "");
    snprintf(v->backing, sizeof(v->backing), "%s", r->backing ? r->backing : "");
    v->virtual_size = size;
    v->state = VOL_CREATING;
    v->created_at = now_ms();
    int rc = store_volume_insert(c->store, v);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "volume '%s' already exists", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

/* ---- create and linked clone: disk.create ---- */

static void created(void *ctx, json_t *result, const struct yerr *aerr)
{
    struct qop *op = ctx;
    struct ctl *c = op->c;
    struct volume_rec *v = &op->v;
    struct yerr err = {0};
    if (aerr)
        err = *aerr;
    if (!err.code) {
        v->state = VOL_READY;
        if (store_volume_update(c->store, v) != 0)
            yerr_db(&err, store_errmsg(c->store));
    }
    if (err.code) {
        ctl_host_call(c, v->host, AV_DISK_REMOVE, json_pack("{s:s}", "path", v->path), NULL, NULL,
                      NULL);
        store_volume_delete(c->store, v->id);
        ctl_event(c, "volume", v->name, op->action, "error", "%s", err.message);
        return qop_end(op, &err);
    }
    ctl_event(c, "volume", v->name, op->action, "ok", "%s, %llu bytes", v->format,
              (unsigned long long)v->virtual_size);
    qop_end(op, NULL);
}

static void start_create(struct qop *op, json_t *args)
{
    qop_track(op);
    ctl_host_call(op->c, op->v.host, AV_DISK_CREATE, args, created, NULL, op);
}

int ctl_volume_create(struct ctl *c, const char *name, uint64_t size, const char *format,
                      const char *host, ctl_volume_fn done, void *ctx, struct yerr *err)
{
    char host_id[37];
    if (host && ctl_host_resolve(c, host, host_id, err) < 0)
        return -1;
    struct qop *op = qop_new(c, "create", done, ctx, err);
    if (!op)
        return -1;
    struct volume_row_spec r = {.name = name,
                                .format = format ? format : "qcow2",
                                .size = size,
                                .host = host ? host_id : NULL};
    if (ctl_volume_begin_row(c, &r, &op->v, err) < 0) {
        free(op);
        return -1;
    }
    start_create(op, json_pack("{s:s,s:s,s:I}", "path", op->v.path, "format", op->v.format, "size",
                               (json_int_t)size));
    return 0;
}

int ctl_volume_clone_linked(struct ctl *c, const char *src, const char *dst, ctl_volume_fn done,
                            void *ctx, struct yerr *err)
{
    struct volume_rec s;
    struct vm_rec vm;
    if (ctl_volume_get(c, src, &s, err) < 0 || ctl_volume_idle(c, src, err) < 0)
        return -1;
    if (s.attached_to[0])
        return yerr_set(err, YE_CONFLICT,
                        "volume '%s' is attached to a vm that writes to it: a linked clone needs "
                        "a source that never changes (detach it, or make a full clone of a "
                        "stopped vm's volume)",
                        s.name);
    if (ctl_volume_in_use(c, &s, &vm))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is in use by running vm '%s'", s.name,
                        vm.name);
    if (!vol_state_settled(s.state))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", s.name, vol_state_name(s.state));
    struct qop *op = qop_new(c, "clone-linked", done, ctx, err);
    if (!op)
        return -1;
    /* a linked clone is always qcow2 (the overlay format) */
    struct volume_row_spec r = {.name = dst,
                                .format = "qcow2",
                                .size = s.virtual_size,
                                .backing = s.name,
                                .host = s.host}; /* beside its backing file */
    if (ctl_volume_begin_row(c, &r, &op->v, err) < 0) {
        free(op);
        return -1;
    }
    /* a new qcow2 whose backing file is the source: O(1) in the source's size */
    start_create(op, json_pack("{s:s,s:s,s:s,s:s}", "path", op->v.path, "format", "qcow2",
                               "backing", s.path, "backing_format", s.format));
    return 0;
}

/* ---- resize: disk.resize, or block_resize in the running QEMU ---- */

static void resized(void *ctx, json_t *result, const struct yerr *err)
{
    struct qop *op = ctx;
    struct ctl *c = op->c;
    if (err) {
        ctl_event(c, "volume", op->v.name, "resize", "error", "%s", err->message);
        return qop_end(op, err);
    }
    struct yerr fe = {0};
    struct volume_rec cur;
    if (ctl_volume_get(c, op->v.id, &cur, &fe) == 0) {
        cur.virtual_size = op->size;
        if (store_volume_update(c->store, &cur) != 0)
            yerr_db(&fe, store_errmsg(c->store));
        op->v = cur;
    }
    if (fe.code)
        return qop_end(op, &fe);
    ctl_event(c, "volume", op->v.name, "resize", "ok", "%llu bytes%s", (unsigned long long)op->size,
              op->live ? " (online)" : "");
    qop_end(op, NULL);
}

int ctl_volume_resize(struct ctl *c, const char *name, uint64_t size, ctl_volume_fn done, void *ctx,
                      struct yerr *err)
{
    struct volume_rec v;
    if (ctl_volume_get(c, name, &v, err) < 0 || ctl_volume_idle(c, name, err) < 0)
        return -1;
    if (size <= v.virtual_size)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "volumes only grow: %llu bytes is not more than the current %llu",
                        (unsigned long long)size, (unsigned long long)v.virtual_size);
    if (size > VOLUME_MAX || size % 512)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "size must be at most 16T and a whole number of 512-byte sectors");
    if (!vol_state_settled(v.state))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v.name, vol_state_name(v.state));
    struct vm_rec vm;
    bool live = ctl_volume_in_use(c, &v, &vm);
    if (live && !vm_state_live(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    struct qop *op = qop_new(c, "resize", done, ctx, err);
    if (!op)
        return -1;
    op->v = v;
    op->size = size;
    op->live = live;
    qop_track(op);
    if (live) {
        /* online, QEMU grows the file and tells the guest (virtio config change) */
        char node[24], dev[24], serial[24];
        volume_qemu_ids(&v, node, dev, serial);
        ctl_vm_call(c, &vm, AV_VM_QMP,
                    json_pack("{s:s,s:s,s:{s:s,s:I}}", "vm", vm.id, "command", "block_resize",
                              "arguments", "node-name", node, "size", (json_int_t)size),
                    resized, NULL, op);
    } else {
        ctl_host_call(c, v.host, AV_DISK_RESIZE,
                      json_pack("{s:s,s:s,s:I}", "path", v.path, "format", v.format, "size",
                                (json_int_t)size),
                      resized, NULL, op);
    }
    return 0;
}

/* ---- delete: row "deleting", disk.remove, row gone ---- */

static void removed(void *ctx, json_t *result, const struct yerr *err)
{
    struct qop *op = ctx;
    struct ctl *c = op->c;
    if (err)
        log_warn("cannot remove %s: %s", op->v.path, err->message);
    store_volume_delete(c->store, op->v.id);
    ctl_event(c, "volume", op->v.name, "delete", "ok", "%s", "");
    qop_end(op, NULL);
}

int ctl_volume_delete(struct ctl *c, const char *name, ctl_volume_fn done, void *ctx,
                      struct yerr *err)
{
    struct volume_rec v;
    if (ctl_volume_get(c, name, &v, err) < 0 || ctl_volume_idle(c, name, err) < 0)
        return -1;
    if (v.attached_to[0])
        return yerr_set(err, YE_CONFLICT, "volume '%s' is attached: detach it first", v.name);
    if (ctl_volume_refuse_backing(c, &v, "delete them first", err) < 0)
        return -1;
    struct qop *op = qop_new(c, "delete", done, ctx, err);
    if (!op)
        return -1;
    v.state = VOL_DELETING;
    if (store_volume_update(c->store, &v) != 0) {
        free(op);
        return yerr_db(err, store_errmsg(c->store));
    }
    op->v = v;
    qop_track(op);
    ctl_host_call(c, v.host, AV_DISK_REMOVE, json_pack("{s:s}", "path", v.path), removed, NULL, op);
    return 0;
}
