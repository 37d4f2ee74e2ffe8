/*
 * migrate_cold.c - the cold move of a stopped (or crashed) VM
 * (docs/cluster.md, "Cold move"): no QEMU runs on either side, so there is
 * no memory to send and no mirror; the files are copied byte for byte,
 * agent to agent (file.recv on the target, file.send on the source,
 * agent/agent_xfer.c, each copy's SHA-256 compared by the sender), then the
 * VM's row, its volumes' rows and the migrations row change in one
 * transaction, then the source's files go. The same row, task, cancel and
 * settle as a live move (migrate.c, migrate_settle.c): before the commit
 * the source owns the VM and a rollback removes what the target got, from
 * it on the target owns it.
 *
 * Steps after the target's vm.prepare (migrate_run.c: its directory, an
 * empty overlay on the same image, the seed ISO as the source's): the
 * disk's overlay (not on a shared pool) received over the empty one and
 * its backing file named as the target's image (disk.rebase, unsafe: the
 * header only, the data is the source's); each attached volume (by id)
 * received exclusive into the target's pool and counted in the row
 * ("made"); the commit.
 */
#include "ctl/migrate_int.h"

#include "agent/agent_wire.h"
#include "ctl/hosts.h"
#include "ctl/images_fetch.h"
#include "lib/log.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool mig_row_cold(const struct migration_rec *r)
{
    json_t *o = json_loads(r->options, 0, NULL);
    bool cold = json_is_true(json_object_get(o, "cold"));
    json_decref(o);
    return cold;
}

/* ---- the commit ---- */

static void cold_commit(struct mig *m)
{
    json_t *o = json_pack("{s:b,s:I,s:I}", "cold", 1, "disk_bytes", (json_int_t)m->cold_bytes,
                          "yun_ms", (json_int_t)(monotonic_ms() - m->t0));
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    mig_commit(m, false, t ? t : "");
    free(t);
}

/* ---- one file, source -> target ---- */

static void copy_next(struct mig *m);
static void copy_next_step(struct mig *m, json_t *res, const struct yerr *err);

static void sent(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    m->cold_bytes += (uint64_t)json_integer_value(json_object_get(res, "bytes"));
    json_object_set_new(m->detail, "disk",
                        json_pack("{s:I,s:i,s:i}", "copied", (json_int_t)m->cold_bytes, "files",
                                  m->di + 1, "of", m->ndisks));
    mig_detail(m, true);
    struct mig_disk *d = &m->disks[m->di];
    if (!d->full) {
        /* the overlay's header names the source's image: the target's */
        struct image_rec img;
        struct yerr e;
        if (store_image_get(m->c->store, m->vm.image, &img) != 0) {
            yerr_set(&e, YE_CONFLICT, "image '%s' of vm '%s' is missing", m->vm.image, m->vm.name);
            mig_fail(m, &e);
            return;
        }
        ctl_image_on_host(m->c, m->row.target, &img);
        m->di++;
        mig_call(m, m->row.target, AV_DISK_REBASE,
                 json_pack("{s:s,s:s,s:s,s:s,s:b}", "path", d->to, "format", "qcow2", "backing",
                           img.path, "backing_format", img.format, "unsafe", 1),
                 copy_next_step);
        return;
    }
    m->di++;
    copy_next(m);
}

static void receiving(struct mig *m, json_t *res, const struct yerr *err)
{
    if (mig_bail(m, err))
        return;
    const char *addr = json_string_value(json_object_get(res, "address"));
    const char *token = json_string_value(json_object_get(res, "token"));
    json_int_t port = json_integer_value(json_object_get(res, "port"));
    if (!addr || !token || port < 1 || port > 65535) {
        struct yerr e;
        yerr_set(&e, YE_BAD_GATEWAY, "host %s: file.recv answered no address",
                 ctl_host_label(m->c, m->row.target));
        mig_fail(m, &e);
        return;
    }
    /* a volume's path is ours from here (exclusive: it was not there, and
     * the receiver never replaces a file): counted before a byte moves, so
     * a rollback removes it whether or not the copy ended */
    if (m->disks[m->di].full && mig_save_made(m, m->di - (m->ndisks - (int)m->nvols) + 1) < 0) {
        struct yerr e;
        yerr_db(&e, store_errmsg(m->c->store));
        mig_fail(m, &e);
        return;
    }
    mig_call(m, m->row.source, AV_FILE_SEND,
             json_pack("{s:s,s:s,s:I,s:s}", "path", m->disks[m->di].from, "address", addr, "port",
                       port, "token", token),
             sent);
}

static void copy_next(struct mig *m)
{
    if (mig_bail(m, NULL))
        return;
    if (m->di >= m->ndisks) {
        cold_commit(m);
        return;
    }
    const struct mig_disk *d = &m->disks[m->di];
    /* a volume never over a file that is there; the overlay over the
     * empty one vm.prepare made */
    mig_call(m, m->row.target, AV_FILE_RECV,
             json_pack("{s:s,s:b}", "path", d->to, "exclusive", d->full), receiving);
}

static void copy_next_step(struct mig *m, json_t *res, const struct yerr *err)
{
    (void)res;
    if (mig_bail(m, err))
        return;
    copy_next(m);
}

/* After vm.prepare on the target: the files in m->disks' order. */
void mig_cold_copy(struct mig *m)
{
    struct ctl *c = m->c;
    struct yerr e = {0};
    /* the VM's own disk (not on a shared pool) is disks[0]: its paths on
     * both hosts, from where their agents keep VM directories */
    if (!m->shared) {
        struct vm_rec at = m->vm;
        struct ctl_vm_paths src, dst;
        ctl_vm_paths(c, &at, &src);
        snprintf(at.host, sizeof at.host, "%s", m->row.target);
        ctl_vm_paths(c, &at, &dst);
        if (!src.dir[0] || !dst.dir[0] ||
            snprintf_checked(m->disks[0].from, sizeof m->disks[0].from, "%s/%s", src.dir,
                             m->vm.disk) < 0 ||
            snprintf_checked(m->disks[0].to, sizeof m->disks[0].to, "%s/%s", dst.dir, m->vm.disk) <
                0) {
            yerr_set(&e, YE_UNAVAILABLE, "where vm '%s''s files are on its hosts is not known",
                     m->vm.name);
            mig_fail(m, &e);
            return;
        }
    }
    for (size_t i = 0; i < m->nvols; i++) {
        struct mig_disk *d = &m->disks[m->ndisks - (int)m->nvols + (int)i];
        snprintf(d->from, sizeof d->from, "%s", m->vols[i].path);
    }
    m->di = 0;
    copy_next(m);
}
