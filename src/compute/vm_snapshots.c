/*
 * vm_snapshots.c - disk snapshots of a VM as external qcow2 overlays: the
 * host side of reverting, the reconcile pass over snapshot rows, and what
 * the other halves share (taking one: ctl/snapshots_create.c over the
 * agent's verbs; deleting one: vm_snapshot_merge.c).
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
 * a running QEMU has open) and then removes its file: vm_snapshot_merge.c.
 *
 * Rows move by the events of ctl/snapstate.c; the controller
 * (ctl/snapshots.c) holds a task on the VM around each operation through
 * struct snap_hooks. Every step is a FAILPOINT: snapshot_create.* and
 * snapshot_revert.* here (what a crash at each leaves is in
 * docs/architecture.md, "Snapshots").
 */
#include "compute/confine.h"
#include "compute/qemu_argv.h"
#include "compute/vm_disks.h"
#include "compute/vm_snapshots_int.h"
#include "ctl/snapstate.h"
#include "lib/failpoint.h"
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

int snaps_list(struct engine *e, const struct vm_rec *vm, struct snapshot_rec **out, size_t *n,
               struct yerr *err)
{
    if (store_snapshot_list(e->store, vm->id, out, n) != 0)
        return yerr_db(err, store_errmsg(e->store));
    return 0;
}

struct snapshot_rec *snaps_by_id(struct snapshot_rec *s, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s[i].id, id))
            return &s[i];
    return NULL;
}

int snaps_apply(struct engine *e, struct snapshot_rec *snap, int ev)
{
    enum snap_state to;
    enum snap_step step = snap_transition(snap->state, (enum snap_event)ev, &to);
    if (step == SNAP_STEP_REFUSED) {
        log_err("snapshot %s: %s refused in state %s", snap->name,
                snap_event_name((enum snap_event)ev), snap_state_name(snap->state));
        return -1;
    }
    if (step == SNAP_STEP_GONE)
        return store_snapshot_delete(e->store, snap->id) == 0 ? 0 : -1;
    snap->state = to;
    if (to != SNAP_CREATING)
        snap->new_disk[0] = 0;
    return store_snapshot_update(e->store, snap) == 0 ? 0 : -1;
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
    if (snaps_list(e, vm, &s, &n, err) < 0)
        return -1;
    int rc = find_in(vm, s, n, name, out, err);
    free(s);
    return rc;
}

/* The file a snapshot's file (or the active layer) sits on: its path, and
 * in name (when given) what a layer's header calls it. */
int snaps_base_of(struct engine *e, const struct vm_rec *vm, struct snapshot_rec *s, size_t n,
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
    struct snapshot_rec *p = snaps_by_id(s, n, parent);
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
void snaps_node_path(struct engine *e, const struct vm_rec *vm, const char *name, char *out,
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
            snaps_node_path(e, vm, f, out, len);
    }
    json_decref(blocks);
}

/* ---- hooks ---- */

#define MAX_HELD 64
static char held[MAX_HELD][37];

void engine_snapshot_hold(const char *snap_id, bool on)
{
    for (int i = 0; i < MAX_HELD; i++)
        if (on ? !held[i][0] : !strcmp(held[i], snap_id)) {
            snprintf(held[i], sizeof held[i], "%s", on ? snap_id : "");
            return;
        }
    if (on)
        log_warn("snapshot %s: too many operations at once to hold it", snap_id);
}

static bool is_held(const char *snap_id)
{
    for (int i = 0; i < MAX_HELD; i++)
        if (!strcmp(held[i], snap_id))
            return true;
    return false;
}

void vm_snapshots_on_event(struct engine *e, const struct vm_rec *vm, const char *event,
                           json_t *data)
{
    snap_merge_on_event(e, vm, event, data);
}

void vm_snapshots_settle(struct engine *e, const char *vm_id)
{
    struct vm_rec vm;
    if (store_vm_get(e->store, vm_id, &vm) == 0)
        vm_snapshots_reconcile(e, &vm);
}

void vm_snapshots_forget(struct engine *e, const struct vm_rec *vm)
{
    struct snapshot_rec *s;
    size_t n;
    struct yerr err;
    snap_merge_forget_vm(vm->id);
    if (snaps_list(e, vm, &s, &n, &err) < 0)
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
        bool used = !strcmp(f, vm->disk) || is_held(f);
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
    if (snaps_list(e, vm, &s, &n, &err) < 0)
        return;
    bool live = vm_state_live(vm->state), settled = live || vm_state_down(vm->state);
    bool touched = false; /* rows changed: list them again before the sweep */
    for (size_t i = 0; i < n && settled; i++) {
        struct snapshot_rec *snap = &s[i];
        if (is_held(snap->id))
            continue; /* the controller is working on it */
        touched |= !snap_state_settled(snap->state);
        if (snap->state == SNAP_CREATING) {
            /* did the switch to the new layer happen before the crash? */
            char nw[512], active[512] = "";
            engine_vm_path(e, vm, snap->new_disk, nw, sizeof(nw));
            if (live)
                qemu_active_file(e, vm, active, sizeof(active));
            if (live && !active[0])
                continue; /* QEMU did not answer: next pass */
            if (!live && snap_merge_rebasing(vm->id))
                continue; /* its rebase locks a layer the check reads: next pass */
            /* With the VM down, a new layer that is a sound overlay of the
             * snapshot's file is adopted: if QEMU switched to it before
             * exiting it holds the guest's later writes, and if nothing
             * wrote to it, it equals the snapshot. */
            bool adopt = !strcmp(vm->disk, snap->new_disk) || !strcmp(active, nw);
            if (!adopt && !live) {
                struct disk_info di;
                char cur[512];
                engine_vm_path(e, vm, snap->file, cur, sizeof(cur));
                bool have = path_exists(nw);
                int rc = have ? disk_inspect(e->cfg->qemu_img, nw, "qcow2", &di, &err) : -1;
                if (rc < 0 && have && strstr(err.message, "lock"))
                    continue; /* another process holds a layer: not a verdict */
                adopt = rc == 0 && !strcmp(di.backing, cur);
            }
            if (adopt) {
                snprintf(vm->disk, sizeof(vm->disk), "%s", snap->new_disk);
                snprintf(vm->disk_parent, sizeof(vm->disk_parent), "%s", snap->id);
                engine_store_update(e, vm);
                snaps_apply(e, snap, SNAP_EV_SWITCHED);
                engine_event(e, "vm", vm->name, "snapshot", "ok", "%s (finished after restart)",
                             snap->name);
            } else {
                unlink(nw);
                snaps_apply(e, snap, SNAP_EV_ROLLED_BACK);
                snap->id[0] = 0;
                engine_event(e, "vm", vm->name, "snapshot", "error",
                             "%s: rolled back: yund stopped before it finished", snap->name);
            }
        }
    }
    /* Merges after every create is settled: a merge's qemu-img rebase holds
     * a write lock on a layer the adoption check above reads through. */
    for (size_t i = 0; i < n && settled; i++) {
        struct snapshot_rec *snap = &s[i];
        if (snap->id[0] && snap->state == SNAP_DELETING && !is_held(snap->id))
            /* a merge to finish (unless this yund runs it): offline, or ask
             * QEMU whether its job still runs (its completion event can be
             * lost while yund restarts: then the stream is found done, or
             * is started again) */
            snap_merge_resume(e, vm, snap);
    }
    if (touched) {
        free(s);
        if (snaps_list(e, vm, &s, &n, &err) < 0)
            return;
    }
    if (settled)
        sweep_layers(e, vm, s, n);
    free(s);
}
