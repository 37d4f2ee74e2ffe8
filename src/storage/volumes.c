/*
 * volumes.c - volumes in the default directory pool, driven by qemu-img.
 */
#include "storage/volumes.h"
#include "compute/vm_disks.h"
#include "storage/exchange.h"
#include "storage/inspect.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define POOL       "default"
#define MAX_VOLUME (16ULL << 40)

static void pool_dir(struct engine *e, char *buf, size_t len)
{
    snprintf(buf, len, "%s/pools/" POOL, e->cfg->state_dir);
}

int volumes_init(struct engine *e, char *err, size_t errlen)
{
    char dir[512];
    pool_dir(e, dir, sizeof(dir));
    if (mkdir_p(dir, 0700) < 0) {
        snprintf(err, errlen, "cannot create pool %s: %s", dir, strerror(errno));
        return -1;
    }
    /* the default import and export directory; ones the operator names
     * are the operator's to make */
    char exch[512];
    snprintf(exch, sizeof(exch), "%s/exchange", e->cfg->state_dir);
    const char *lists[] = {e->cfg->import_dirs, e->cfg->export_dirs};
    for (int i = 0; i < 2; i++) {
        char d[PATH_MAX];
        const char *cur = lists[i];
        while (config_dirs_next(&cur, d, sizeof(d))) {
            const char *rest = path_beneath(exch, d);
            if (rest && !*rest && mkdir_p(exch, 0700) < 0) {
                snprintf(err, errlen, "cannot create %s: %s", exch, strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

uint64_t volume_actual_size(const struct volume_rec *v)
{
    return file_size_on_disk(v->path);
}

int engine_pool_info(struct engine *e, struct pool_info *p)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), POOL);
    pool_dir(e, p->path, sizeof(p->path));
    struct statvfs sv;
    if (statvfs(p->path, &sv) == 0) {
        p->capacity = (uint64_t)sv.f_blocks * sv.f_frsize;
        p->available = (uint64_t)sv.f_bavail * sv.f_frsize;
    }
    struct volume_rec *vs;
    size_t n;
    if (store_volume_list(e->store, &vs, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        p->allocation += volume_actual_size(&vs[i]);
        p->virtual_total += vs[i].virtual_size;
    }
    p->volumes = (int)n;
    free(vs);
    return 0;
}

/* qemu-img with args; keep_fd >= 0 is inherited (for a /dev/fd/N argument). */
static int qemu_img_run(struct engine *e, char *const *args, int keep_fd, int timeout_ms, char *err,
                        size_t len)
{
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)e->cfg->qemu_img;
    for (; *args && n < 23; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    struct proc_result r;
    int st = keep_fd < 0 ? proc_run(argv, timeout_ms, &r)
                         : proc_run_ex(argv, timeout_ms, &r, exchange_inherit_fd, &keep_fd);
    char line[300];
    proc_last_line(r.err, line, sizeof(line));
    proc_result_free(&r);
    if (st != 0) {
        snprintf(err, len, "qemu-img %s failed: %s", argv[1] ? argv[1] : "", line[0] ? line : "?");
        return -1;
    }
    return 0;
}

int engine_qemu_img(struct engine *e, char *const *args, int timeout_ms, char *err, size_t len)
{
    return qemu_img_run(e, args, -1, timeout_ms, err, len);
}

int engine_volume_get(struct engine *e, const char *name, struct volume_rec *v, struct yerr *err)
{
    int rc = store_volume_get(e->store, name, v);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "volume '%s' does not exist", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(e->store));
    return 0;
}

int engine_volume_refuse_backing(struct engine *e, const struct volume_rec *v,
                                 const char *consequence, struct yerr *err)
{
    int deps = 0;
    if (store_volume_dependents(e->store, v->name, &deps) != 0)
        return yerr_db(err, store_errmsg(e->store));
    if (deps > 0)
        return yerr_set(err, YE_CONFLICT, "volume '%s' backs %d linked clone%s: %s", v->name, deps,
                        deps == 1 ? "" : "s", consequence);
    return 0;
}

/* Writes the intent row for a new volume; the file does not exist yet. */
static int begin_volume(struct engine *e, const char *name, const char *format, uint64_t size,
                        struct volume_rec *v, struct yerr *err)
{
    char why[256], dir[512];
    if (!name_valid(name, why, sizeof(why)))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    if (strcmp(format, "qcow2") && strcmp(format, "raw"))
        return yerr_set(err, YE_INVALID_ARGUMENT, "format must be qcow2 or raw, not '%s'", format);
    if (size < (1 << 20) || size > MAX_VOLUME || size % 512)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "size must be 1M..16T and a whole number of 512-byte sectors");
    memset(v, 0, sizeof(*v));
    uuid_generate_str(v->id);
    snprintf(v->name, sizeof(v->name), "%s", name);
    snprintf(v->pool, sizeof(v->pool), POOL);
    snprintf(v->format, sizeof(v->format), "%s", format);
    pool_dir(e, dir, sizeof(dir));
    snprintf(v->path, sizeof(v->path), "%s/%s.%s", dir, name, format);
    v->virtual_size = size;
    snprintf(v->state, sizeof(v->state), "creating");
    v->created_at = now_ms();
    int rc = store_volume_insert(e->store, v);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "volume '%s' already exists", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(e->store));
    return 0;
}

static int finish_volume(struct engine *e, struct volume_rec *v, const char *action,
                         struct yerr *err, bool ok)
{
    if (!ok) {
        unlink(v->path);
        store_volume_delete(e->store, v->id);
        engine_event(e, "volume", v->name, action, "error", "%s", err->message);
        return -1;
    }
    snprintf(v->state, sizeof(v->state), "ready");
    if (store_volume_update(e->store, v) != 0) {
        yerr_db(err, store_errmsg(e->store));
        return finish_volume(e, v, action, err, false);
    }
    engine_event(e, "volume", v->name, action, "ok", "%s, %llu bytes", v->format,
                 (unsigned long long)v->virtual_size);
    return 0;
}

int engine_volume_create(struct engine *e, const char *name, uint64_t size, const char *format,
                         struct volume_rec *out, struct yerr *err)
{
    struct volume_rec v;
    if (begin_volume(e, name, format ? format : "qcow2", size, &v, err) < 0)
        return -1;
    char sz[32], why[400];
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
    char *args[] = {"create", "-q", "-f", v.format, v.path, sz, NULL};
    bool ok = engine_qemu_img(e, args, 60000, why, sizeof(why)) == 0;
    if (!ok)
        yerr_disk(err, "%s", why);
    if (finish_volume(e, &v, "create", err, ok) < 0)
        return -1;
    *out = v;
    return 0;
}

int engine_volume_clone(struct engine *e, const char *src, const char *dst, bool full,
                        struct volume_rec *out, struct yerr *err)
{
    struct volume_rec s, v;
    if (engine_volume_get(e, src, &s, err) < 0)
        return -1;
    struct vm_rec vm;
    if (!full && s.attached_to[0])
        return yerr_set(err, YE_CONFLICT,
                        "volume '%s' is attached to a vm that writes to it: a linked clone needs "
                        "a source that never changes (detach it, or make a full clone of a "
                        "stopped vm's volume)",
                        s.name);
    if (vm_volume_in_use(e, &s, &vm))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is in use by running vm '%s'", s.name,
                        vm.name);
    if (strcmp(s.state, "ready") && strcmp(s.state, "attached"))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", s.name, s.state);
    /* a linked clone is always qcow2 (the overlay format); a full copy keeps the format */
    if (begin_volume(e, dst, full ? s.format : "qcow2", s.virtual_size, &v, err) < 0)
        return -1;
    char why[400];
    bool ok;
    if (full) {
        char *args[] = {"convert", "-q", "-f", s.format, "-O", v.format, s.path, v.path, NULL};
        ok = engine_qemu_img(e, args, 3600000, why, sizeof(why)) == 0;
    } else {
        /* a new qcow2 whose backing file is the source: O(1) in the source's size */
        char *args[] = {"create", "-q", "-f", "qcow2", "-F", s.format, "-b", s.path, v.path, NULL};
        ok = engine_qemu_img(e, args, 60000, why, sizeof(why)) == 0;
        snprintf(v.backing, sizeof(v.backing), "%s", s.name);
    }
    if (!ok)
        yerr_disk(err, "%s", why);
    if (finish_volume(e, &v, full ? "clone-full" : "clone-linked", err, ok) < 0)
        return -1;
    *out = v;
    return 0;
}

int engine_volume_resize(struct engine *e, const char *name, uint64_t size, struct volume_rec *out,
                         struct yerr *err)
{
    struct volume_rec v;
    if (engine_volume_get(e, name, &v, err) < 0)
        return -1;
    if (size <= v.virtual_size)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "volumes only grow: %llu bytes is not more than the current %llu",
                        (unsigned long long)size, (unsigned long long)v.virtual_size);
    if (size > MAX_VOLUME || size % 512)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "size must be at most 16T and a whole number of 512-byte sectors");
    if (strcmp(v.state, "ready") && strcmp(v.state, "attached"))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v.name, v.state);
    struct vm_rec vm;
    bool live = vm_volume_in_use(e, &v, &vm);
    char sz[32], why[400];
    snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
    char *args[] = {"resize", "-q", "-f", v.format, v.path, sz, NULL};
    /* online, QEMU grows the file and tells the guest (virtio config change) */
    if (live ? vm_volume_resize_live(e, &vm, &v, size, err) < 0
             : engine_qemu_img(e, args, 60000, why, sizeof(why)) < 0) {
        if (!live)
            yerr_disk(err, "%s", why);
        engine_event(e, "volume", v.name, "resize", "error", "%s", err->message);
        return -1;
    }
    v.virtual_size = size;
    if (store_volume_update(e->store, &v) != 0)
        return yerr_db(err, store_errmsg(e->store));
    engine_event(e, "volume", v.name, "resize", "ok", "%llu bytes%s", (unsigned long long)size,
                 live ? " (online)" : "");
    *out = v;
    return 0;
}

int engine_volume_compact(struct engine *e, const char *name, uint64_t *before, uint64_t *after,
                          struct yerr *err)
{
    struct volume_rec v;
    if (engine_volume_get(e, name, &v, err) < 0)
        return -1;
    if (v.attached_to[0])
        return yerr_set(err, YE_CONFLICT, "volume '%s' is attached: detach it first", v.name);
    if (engine_volume_refuse_backing(e, &v, "rewriting it would break them", err) < 0)
        return -1;
    *before = volume_actual_size(&v);
    /* Rewrite into a new file: only clusters holding data are copied, zero
     * clusters are dropped; the original stays until the copy is complete. */
    char tmp[600], why[400];
    snprintf(tmp, sizeof(tmp), "%s.compact", v.path);
    struct volume_rec b;
    bool linked = v.backing[0] && store_volume_get(e->store, v.backing, &b) == 0;
    bool ok;
    if (linked) {
        char *args[] = {"convert", "-q", "-f",     v.format, "-O", "qcow2", "-B",
                        b.path,    "-F", b.format, v.path,   tmp,  NULL};
        ok = engine_qemu_img(e, args, 3600000, why, sizeof(why)) == 0;
    } else {
        char *args[] = {"convert", "-q",     "-S",   "4k", "-f", v.format,
                        "-O",      v.format, v.path, tmp,  NULL};
        ok = engine_qemu_img(e, args, 3600000, why, sizeof(why)) == 0;
    }
    if (!ok || rename(tmp, v.path) < 0) {
        unlink(tmp);
        engine_event(e, "volume", v.name, "compact", "error", "%s", ok ? strerror(errno) : why);
        return yerr_disk(err, "%s", ok ? strerror(errno) : why);
    }
    *after = volume_actual_size(&v);
    engine_event(e, "volume", v.name, "compact", "ok", "%llu -> %llu bytes on disk",
                 (unsigned long long)*before, (unsigned long long)*after);
    return 0;
}

int engine_volume_delete(struct engine *e, const char *name, struct yerr *err)
{
    struct volume_rec v;
    if (engine_volume_get(e, name, &v, err) < 0)
        return -1;
    if (v.attached_to[0])
        return yerr_set(err, YE_CONFLICT, "volume '%s' is attached: detach it first", v.name);
    if (engine_volume_refuse_backing(e, &v, "delete them first", err) < 0)
        return -1;
    snprintf(v.state, sizeof(v.state), "deleting");
    if (store_volume_update(e->store, &v) != 0)
        return yerr_db(err, store_errmsg(e->store));
    if (unlink(v.path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", v.path, strerror(errno));
    store_volume_delete(e->store, v.id);
    engine_event(e, "volume", v.name, "delete", "ok", "%s", "");
    return 0;
}

/* Is `path` (resolved) a file inside the pool directory? Fills real. */
static bool inside_pool(struct engine *e, const char *path, char *real, size_t len)
{
    char dir[512], rdir[PATH_MAX], r[PATH_MAX];
    pool_dir(e, dir, sizeof(dir));
    if (!realpath(dir, rdir) || !realpath(path, r))
        return false;
    size_t l = strlen(rdir);
    snprintf(real, len, "%s", r);
    return !strncmp(r, rdir, l) && r[l] == '/';
}

/* The import proper, from the file yund holds open. */
static int import_from(struct engine *e, const char *name, const char *file,
                       const struct exchange_file *x, const char *format, struct volume_rec *out,
                       struct yerr *err)
{
    struct disk_info di;
    if (disk_inspect_fd(e->cfg->qemu_img, x->fd, file, format, &di, err) < 0)
        return -1;
    struct volume_rec b = {0};
    if (di.backing[0]) {
        /* a linked clone may come in only if what it is linked to is a
         * volume of this pool; anything else could read any file on the
         * host through the guest */
        char real[PATH_MAX] = "";
        if (!inside_pool(e, di.backing, real, sizeof(real)))
            return yerr_set(err, YE_INVALID_IMAGE,
                            "backing file %s is outside pool '" POOL
                            "': import a standalone image (qemu-img convert flattens it)",
                            di.backing);
        struct volume_rec *vs;
        size_t n;
        if (store_volume_list(e->store, &vs, &n) != 0)
            return yerr_db(err, store_errmsg(e->store));
        for (size_t i = 0; i < n && !b.name[0]; i++) {
            char r[PATH_MAX];
            if (realpath(vs[i].path, r) && !strcmp(r, real) && !strcmp(vs[i].state, "ready"))
                b = vs[i];
        }
        free(vs);
        if (!b.name[0])
            return yerr_set(err, YE_INVALID_IMAGE,
                            "backing file %s is not a ready volume of pool '" POOL "'", di.backing);
    }
    struct volume_rec v;
    if (begin_volume(e, name, di.format, di.virtual_size, &v, err) < 0)
        return -1;
    char why[400];
    bool ok;
    if (b.name[0]) {
        char *args[] = {"convert", "-q", "-f",     "qcow2",           "-O",   "qcow2", "-B",
                        b.path,    "-F", b.format, (char *)x->fdpath, v.path, NULL};
        ok = qemu_img_run(e, args, x->fd, 3600000, why, sizeof(why)) == 0;
        snprintf(v.backing, sizeof(v.backing), "%s", b.name);
    } else {
        /* convert, not copy: every cluster is read back (a truncated file
         * fails here) and holes stay holes */
        char *args[] = {"convert",         "-q",   "-f", di.format, "-O", di.format,
                        (char *)x->fdpath, v.path, NULL};
        ok = qemu_img_run(e, args, x->fd, 3600000, why, sizeof(why)) == 0;
    }
    if (!ok)
        yerr_disk(err, "%s", why);
    if (finish_volume(e, &v, "import", err, ok) < 0)
        return -1;
    *out = v;
    return 0;
}

int engine_volume_import(struct engine *e, const char *name, const char *file, const char *format,
                         struct volume_rec *out, struct yerr *err)
{
    struct exchange_file x;
    if (exchange_open_import(e->cfg, file, &x, err) < 0)
        return -1;
    int rc = import_from(e, name, file, &x, format, out, err);
    exchange_close(&x);
    return rc;
}

int engine_volume_export(struct engine *e, const char *name, const char *dest, const char *format,
                         uint64_t *bytes, struct yerr *err)
{
    struct volume_rec v;
    struct vm_rec vm;
    if (engine_volume_get(e, name, &v, err) < 0)
        return -1;
    if (!format || !format[0])
        format = v.format;
    if (strcmp(format, "qcow2") && strcmp(format, "raw"))
        return yerr_set(err, YE_INVALID_ARGUMENT, "format must be qcow2 or raw");
    if (strcmp(v.state, "ready") && strcmp(v.state, "attached"))
        return yerr_set(err, YE_CONFLICT, "volume '%s' is %s", v.name, v.state);
    if (vm_volume_in_use(e, &v, &vm))
        return yerr_set(err, YE_CONFLICT,
                        "volume '%s' is in use by running vm '%s': stop it or detach the volume "
                        "first",
                        v.name, vm.name);
    /* the whole chain flattened into DEST.part, created by yund inside an
     * export directory and renamed when complete, so a failure leaves no
     * partial export */
    struct exchange_file x;
    if (exchange_create_export(e->cfg, dest, &x, err) < 0)
        return -1;
    char why[400] = "";
    char *args[] = {"convert", "-q", "-f", v.format, "-O", (char *)format, v.path, x.fdpath, NULL};
    if (qemu_img_run(e, args, x.fd, 3600000, why, sizeof(why)) < 0) {
        exchange_close(&x);
        engine_event(e, "volume", v.name, "export", "error", "%s", why);
        return yerr_disk(err, "%s", why);
    }
    struct stat st;
    uint64_t written = fstat(x.fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
    if (exchange_commit_export(&x, err) < 0) {
        exchange_close(&x);
        engine_event(e, "volume", v.name, "export", "error", "%s", err->message);
        return -1;
    }
    exchange_close(&x);
    *bytes = written;
    engine_event(e, "volume", v.name, "export", "ok", "to %s (%s)", dest, format);
    return 0;
}
