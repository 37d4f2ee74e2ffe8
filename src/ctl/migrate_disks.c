/*
 * migrate_disks.c - the disks of a live migration (docs/cluster.md, "Live
 * migration"): which ones are copied (the VM's own disk unless it is on a
 * shared pool, and every attached volume), their files on the target (a
 * volume's is made empty in the target's pool, with O_EXCL semantics, its
 * count kept in the row so a rollback removes only what the move made),
 * the source's PCI layout for the target's launch, and the copy itself:
 * NBD exports on the target, NBD client nodes and blockdev-mirror jobs on
 * the source (the disk's sync "top": the target's overlay has the same
 * backing image; a volume's sync "full" onto an empty file), polled until
 * every job is ready. The commit moves the volumes' rows with the VM's
 * (mig_volumes_commit), and the settle removes the files of the side that
 * lost (mig_volumes_remove).
 */
#include "ctl/migrate_int.h"

#include "agent/agent_wire.h"
#include "ctl/hosts.h"
#include "ctl/volumes.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct volume_rec *)a)->id, ((const struct volume_rec *)b)->id);
}

/* The VM's attached volumes, by id (the order every step and every settle
 * uses). */
static int volumes_of(struct ctl *c, const char *vm_id, struct volume_rec **vs, size_t *n)
{
    if (store_volume_list_attached(c->store, vm_id, vs, n) != 0)
        return -1;
    if (*n > 1)
        qsort(*vs, *n, sizeof **vs, by_id);
    return 0;
}

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* The file of volume v in host's pool (its own state directory's). */
static int path_on(struct ctl *c, const char *host, const struct volume_rec *v, char *buf,
                   size_t len, struct yerr *err)
{
    char dir[512];
    if (ctl_host_pool_dir(c, host, dir, sizeof dir, err) < 0)
        return -1;
    if (snprintf_checked(buf, len, "%s/%s", dir, base_name(v->path)) < 0)
        return yerr_set(err, YE_CONFLICT, "volume '%s': its path on host %s is too long", v->name,
                        ctl_host_label(c, host));
    return 0;
}

int mig_volumes_check(struct ctl *c, const struct vm_rec *vm, struct yerr *err)
{
    struct volume_rec *vs;
    size_t n;
    if (volumes_of(c, vm->id, &vs, &n) < 0)
        return yerr_db(err, store_errmsg(c->store));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct volume_rec *v = &vs[i];
        char here[512];
        if (v->state != VOL_ATTACHED)
            rc = yerr_set(err, YE_CONFLICT,
                          "volume '%s' of vm '%s' is %s: try again when it has "
                          "settled",
                          v->name, vm->name, vol_state_name(v->state));
        else if (v->backing[0])
            rc = yerr_set(err, YE_CONFLICT,
                          "volume '%s' of vm '%s' is a linked clone of '%s', which stays on this "
                          "host: make a full clone (yun volume clone --full) or detach it",
                          v->name, vm->name, v->backing);
        else if (strcmp(v->format, "qcow2") && strcmp(v->format, "raw"))
            rc = yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v->name, v->format);
        else if (ctl_volume_refuse_backing(c, v, "they stay on this host", err) < 0)
            rc = -1;
        else if (path_on(c, vm->host, v, here, sizeof here, err) < 0)
            rc = -1;
        else if (strcmp(here, v->path))
            rc = yerr_set(err, YE_CONFLICT,
                          "volume '%s' is not in its host's pool (%s): it cannot move", v->name,
                          v->path);
    }
    free(vs);
    return rc;
}

int mig_disks_plan(struct mig *m, struct yerr *err)
{
    struct ctl *c = m->c;
    free(m->vols);
    m->vols = NULL;
    m->nvols = 0;
    m->ndisks = 0;
    if (volumes_of(c, m->vm.id, &m->vols, &m->nvols) < 0)
        return yerr_db(err, store_errmsg(c->store));
    if (m->nvols > LAUNCH_VOLS_MAX)
        return yerr_set(err, YE_CONFLICT, "vm '%s' has more than %d volumes", m->vm.name,
                        LAUNCH_VOLS_MAX);
    if (!m->shared) {
        struct mig_disk *d = &m->disks[m->ndisks++];
        snprintf(d->job, sizeof d->job, MIG_JOB);
        snprintf(d->node, sizeof d->node, MIG_NBD_NODE);
        snprintf(d->export, sizeof d->export, MIG_EXPORT);
        snprintf(d->src, sizeof d->src, "disk0");
        d->full = false; /* the target's overlay has the same backing image */
    }
    for (size_t i = 0; i < m->nvols; i++) {
        struct volume_rec *v = &m->vols[i];
        struct mig_disk *d = &m->disks[m->ndisks++];
        char dev[24], serial[24];
        volume_qemu_ids(v, d->src, dev, serial);
        memcpy(d->tgt, d->src, sizeof d->src); /* the same node name there */
        snprintf(d->job, sizeof d->job, "mig-vol%zu", i);
        snprintf(d->node, sizeof d->node, "mig-nbdv%zu", i);
        snprintf(d->export, sizeof d->export, "vol%zu", i);
        d->full = true;
        if (path_on(c, m->row.target, v, d->to, sizeof d->to, err) < 0)
            return -1;
    }
    return 0;
}

json_t *mig_disks_mirrors(const struct mig *m)
{
    json_t *a = json_array();
    for (int i = 0; a && i < m->ndisks; i++)
        json_array_append_new(
            a, json_pack("{s:s,s:s}", "job", m->disks[i].job, "node", m->disks[i].node));
    return a;
}

/* ---- the ports JSON's count of the volume files made on the target ---- */

static int made_count(const struct migration_rec *r)
{
    json_t *p = json_loads(r->ports, 0, NULL);
    int n = (int)json_integer_value(json_object_get(p, "made"));
    json_decref(p);
    return n < 0 ? 0 : n;
}

int mig_save_made(struct mig *m, int n)
{
    json_t *p = json_loads(m->row.ports, 0, NULL);
    if (!p)
        p = json_object();
    json_object_set_new(p, "made", json_integer(n));
    char *t = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!t || strlen(t) >= sizeof m->row.ports) {
        free(t);
        return -1;
    }
    snprintf(m->row.ports, sizeof m->row.ports, "%s", t);
    free(t);
    return mig_save(m, NULL);
}

/* ---- the volume files on the target ---- */

static void make_next(struct mig *m, json_t *res, const struct yerr *err);

static void made_one(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (err) {
        m->disks_then(m, NULL, err);
        return;
    }
    /* counted before the next: a rollback removes exactly these */
    if (mig_save_made(m, m->di + 1) < 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(m->c->store));
        m->disks_then(m, NULL, &e);
        return;
    }
    m->di++;
    make_next(m, NULL, NULL);
}

static void make_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    (void)err;
    if ((size_t)m->di >= m->nvols) {
        FAILPOINT("migrate.after_volumes_made");
        m->disks_then(m, NULL, NULL);
        return;
    }
    const struct volume_rec *v = &m->vols[m->di];
    const char *to = m->disks[m->ndisks - (int)m->nvols + m->di].to;
    mig_call(m, m->row.target, AV_DISK_CREATE,
             json_pack("{s:s,s:s,s:I,s:b}", "path", to, "format", v->format, "size",
                       (json_int_t)v->virtual_size, "exclusive", 1),
             made_one);
}

void mig_volumes_make(struct mig *m, mig_step then)
{
    m->disks_then = then;
    m->di = 0;
    make_next(m, NULL, NULL);
}

/* ---- the source's PCI layout ---- */

static void pci_read(struct mig *m, json_t *res, const struct yerr *err)
{
    if (err) {
        m->disks_then(m, NULL, err);
        return;
    }
    json_t *pins = json_object();
    struct yerr e = {0};
    size_t i, k;
    json_t *bus, *dev;
    json_array_foreach(res, i, bus)
    {
        json_array_foreach(json_object_get(bus, "devices"), k, dev)
        {
            const char *id = json_string_value(json_object_get(dev, "qdev_id"));
            if (!id || !id[0])
                continue; /* the machine's own (host bridge, ISA, IDE, VGA...) */
            if (json_integer_value(json_object_get(bus, "bus")) != 0 ||
                json_object_get(dev, "pci_bridge"))
                yerr_set(&e, YE_CONFLICT, "the source's device %s is behind a PCI bridge", id);
            json_object_set_new(pins, id,
                                json_pack("[I,I]", json_integer_value(json_object_get(dev, "slot")),
                                          json_integer_value(json_object_get(dev, "function"))));
        }
    }
    if (!e.code && json_object_size(pins) > PCI_PINS_MAX)
        yerr_set(&e, YE_CONFLICT, "the source has more than %d PCI devices", PCI_PINS_MAX);
    if (e.code) {
        json_decref(pins);
        m->disks_then(m, NULL, &e);
        return;
    }
    json_decref(m->pci);
    m->pci = pins;
    m->disks_then(m, NULL, NULL);
}

void mig_pci_read(struct mig *m, mig_step then)
{
    m->disks_then = then;
    mig_qmp(m, m->row.source, "query-pci", NULL, pci_read);
}

/* ---- exports, clients, mirrors ---- */

static bool failed(struct mig *m, const struct yerr *err)
{
    if (!err && !m->cancel)
        return false;
    m->disks_then(m, NULL, err); /* migrate_run.c's step rolls it back */
    return true;
}

static void mirror_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (failed(m, err))
        return;
    if (m->di >= m->ndisks) {
        m->disks_then(m, NULL, NULL);
        return;
    }
    const struct mig_disk *d = &m->disks[m->di++];
    json_t *a = json_pack("{s:s,s:s,s:s,s:s,s:s}", "job-id", d->job, "device", d->src, "target",
                          d->node, "sync", d->full ? "full" : "top", "copy-mode", "write-blocking");
    if (a && m->o.max_bandwidth)
        json_object_set_new(a, "speed", json_integer((json_int_t)m->o.max_bandwidth));
    mig_qmp(m, m->row.source, "blockdev-mirror", a, mirror_next);
}

static void client_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (failed(m, err))
        return;
    if (m->di >= m->ndisks) {
        m->di = 0;
        m->mirror_t0 = monotonic_ms();
        mirror_next(m, NULL, NULL);
        return;
    }
    const struct mig_disk *d = &m->disks[m->di++];
    char port[16];
    snprintf(port, sizeof port, "%d", m->nbd_port);
    mig_qmp(m, m->row.source, "blockdev-add",
            json_pack("{s:s,s:s,s:{s:s,s:s,s:s},s:s}", "driver", "nbd", "node-name", d->node,
                      "server", "type", "inet", "host", m->addr, "port", port, "export", d->export),
            client_next);
}

static void export_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (failed(m, err))
        return;
    if (m->di >= m->ndisks) {
        m->di = 0;
        client_next(m, NULL, NULL);
        return;
    }
    const struct mig_disk *d = &m->disks[m->di++];
    mig_qmp(m, m->row.target, "block-export-add",
            json_pack("{s:s,s:s,s:s,s:b,s:s}", "type", "nbd", "id", d->export, "node-name", d->tgt,
                      "writable", 1, "name", d->export),
            export_next);
}

static void nbd_started(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (failed(m, err))
        return;
    m->di = 0;
    export_next(m, NULL, NULL);
}

static void start_server(struct mig *m)
{
    char port[16];
    snprintf(port, sizeof port, "%d", m->nbd_port);
    mig_qmp(m, m->row.target, "nbd-server-start",
            json_pack("{s:{s:s,s:{s:s,s:s}}}", "addr", "type", "inet", "data", "host", m->addr,
                      "port", port),
            nbd_started);
}

static void blocks(struct mig *m, json_t *res, const struct yerr *err)
{
    if (failed(m, err))
        return;
    size_t i;
    json_t *j;
    struct mig_disk *d = &m->disks[0];
    d->tgt[0] = 0;
    json_array_foreach(res, i, j)
    {
        if (strcmp(json_string_value(json_object_get(j, "device")) ?: "", "disk0"))
            continue;
        const char *n =
            json_string_value(json_object_get(json_object_get(j, "inserted"), "node-name"));
        snprintf(d->tgt, sizeof d->tgt, "%s", n ? n : "");
    }
    if (!d->tgt[0]) {
        struct yerr e;
        yerr_set(&e, YE_QEMU_ERROR, "the target's qemu has no disk0");
        m->disks_then(m, NULL, &e);
        return;
    }
    start_server(m);
}

void mig_disks_copy(struct mig *m, mig_step then)
{
    m->disks_then = then;
    if (!m->shared) /* the disk's node is QEMU's own name: asked */
        mig_qmp(m, m->row.target, "query-block", NULL, blocks);
    else
        start_server(m);
}

int mig_disks_poll(struct mig *m, json_t *jobs, bool *ready, struct yerr *err)
{
    json_int_t off = 0, len = 0;
    bool all = true;
    for (int k = 0; k < m->ndisks; k++) {
        size_t i;
        json_t *j, *job = NULL;
        json_array_foreach(jobs, i,
                           j) if (!strcmp(json_string_value(json_object_get(j, "device")) ?: "",
                                          m->disks[k].job)) job = j;
        if (!job)
            return yerr_set(err, YE_QEMU_ERROR,
                            "the disk mirror %s to host %s ended before it was ready",
                            m->disks[k].job, ctl_host_label(m->c, m->row.target));
        off += json_integer_value(json_object_get(job, "offset"));
        len += json_integer_value(json_object_get(job, "len"));
        all &= json_is_true(json_object_get(job, "ready"));
    }
    json_object_set_new(m->detail, "disk",
                        json_pack("{s:I,s:I,s:b,s:i}", "offset", off, "len", len, "ready", all,
                                  "mirrors", m->ndisks));
    json_object_set_new(m->detail, "disk_len", json_integer(len));
    *ready = all;
    return 0;
}

/* ---- the one-call-per-step switchover (an agent without vm.switchover) ---- */

static void del_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (failed(m, err))
        return;
    if (m->di >= m->ndisks) {
        m->disks_then(m, NULL, NULL);
        return;
    }
    mig_qmp(m, m->row.source, "blockdev-del",
            json_pack("{s:s}", "node-name", m->disks[m->di++].node), del_next);
}

static void jobs_gone(struct mig *m, json_t *res, const struct yerr *err);
static void ask_jobs(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (failed(m, err))
        return;
    mig_qmp(m, m->row.source, "query-block-jobs", NULL, jobs_gone);
}

static void jobs_gone(struct mig *m, json_t *res, const struct yerr *err)
{
    if (failed(m, err))
        return;
    size_t i;
    json_t *j;
    json_array_foreach(res, i, j)
    {
        const char *dev = json_string_value(json_object_get(j, "device")) ?: "";
        for (int k = 0; k < m->ndisks; k++)
            if (!strcmp(dev, m->disks[k].job)) {
                mig_later(m, 5, ask_jobs);
                return;
            }
    }
    m->di = 0;
    del_next(m, NULL, NULL);
}

static void cancel_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (failed(m, err))
        return;
    if (m->di >= m->ndisks) {
        ask_jobs(m, NULL, NULL);
        return;
    }
    mig_qmp(m, m->row.source, "block-job-cancel",
            json_pack("{s:s}", "device", m->disks[m->di++].job), cancel_next);
}

void mig_disks_end(struct mig *m, mig_step then)
{
    m->disks_then = then;
    m->di = 0;
    cancel_next(m, NULL, NULL);
}

/* ---- the commit, and the files of the side that lost ---- */

int mig_volumes_commit(struct mig *m)
{
    for (size_t i = 0; i < m->nvols; i++) {
        struct volume_rec v = m->vols[i];
        snprintf(v.host, sizeof v.host, "%s", m->row.target);
        snprintf(v.path, sizeof v.path, "%s", m->disks[m->ndisks - (int)m->nvols + (int)i].to);
        if (store_volume_update(m->c->store, &v) != 0)
            return -1;
    }
    return 0;
}

static void rm_next(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (err && err->code != YE_NOT_FOUND) {
        m->disks_then(m, NULL, err);
        return;
    }
    if (!json_is_array(m->rm) || (size_t)m->di >= json_array_size(m->rm)) {
        json_decref(m->rm);
        m->rm = NULL;
        m->disks_then(m, NULL, NULL);
        return;
    }
    json_t *p = json_array_get(m->rm, (size_t)m->di++);
    mig_call(m, json_string_value(json_object_get(p, "host")), AV_DISK_REMOVE,
             json_pack("{s:O}", "path", json_object_get(p, "path")), rm_next);
}

void mig_volumes_remove(struct mig *m, bool target_side, mig_step then)
{
    struct ctl *c = m->c;
    struct volume_rec *vs;
    size_t n;
    m->disks_then = then;
    m->di = 0;
    json_decref(m->rm);
    m->rm = json_array();
    if (volumes_of(c, m->row.vm_id, &vs, &n) < 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(c->store));
        then(m, NULL, &e);
        return;
    }
    /* rolled back: the rows still name the source, the target's files are
     * the first `made` (by id); rolled forward: the rows name the target,
     * the source's files are every one of them */
    const char *host = target_side ? m->row.target : m->row.source;
    const char *owner = target_side ? m->row.source : m->row.target;
    size_t made = target_side ? (size_t)made_count(&m->row) : n;
    for (size_t i = 0, k = 0; i < n && k < made; i++) {
        if (!ctl_host_same(c, vs[i].host, owner))
            continue;
        k++;
        char p[512];
        struct yerr e = {0};
        if (path_on(c, host, &vs[i], p, sizeof p, &e) < 0) {
            log_warn("migration of vm %s: volume %s: %s", m->row.vm_name, vs[i].name, e.message);
            continue;
        }
        json_array_append_new(m->rm, json_pack("{s:s,s:s}", "host", host, "path", p));
    }
    free(vs);
    rm_next(m, NULL, NULL);
}
