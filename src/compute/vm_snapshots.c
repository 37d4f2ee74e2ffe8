/*
 * vm_snapshots.c - disk snapshots of a VM as external qcow2 overlays.
 *
 * A VM's disk is a chain of qcow2 files in its directory, ending in the
 * image: image <- disk.qcow2 <- disk-xxxx.qcow2 (active). Taking snapshot
 * S freezes the active file as S's file and puts a fresh overlay on top
 * (QMP blockdev-snapshot-sync while the VM runs, qemu-img create when it
 * does not). With the guest agent up, the guest's file systems are frozen
 * around the switch so the snapshot is application-consistent.
 *
 * Layers name the layer under them by its file name (relative: same
 * directory) and QEMU is handed relative names too: a confined QEMU runs in
 * the VM's directory and reaches nothing else by name (confine.h). yund
 * writes every header itself: it makes a live snapshot's new layer (QEMU
 * only opens it) and names the base of a merge, because QEMU would write
 * its own name for a layer, and for a chain that came partly by fd (the
 * image, fdset QEMU_FDSET_IMAGE) that is a "json:{...}" description.
 *
 * Snapshot files never change after that, so they form a tree: reverting
 * to S (VM stopped) drops the active overlay and starts a new one on S's
 * file; every other snapshot stays valid. Deleting S merges its data into
 * its children (qemu-img rebase, or a QMP block-stream job for the child
 * a running QEMU has open) and then removes its file.
 */
#include "compute/confine.h"
#include "compute/guest.h"
#include "compute/qemu_argv.h"
#include "compute/qga.h"
#include "compute/vm_disks.h"
#include "lib/log.h"
#include "lib/util.h"
#include "storage/inspect.h"
#include "storage/volumes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SNAPSHOTS 32 /* a longer chain slows every read that misses */

static void new_layer_name(char out[64])
{
    char id[37];
    uuid_generate_str(id);
    snprintf(out, 64, "disk-%.8s.qcow2", id);
}

static int list_snaps(struct engine *e, const struct vm_rec *vm, struct snapshot_rec **out,
                      size_t *n, struct yerr *err)
{
    if (store_snapshot_list(e->store, vm->id, out, n) != 0)
        return yerr_db(err, store_errmsg(e->store));
    return 0;
}

static struct snapshot_rec *by_id(struct snapshot_rec *s, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].id, id))
            return &s[i];
    return NULL;
}

static int busy_check(const struct vm_rec *vm, const struct snapshot_rec *s, size_t n,
                      struct yerr *err)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].state, "ready"))
            return yerr_set(err, YE_CONFLICT, "vm '%s': snapshot '%s' is %s; try again later",
                            vm->name, s[i].name, s[i].state);
    return 0;
}

static struct snapshot_rec *by_name(struct snapshot_rec *s, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].name, name) || !strcmp(s[i].id, name))
            return &s[i];
    return NULL;
}

/* Finds name in the list, or fills a 404. */
static int find_in(const struct vm_rec *vm, struct snapshot_rec *s, size_t n, const char *name,
                   struct snapshot_rec *out, struct yerr *err)
{
    struct snapshot_rec *f = by_name(s, n, name);
    if (!f)
        return yerr_set(err, YE_NOT_FOUND, "vm '%s' has no snapshot '%s'", vm->name, name);
    *out = *f;
    return 0;
}

int engine_snapshot_find(struct engine *e, const struct vm_rec *vm, const char *name,
                         struct snapshot_rec *out, struct yerr *err)
{
    struct snapshot_rec *s;
    size_t n;
    if (list_snaps(e, vm, &s, &n, err) < 0)
        return -1;
    int rc = find_in(vm, s, n, name, out, err);
    free(s);
    return rc;
}

/* The file a snapshot's file (or the active layer) sits on: its path, and
 * in name (when given) what a layer's header calls it. */
static int base_of(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *s, size_t n,
                   const char *parent, char *path, size_t len, char *name, size_t nlen, char fmt[8],
                   struct yerr *err)
{
    if (!parent[0]) {
        struct image_rec img;
        if (store_image_get(e->store, vm->image, &img) != 0)
            return yerr_set(err, YE_INTERNAL, "vm '%s': image '%s' is missing", vm->name,
                            vm->image);
        snprintf(path, len, "%s", img.path);
        if (name)
            snprintf(name, nlen, "%s", img.path);
        snprintf(fmt, 8, "%s", img.format);
        return 0;
    }
    struct snapshot_rec *p = by_id(s, n, parent);
    if (!p)
        return yerr_set(err, YE_INTERNAL, "vm '%s': snapshot %s is missing", vm->name, parent);
    engine_vm_path(e, vm, p->file, path, len);
    if (name)
        snprintf(name, nlen, "%s", p->file);
    snprintf(fmt, 8, "qcow2");
    return 0;
}

/* The path of the file a block node of the VM's disk is, from QEMU's name
 * for it: plain (relative names are in the VM's directory), or
 * json:{..."file":{"filename":F}} for a node whose chain was given in part
 * on the command line; the image is the fd of set QEMU_FDSET_IMAGE. */
static void node_path(struct engine *e, const struct vm_rec *vm, const char *name, char *out,
                      size_t len)
{
    json_t *j = NULL;
    if (!strncmp(name, "json:", 5)) {
        j = json_loads(name + 5, 0, NULL);
        const char *f = json_string_value(json_object_get(json_object_get(j, "file"), "filename"));
        name = f ? f : "";
    }
    char set[32];
    struct image_rec img;
    snprintf(set, sizeof(set), "/dev/fdset/%d", QEMU_FDSET_IMAGE);
    if (!strcmp(name, set) && store_image_get(e->store, vm->image, &img) == 0)
        snprintf(out, len, "%s", img.path);
    else
        vm_qemu_abs(e, vm, name, out, len);
    json_decref(j);
}

/* The layer QEMU is writing to ("" if it cannot say). */
static void qemu_active_file(struct engine *e, const struct vm_rec *vm, char *out, size_t len)
{
    json_t *blocks = NULL;
    struct yerr err;
    out[0] = 0;
    if (engine_vm_qmp(e, vm, "query-block", NULL, &blocks, &err) < 0)
        return;
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b)
    {
        const char *dev = json_string_value(json_object_get(b, "device"));
        const char *f = json_string_value(json_object_get(json_object_get(b, "inserted"), "file"));
        if (dev && f && !strcmp(dev, "disk0"))
            node_path(e, vm, f, out, len);
    }
    json_decref(blocks);
}

/* ---- create ---- */

/* Asks the guest agent to freeze (or thaw) the guest's file systems. */
static bool agent_call(struct engine *e, const struct vm_rec *vm, const char *cmd, char *why,
                       size_t len)
{
    char sock[512];
    if (!engine_vm_agent(e, vm, sock, sizeof(sock))) {
        snprintf(why, len, "no guest agent");
        return false;
    }
    /* An agent the background refresh found silent is not waited for: the
     * snapshot is crash-consistent rather than a stall of every request.
     * (Freezing is still a blocking exchange: making it asynchronous goes
     * with the task model.) */
    const struct guest_facts *f = guest_facts_get(e, vm);
    if (f && !f->answering && f->error[0] && !f->refreshing) {
        snprintf(why, len, "guest agent not answering: %s", f->error);
        return false;
    }
    return qga_command(sock, cmd, NULL, NULL, 0, 10000, why, len) == 0;
}

/* Gives a new layer to the owner of the layer it sits on: the VM's uid
 * when its QEMU is confined, root otherwise. */
static int give_layer(const char *layer, const char *under, struct yerr *err)
{
    struct stat st;
    int fd = open(layer, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd >= 0 && lstat(under, &st) == 0 && fchown(fd, st.st_uid, st.st_gid) == 0 &&
                     fchmod(fd, 0600) == 0
                 ? 0
                 : -1;
    if (rc < 0)
        yerr_set(err, YE_INTERNAL, "cannot give %s to the vm: %s", layer, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

static int switch_live(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *snap,
                       struct yerr *err)
{
    char why[300], path[512], nw[512], old[512];
    /* yund makes the new layer, naming the old one by its relative name,
     * and gives it to the VM's uid; QEMU opens it (mode existing) by the
     * name it can reach, relative when it runs in the VM's directory */
    engine_vm_path(e, vm, snap->new_disk, nw, sizeof(nw));
    engine_vm_path(e, vm, vm->disk, old, sizeof(old));
    if (vm_qemu_name(e, vm, snap->new_disk, path, sizeof(path)) < 0)
        return yerr_set(err, YE_INTERNAL, "path too long");
    char *mk[] = {"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", (char *)vm->disk, nw, NULL};
    if (engine_qemu_img(e, mk, 60000, why, sizeof(why)) < 0)
        return yerr_disk(err, "%s", why);
    if (give_layer(nw, old, err) < 0)
        return -1;
    bool frozen =
        vm->state == VM_RUNNING && agent_call(e, vm, "guest-fsfreeze-freeze", why, sizeof(why));
    snprintf(snap->consistency, sizeof(snap->consistency), frozen ? "application" : "crash");
    if (!frozen)
        engine_event(e, "vm", vm->name, "snapshot", "info", "%s: crash-consistent (%s)", snap->name,
                     vm->state == VM_RUNNING ? why : "vm paused");
    json_t *args = json_pack("{s:s,s:s,s:s,s:s}", "device", "disk0", "snapshot-file", path,
                             "format", "qcow2", "mode", "existing");
    int rc = engine_vm_qmp(e, vm, "blockdev-snapshot-sync", args, NULL, err);
    json_decref(args);
    if (frozen && !agent_call(e, vm, "guest-fsfreeze-thaw", why, sizeof(why)) &&
        !agent_call(e, vm, "guest-fsfreeze-thaw", why, sizeof(why)))
        engine_event(e, "vm", vm->name, "snapshot", "error",
                     "could not thaw the guest's file systems: %s", why);
    if (rc < 0)
        yerr_disk(err, "%s", err->message); /* 507 when the disk is full */
    return rc;
}

int engine_snapshot_create(struct engine *e, const char *vmname, const char *name,
                           struct snapshot_rec *out, struct yerr *err)
{
    struct vm_rec vm;
    char why[400];
    if (engine_vm_get(e, vmname, &vm, err) < 0)
        return -1;
    if (!name_valid(name, why, sizeof(why)))
        return yerr_set(err, YE_INVALID_ARGUMENT, "snapshot name: %s", why);
    bool live = vm_state_live(vm.state);
    if (!live && !vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    struct snapshot_rec *s, snap = {0};
    size_t n;
    if (list_snaps(e, &vm, &s, &n, err) < 0)
        return -1;
    int rc = busy_check(&vm, s, n, err);
    if (rc == 0 && n >= MAX_SNAPSHOTS)
        rc = yerr_set(err, YE_CONFLICT, "vm '%s' has %d snapshots, the most it may have", vm.name,
                      MAX_SNAPSHOTS);
    if (rc == 0 && by_name(s, n, name))
        rc = yerr_set(err, YE_CONFLICT, "vm '%s' already has a snapshot '%s'", vm.name, name);
    free(s);
    if (rc < 0)
        return -1;

    uuid_generate_str(snap.id);
    snprintf(snap.vm_id, sizeof(snap.vm_id), "%s", vm.id);
    snprintf(snap.name, sizeof(snap.name), "%s", name);
    snprintf(snap.file, sizeof(snap.file), "%s", vm.disk);
    snprintf(snap.parent, sizeof(snap.parent), "%s", vm.disk_parent);
    snprintf(snap.state, sizeof(snap.state), "creating");
    snprintf(snap.consistency, sizeof(snap.consistency), "crash");
    new_layer_name(snap.new_disk);
    snap.created_at = now_ms();
    if (store_snapshot_insert(e->store, &snap) != 0)
        return yerr_db(err, store_errmsg(e->store));

    char nw[512];
    engine_vm_path(e, &vm, snap.new_disk, nw, sizeof(nw));
    if (live) {
        rc = switch_live(e, &vm, &snap, err);
        if (rc < 0) {
            /* a lost reply (timeout) is not "nothing happened": ask QEMU
             * which layer it writes to before undoing anything */
            char active[512];
            qemu_active_file(e, &vm, active, sizeof(active));
            if (!strcmp(active, nw)) {
                rc = 0;
            } else if (!active[0]) {
                engine_event(e, "vm", vm.name, "snapshot", "error",
                             "%s: QEMU does not answer; left for the reconcile pass", name);
                return -1;
            }
        }
    } else {
        char *args[] = {"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", vm.disk, nw, NULL};
        rc = engine_qemu_img(e, args, 60000, why, sizeof(why));
        if (rc < 0)
            yerr_disk(err, "%s", why);
    }
    if (rc == 0) {
        snprintf(vm.disk, sizeof(vm.disk), "%s", snap.new_disk);
        snprintf(vm.disk_parent, sizeof(vm.disk_parent), "%s", snap.id);
        if (engine_store_update(e, &vm) != 0) {
            /* QEMU (or qemu-img) made the switch but the record does not
             * say so: leave the snapshot "creating" for the reconcile pass,
             * which asks QEMU which layer it writes to */
            engine_event(e, "vm", vm.name, "snapshot", "error", "%s: database: %s", name,
                         store_errmsg(e->store));
            return yerr_db(err, store_errmsg(e->store));
        }
    }
    if (rc < 0) {
        /* QEMU did not switch: the new layer is nobody's */
        unlink(nw);
        store_snapshot_delete(e->store, snap.id);
        engine_event(e, "vm", vm.name, "snapshot", "error", "%s: %s", name, err->message);
        return -1;
    }
    snprintf(snap.state, sizeof(snap.state), "ready");
    snap.new_disk[0] = 0;
    store_snapshot_update(e->store, &snap);
    engine_event(e, "vm", vm.name, "snapshot", "ok", "%s (%s-consistent)", name, snap.consistency);
    *out = snap;
    return 0;
}

/* ---- revert ---- */

static bool is_snapshot_file(const struct snapshot_rec *s, size_t n, const char *file)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].file, file))
            return true;
    return false;
}

int engine_snapshot_revert(struct engine *e, const char *vmname, const char *name,
                           struct snapshot_rec *out, struct yerr *err)
{
    struct vm_rec vm;
    if (engine_vm_get(e, vmname, &vm, err) < 0)
        return -1;
    if (!vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: stop it before reverting", vm.name,
                        vm_state_name(vm.state));
    struct snapshot_rec *s;
    size_t n;
    if (list_snaps(e, &vm, &s, &n, err) < 0)
        return -1;
    struct snapshot_rec snap;
    if (busy_check(&vm, s, n, err) < 0 || find_in(&vm, s, n, name, &snap, err) < 0) {
        free(s);
        return -1;
    }
    char layer[64], nw[512], old[512], why[400];
    new_layer_name(layer);
    engine_vm_path(e, &vm, layer, nw, sizeof(nw));
    engine_vm_path(e, &vm, vm.disk, old, sizeof(old));
    char *args[] = {"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", snap.file, nw, NULL};
    if (engine_qemu_img(e, args, 60000, why, sizeof(why)) < 0) {
        unlink(nw);
        free(s);
        return yerr_disk(err, "%s", why);
    }
    bool drop_old = !is_snapshot_file(s, n, vm.disk);
    free(s);
    snprintf(vm.disk, sizeof(vm.disk), "%s", layer);
    snprintf(vm.disk_parent, sizeof(vm.disk_parent), "%s", snap.id);
    if (engine_store_update(e, &vm) != 0) {
        unlink(nw);
        return yerr_db(err, store_errmsg(e->store));
    }
    /* the record points at the new layer now; the old one is garbage (a
     * crash here leaves it to the orphan sweep) */
    if (drop_old)
        unlink(old);
    engine_event(e, "vm", vm.name, "revert", "ok", "to snapshot %s", snap.name);
    *out = snap;
    return 0;
}

/* ---- delete (merge) ---- */

static void job_id(const struct snapshot_rec *snap, char out[32])
{
    snprintf(out, 32, "yun-merge-%.8s", snap->id);
}

/* The format node QEMU has for a file: not the protocol node under it, nor
 * a filter over it (a running stream puts a copy-on-read node on its top
 * that reports the same file and no backing file). */
static json_t *node_for(struct engine *e, const struct vm_rec *vm, json_t *nodes, const char *file)
{
    size_t i;
    json_t *nd;
    json_array_foreach(nodes, i, nd)
    {
        const char *f = json_string_value(json_object_get(nd, "file"));
        const char *drv = json_string_value(json_object_get(nd, "drv"));
        char path[512];
        if (!f || !drv || (strcmp(drv, "qcow2") && strcmp(drv, "raw")))
            continue;
        node_path(e, vm, f, path, sizeof(path));
        if (!strcmp(path, file))
            return nd;
    }
    return NULL;
}

/* Is our merge job for snap still running in QEMU? -1: cannot tell. */
static int job_running(struct engine *e, const struct vm_rec *vm, const struct snapshot_rec *snap)
{
    json_t *jobs = NULL;
    struct yerr err;
    if (engine_vm_qmp(e, vm, "query-block-jobs", NULL, &jobs, &err) < 0)
        return -1;
    char job[32];
    job_id(snap, job);
    int found = 0;
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        const char *dev = json_string_value(json_object_get(j, "device"));
        found |= dev && !strcmp(dev, job);
    }
    json_decref(jobs);
    return found;
}

static void merge_done(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *snap)
{
    char path[512];
    engine_vm_path(e, vm, snap->file, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
    store_snapshot_delete(e->store, snap->id);
    engine_event(e, "vm", vm->name, "snapshot-delete", "ok", "%s merged into its children",
                 snap->name);
}

static void merge_failed(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *snap,
                         const char *why)
{
    snprintf(snap->state, sizeof(snap->state), "ready");
    store_snapshot_update(e->store, snap);
    engine_event(e, "vm", vm->name, "snapshot-delete", "error", "%s: %s", snap->name, why);
}

/* The running chain's child of snap has been streamed: re-parent it. */
static void reparent_chain_child(struct engine *e, struct vm_rec *vm, struct snapshot_rec *snap,
                                 struct snapshot_rec *s, size_t n)
{
    if (!strcmp(vm->disk_parent, snap->id)) {
        snprintf(vm->disk_parent, sizeof(vm->disk_parent), "%s", snap->parent);
        engine_store_update(e, vm);
        return;
    }
    for (const char *id = vm->disk_parent; id[0];) {
        struct snapshot_rec *c = by_id(s, n, id);
        if (!c)
            break;
        if (!strcmp(c->parent, snap->id)) {
            snprintf(c->parent, sizeof(c->parent), "%s", snap->parent);
            store_snapshot_update(e->store, c);
            break;
        }
        id = c->parent;
    }
}

/* Starts QEMU streaming snap's data into `top` (a file of the running
 * chain). 1: the job runs; 0: nothing left to stream; -1: error. */
static int start_stream(struct engine *e, struct vm_rec *vm, struct snapshot_rec *snap,
                        const char *top, const char *base, const char *bname, struct yerr *err)
{
    int running = job_running(e, vm, snap);
    if (running != 0)
        return running < 0 ? yerr_set(err, YE_QEMU_ERROR, "QEMU does not answer") : 1;
    json_t *nodes = NULL;
    if (engine_vm_qmp(e, vm, "query-named-block-nodes", NULL, &nodes, err) < 0)
        return -1;
    char from[512];
    engine_vm_path(e, vm, snap->file, from, sizeof(from));
    json_t *t = node_for(e, vm, nodes, top), *b = node_for(e, vm, nodes, base);
    const char *tbacking = t ? json_string_value(json_object_get(t, "backing_file")) : NULL;
    char tback[512] = "";
    if (tbacking) /* a relative backing file is in the same directory */
        node_path(e, vm, tbacking, tback, sizeof(tback));
    int rc;
    if (!t || !b) {
        rc = yerr_set(err, YE_QEMU_ERROR, "QEMU does not have %s open", t ? base : top);
    } else if (!tbacking || strcmp(tback, from)) {
        rc = 0; /* already streamed (yund restarted while the job ran) */
    } else {
        char job[32];
        job_id(snap, job);
        /* the top's header is to name the base as yund does, not as QEMU */
        json_t *args =
            json_pack("{s:s,s:s,s:s,s:s}", "job-id", job, "device",
                      json_string_value(json_object_get(t, "node-name")), "base-node",
                      json_string_value(json_object_get(b, "node-name")), "backing-file", bname);
        rc = engine_vm_qmp(e, vm, "block-stream", args, NULL, err) < 0 ? -1 : 1;
        json_decref(args);
        if (rc < 0 && job_running(e, vm, snap) == 1)
            rc = 1; /* the reply was lost but the job runs */
    }
    json_decref(nodes);
    return rc;
}

/* Merges snap into each child; idempotent, so a crash can run it again. */
static int merge_continue(struct engine *e, struct vm_rec *vm, struct snapshot_rec *snap,
                          struct yerr *err)
{
    struct snapshot_rec *s;
    size_t n;
    if (list_snaps(e, vm, &s, &n, err) < 0)
        return -1;
    char base[512], bname[512], why[400], top[512] = "", fmt[8];
    if (base_of(e, vm, s, n, snap->parent, base, sizeof(base), bname, sizeof(bname), fmt, err) <
        0) {
        free(s);
        return -1;
    }
    bool live = vm_state_live(vm->state);
    /* which snapshots the running QEMU has open: the active layer's ancestors */
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].parent, snap->id))
            continue;
        bool in_chain = false;
        for (const char *id = vm->disk_parent; live && id[0] && !in_chain;) {
            struct snapshot_rec *a = by_id(s, n, id);
            in_chain = a && !strcmp(a->id, s[i].id);
            id = a ? a->parent : "";
        }
        char child[512];
        engine_vm_path(e, vm, s[i].file, child, sizeof(child));
        if (in_chain) {
            snprintf(top, sizeof(top), "%s", child);
            continue;
        }
        /* a safe rebase copies into the child whatever snap held for it */
        char *args[] = {"rebase", "-q", "-f", "qcow2", "-F", fmt, "-b", bname, child, NULL};
        if (engine_qemu_img(e, args, 3600000, why, sizeof(why)) < 0) {
            free(s);
            return yerr_disk(err, "%s", why);
        }
        snprintf(s[i].parent, sizeof(s[i].parent), "%s", snap->parent);
        store_snapshot_update(e->store, &s[i]);
    }
    if (!strcmp(vm->disk_parent, snap->id)) {
        char active[512];
        engine_vm_path(e, vm, vm->disk, active, sizeof(active));
        if (live) {
            snprintf(top, sizeof(top), "%s", active);
        } else {
            char *args[] = {"rebase", "-q", "-f", "qcow2", "-F", fmt, "-b", bname, active, NULL};
            if (engine_qemu_img(e, args, 3600000, why, sizeof(why)) < 0) {
                free(s);
                return yerr_disk(err, "%s", why);
            }
            snprintf(vm->disk_parent, sizeof(vm->disk_parent), "%s", snap->parent);
            engine_store_update(e, vm);
        }
    }
    int rc = 0;
    if (top[0]) {
        rc = start_stream(e, vm, snap, top, base, bname, err);
        if (rc == 0)
            reparent_chain_child(e, vm, snap, s, n);
    }
    free(s);
    if (rc == 0)
        merge_done(e, vm, snap);
    return rc;
}

int engine_snapshot_delete(struct engine *e, const char *vmname, const char *name, struct yerr *err)
{
    struct vm_rec vm;
    if (engine_vm_get(e, vmname, &vm, err) < 0)
        return -1;
    if (!vm_state_live(vm.state) && !vm_state_down(vm.state))
        return yerr_set(err, YE_CONFLICT, "vm '%s' is %s: try again when it has settled", vm.name,
                        vm_state_name(vm.state));
    struct snapshot_rec *s, snap;
    size_t n;
    if (list_snaps(e, &vm, &s, &n, err) < 0)
        return -1;
    int rc = busy_check(&vm, s, n, err);
    if (rc == 0)
        rc = find_in(&vm, s, n, name, &snap, err);
    free(s);
    if (rc < 0)
        return -1;
    snprintf(snap.state, sizeof(snap.state), "deleting");
    if (store_snapshot_update(e->store, &snap) != 0)
        return yerr_db(err, store_errmsg(e->store));
    rc = merge_continue(e, &vm, &snap, err);
    if (rc < 0)
        merge_failed(e, &vm, &snap, err->message);
    return rc;
}

/* ---- hooks ---- */

void vm_snapshots_on_event(struct engine *e, const struct vm_rec *vm0, const char *event,
                           json_t *data)
{
    bool cancelled = !strcmp(event, "BLOCK_JOB_CANCELLED");
    if (strcmp(event, "BLOCK_JOB_COMPLETED") && !cancelled)
        return;
    const char *dev = json_string_value(json_object_get(data, "device"));
    const char *error = cancelled ? "the block job was cancelled"
                                  : json_string_value(json_object_get(data, "error"));
    struct vm_rec vm = *vm0;
    struct snapshot_rec *s;
    size_t n;
    struct yerr err;
    if (!dev || list_snaps(e, &vm, &s, &n, &err) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char job[32];
        job_id(&s[i], job);
        if (strcmp(job, dev) || strcmp(s[i].state, "deleting"))
            continue;
        if (error) {
            merge_failed(e, &vm, &s[i], error);
        } else {
            reparent_chain_child(e, &vm, &s[i], s, n);
            merge_done(e, &vm, &s[i]);
        }
        break;
    }
    free(s);
}

void vm_snapshots_forget(struct engine *e, const struct vm_rec *vm)
{
    struct snapshot_rec *s;
    size_t n;
    struct yerr err;
    if (list_snaps(e, vm, &s, &n, &err) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        store_snapshot_delete(e->store, s[i].id); /* the files go with the VM's directory */
    free(s);
}

/* Removes disk layers in a VM's directory that nothing refers to (left
 * by a crash between making a layer and recording it, or the reverse). */
static void sweep_layers(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *s,
                         size_t n)
{
    char dir[512];
    if (engine_vm_path(e, vm, NULL, dir, sizeof(dir)) < 0)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *f = de->d_name;
        size_t l = strlen(f);
        if (strncmp(f, "disk", 4) || l < 6 || strcmp(f + l - 6, ".qcow2"))
            continue;
        bool used = !strcmp(f, vm->disk);
        for (size_t j = 0; j < n && !used; j++)
            used = !strcmp(f, s[j].file) || !strcmp(f, s[j].new_disk);
        if (!used) {
            char path[800];
            snprintf(path, sizeof(path), "%s/%s", dir, f);
            unlink(path);
            engine_event(e, "vm", vm->name, "orphan", "info", "removed unused disk layer %s", f);
        }
    }
    closedir(d);
}

void vm_snapshots_reconcile(struct engine *e, struct vm_rec *vm)
{
    struct snapshot_rec *s;
    size_t n;
    struct yerr err = {0};
    if (list_snaps(e, vm, &s, &n, &err) < 0)
        return;
    bool live = vm_state_live(vm->state), settled = live || vm_state_down(vm->state);
    bool touched = false; /* rows changed: list them again before the sweep */
    for (size_t i = 0; i < n && settled; i++) {
        struct snapshot_rec *snap = &s[i];
        touched |= strcmp(snap->state, "ready") != 0;
        if (!strcmp(snap->state, "creating")) {
            /* did the switch to the new layer happen before the crash? */
            char nw[512], active[512] = "";
            engine_vm_path(e, vm, snap->new_disk, nw, sizeof(nw));
            if (live)
                qemu_active_file(e, vm, active, sizeof(active));
            if (live && !active[0])
                continue; /* QEMU did not answer: next pass */
            /* With the VM down, a new layer that is a sound overlay of the
             * snapshot's file is adopted: if QEMU switched to it before
             * exiting it holds the guest's later writes, and if nothing
             * wrote to it, it equals the snapshot. */
            bool adopt = !strcmp(vm->disk, snap->new_disk) || !strcmp(active, nw);
            if (!adopt && !live) {
                struct disk_info di;
                char cur[512];
                engine_vm_path(e, vm, snap->file, cur, sizeof(cur));
                adopt = path_exists(nw) &&
                        disk_inspect(e->cfg->qemu_img, nw, "qcow2", &di, &err) == 0 &&
                        !strcmp(di.backing, cur);
            }
            if (adopt) {
                snprintf(vm->disk, sizeof(vm->disk), "%s", snap->new_disk);
                snprintf(vm->disk_parent, sizeof(vm->disk_parent), "%s", snap->id);
                engine_store_update(e, vm);
                snprintf(snap->state, sizeof(snap->state), "ready");
                snap->new_disk[0] = 0;
                store_snapshot_update(e->store, snap);
                engine_event(e, "vm", vm->name, "snapshot", "ok", "%s (finished after restart)",
                             snap->name);
            } else {
                unlink(nw);
                store_snapshot_delete(e->store, snap->id);
                snap->id[0] = 0;
                engine_event(e, "vm", vm->name, "snapshot", "error",
                             "%s: rolled back: yund stopped before it finished", snap->name);
            }
        } else if (!strcmp(snap->state, "deleting")) {
            /* a merge to finish: offline, or ask QEMU whether its job still
             * runs (its completion event can be lost while yund restarts:
             * then the stream is found done, or is started again) */
            if (merge_continue(e, vm, snap, &err) < 0)
                merge_failed(e, vm, snap, err.message);
        }
    }
    if (touched) {
        free(s);
        if (list_snaps(e, vm, &s, &n, &err) < 0)
            return;
    }
    if (settled)
        sweep_layers(e, vm, s, n);
    free(s);
}
