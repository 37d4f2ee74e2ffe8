/*
 * images.c - the image library: building the "tiny" image from Debian
 * packages (via scripts/build-tiny-image.sh), importing qcow2/raw files after
 * validating them with `qemu-img info`, and deleting unused images.
 *
 * An image is a directory under <state>/images/<name>/ holding a disk and,
 * for direct-kernel-boot images, a kernel and initrd. VM disks are qcow2
 * overlays whose backing file is the image disk, so images are read-only
 * once registered and are never deleted while a VM uses them.
 */
#include "compute/engine.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/util.h"
#include "storage/exchange.h"
#include "storage/inspect.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int register_image(struct engine *e, struct image_rec *m, struct yerr *err)
{
    uuid_generate_str(m->id);
    m->created_at = now_ms();
    m->actual_size = file_size_on_disk(m->path);
    int rc = store_image_insert(e->store, m);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "image '%s' already exists", m->name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(e->store));
    return 0;
}

int engine_image_memory_check(const struct image_rec *img, uint64_t memory_mb, struct yerr *err)
{
    if (!img->min_memory_mb || memory_mb >= img->min_memory_mb)
        return 0;
    return yerr_set(err, YE_INVALID_ARGUMENT,
                    "memory %llu MiB is below the %llu MiB image '%s' needs (with less its "
                    "guest does not boot)",
                    (unsigned long long)memory_mb, (unsigned long long)img->min_memory_mb,
                    img->name);
}

static const char *const kinds[] = {"tiny", "debian", NULL};

/* scripts/build-KIND-image.sh beside the binary (build/, build/san/) or installed. */
static int find_builder(struct engine *e, const char *kind, char *out, size_t len)
{
    if (!strcmp(kind, "tiny") && e->cfg->image_builder[0]) {
        snprintf(out, len, "%s", e->cfg->image_builder);
        return access(out, R_OK) == 0 ? 0 : -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        static const char *const rel[] = {"/../scripts/", "/../../scripts/", "/../share/yun/"};
        for (size_t i = 0; i < 3; i++) {
            if (snprintf_checked(out, len, "%s%sbuild-%s-image.sh", exe, rel[i], kind) >= 0 &&
                access(out, R_OK) == 0)
                return 0;
        }
    }
    snprintf(out, len, "/usr/share/yun/build-%s-image.sh", kind);
    return access(out, R_OK) == 0 ? 0 : -1;
}

static void json_str(json_t *j, const char *key, char *dst, size_t len)
{
    const char *s = json_string_value(json_object_get(j, key));
    snprintf(dst, len, "%s", s ? s : "");
}

/* Registers what a builder left in images/KIND (image.json + files). */
static int register_built(struct engine *e, const char *kind, struct image_rec *out,
                          struct yerr *err)
{
    char outdir[512], meta[600];
    snprintf(outdir, sizeof(outdir), "%s/%s", e->images_dir, kind);
    snprintf(meta, sizeof(meta), "%s/image.json", outdir);
    json_error_t je;
    json_t *j = json_load_file(meta, 0, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return yerr_set(err, YE_BUILD_FAILED, "%s: %s", meta, je.text);
    }
    struct image_rec m = {0};
    char disk[128], kernel[128], initrd[128];
    snprintf(m.name, sizeof(m.name), "%s", kind);
    json_str(j, "disk", disk, sizeof(disk));
    json_str(j, "kernel", kernel, sizeof(kernel));
    json_str(j, "initrd", initrd, sizeof(initrd));
    json_str(j, "cmdline", m.cmdline, sizeof(m.cmdline));
    json_str(j, "os", m.os, sizeof(m.os));
    /* The least memory the image boots with, found by its builder. */
    json_t *mm = json_object_get(j, "min_memory_mb");
    bool mm_ok = !mm || (json_is_integer(mm) && json_integer_value(mm) >= 0 &&
                         json_integer_value(mm) <= (1 << 20));
    if (mm_ok && mm)
        m.min_memory_mb = (uint64_t)json_integer_value(mm);
    json_decref(j);
    if (!mm_ok)
        return yerr_set(err, YE_BUILD_FAILED,
                        "%s: min_memory_mb is not a number of MiB in 0..1048576", meta);
    if (!disk[0] || strchr(disk, '/') || strchr(kernel, '/') || strchr(initrd, '/'))
        return yerr_set(err, YE_BUILD_FAILED, "%s names files outside the image", meta);
    snprintf(m.path, sizeof(m.path), "%s/%s", outdir, disk);
    if (kernel[0])
        snprintf(m.kernel, sizeof(m.kernel), "%s/%s", outdir, kernel);
    if (initrd[0])
        snprintf(m.initrd, sizeof(m.initrd), "%s/%s", outdir, initrd);
    struct disk_info di;
    if (disk_inspect(e->cfg->qemu_img, m.path, NULL, &di, err) < 0)
        return -1;
    snprintf(m.format, sizeof(m.format), "%s", di.format);
    m.virtual_size = di.virtual_size;
    if (register_image(e, &m, err) < 0)
        return -1;
    engine_event(e, "image", kind, "build", "ok", "%s", m.path);
    *out = m;
    return 0;
}

/* Starts the builder detached from yund's fate (own session, log file): a
 * build interrupted by a yund restart still finishes and is adopted. */
static int start_build(struct engine *e, const char *kind, const char *script, struct yerr *err)
{
    char outdir[512], logpath[600];
    snprintf(outdir, sizeof(outdir), "%s/%s", e->images_dir, kind);
    snprintf(logpath, sizeof(logpath), "%s/%s.build.log", e->images_dir, kind);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd < 0)
        return yerr_set(err, YE_INTERNAL, "cannot write %s: %s", logpath, strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        return yerr_set(err, YE_INTERNAL, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        setsid();
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (e->cfg->image_cache[0])
            setenv("YUN_IMAGE_CACHE", e->cfg->image_cache, 1);
        execlp("bash", "bash", script, outdir, (char *)NULL);
        _exit(127);
    }
    close(logfd);
    e->build_pid = pid;
    snprintf(e->build_kind, sizeof(e->build_kind), "%s", kind);
    e->build_error[0] = 0;
    engine_event(e, "image", kind, "build", "info", "started (log: %s)", logpath);
    return 0;
}

void engine_image_build_reap(struct engine *e)
{
    if (e->build_pid <= 0)
        return;
    int st;
    pid_t r = waitpid(e->build_pid, &st, WNOHANG);
    if (r == 0 || (r < 0 && errno != ECHILD))
        return;
    char kind[16];
    snprintf(kind, sizeof(kind), "%s", e->build_kind);
    e->build_pid = 0;
    struct yerr err = {0};
    struct image_rec m;
    bool ok = r > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (ok && register_built(e, kind, &m, &err) == 0)
        return;
    char logpath[600], *log;
    snprintf(logpath, sizeof(logpath), "%s/%s.build.log", e->images_dir, kind);
    char line[256] = "";
    if ((log = read_file(logpath, 1 << 22, NULL))) {
        proc_last_line(log, line, sizeof(line));
        free(log);
    }
    snprintf(e->build_error, sizeof(e->build_error), "building image '%s' failed: %s", kind,
             ok ? err.message : (line[0] ? line : "the builder exited with an error"));
    engine_event(e, "image", kind, "build", "error", "%s", e->build_error);
}

int engine_image_build(struct engine *e, const char *kind, struct image_rec *out, struct yerr *err)
{
    bool known = false;
    for (const char *const *k = kinds; *k && !known; k++)
        known = !strcmp(*k, kind);
    if (!known)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "unknown image kind '%s' (this yund builds: tiny, debian)", kind);
    if (store_image_get(e->store, kind, out) == 0)
        return 0; /* cached: built once, reused */
    char outdir[512], meta[600];
    snprintf(outdir, sizeof(outdir), "%s/%s", e->images_dir, kind);
    snprintf(meta, sizeof(meta), "%s/image.json", outdir);
    engine_image_build_reap(e);
    if (e->build_pid > 0) {
        if (strcmp(e->build_kind, kind))
            return yerr_set(err, YE_CONFLICT, "image '%s' is being built; one build at a time",
                            e->build_kind);
        return 1;
    }
    if (e->build_error[0] && !strcmp(e->build_kind, kind)) {
        /* report the failure once; the next request tries again */
        yerr_set(err, YE_BUILD_FAILED, "%s", e->build_error);
        e->build_error[0] = 0;
        return -1;
    }
    /* a build finished while yund was down: adopt it */
    if (path_exists(meta))
        return register_built(e, kind, out, err);
    char script[PATH_MAX];
    if (find_builder(e, kind, script, sizeof(script)) < 0)
        return yerr_set(err, YE_INTERNAL, "image builder script not found (%s)", script);
    if (!strcmp(kind, "tiny")) {
        /* about a second: done inline */
        char *argv[] = {"bash", script, outdir, NULL};
        struct proc_result r;
        int st = proc_run(argv, 600000, &r);
        char line[400];
        proc_last_line(r.err, line, sizeof(line));
        proc_result_free(&r);
        if (st != 0) {
            engine_event(e, "image", kind, "build", "error", "%s", line);
            return yerr_set(err, YE_BUILD_FAILED, "building image '%s' failed: %s", kind,
                            line[0] ? line : "no output");
        }
        return register_built(e, kind, out, err);
    }
    if (start_build(e, kind, script, err) < 0)
        return -1;
    return 1;
}

/* The import proper, from the file yund holds open; fills *mp. */
static int import_from(struct engine *e, const char *name, const char *file,
                       struct exchange_file *x, const char *format, struct image_rec *mp,
                       struct yerr *err)
{
    struct image_rec m = {0};
    struct disk_info di;
    if (disk_inspect_fd(e->cfg->qemu_img, x->fd, file, format, &di, err) < 0)
        return -1;
    if (di.backing[0])
        return yerr_set(err, YE_INVALID_IMAGE,
                        "image has a backing file (%s): import a standalone image "
                        "(qemu-img convert flattens it)",
                        di.backing);
    snprintf(m.format, sizeof(m.format), "%s", di.format);
    m.virtual_size = di.virtual_size;

    char dir[512], tmp[600];
    snprintf(dir, sizeof(dir), "%s/%s", e->images_dir, name);
    snprintf(m.name, sizeof(m.name), "%s", name);
    snprintf(m.path, sizeof(m.path), "%s/disk.qcow2", dir);
    snprintf(tmp, sizeof(tmp), "%s/disk.qcow2.part", dir);
    snprintf(m.os, sizeof(m.os), "unknown");
    if (path_exists(dir))
        remove_tree(dir); /* leftover of an import that crashed */
    if (mkdir_p(dir, 0755) < 0)
        return yerr_set(err, YE_INTERNAL, "cannot create %s: %s", dir, strerror(errno));
    /* Convert into the library rather than copy: it re-reads every cluster
     * (a truncated file fails here, not at boot) and yields a standalone qcow2. */
    char *argv[] = {(char *)e->cfg->qemu_img,
                    "convert",
                    "-q",
                    "-f",
                    m.format,
                    "-O",
                    "qcow2",
                    x->fdpath,
                    tmp,
                    NULL};
    struct proc_result r;
    int rc = proc_run_ex(argv, 3600000, &r, exchange_inherit_fd, &x->fd);
    char line[300];
    proc_last_line(r.err, line, sizeof(line));
    proc_result_free(&r);
    if (rc != 0 || rename(tmp, m.path) < 0) {
        remove_tree(dir);
        if (strstr(line, "No space left"))
            return yerr_disk(err, "cannot convert %s: %s", file, line);
        return yerr_set(err, YE_INVALID_IMAGE, "cannot convert %s: %s", file,
                        line[0] ? line : strerror(errno));
    }
    snprintf(m.format, sizeof(m.format), "qcow2");
    if (register_image(e, &m, err) < 0) {
        remove_tree(dir);
        return -1;
    }
    engine_event(e, "image", name, "import", "ok", "from %s", file);
    *mp = m;
    return 0;
}

int engine_image_import(struct engine *e, const char *name, const char *file, const char *format,
                        struct image_rec *out, struct yerr *err)
{
    char why[256];
    if (!name_valid(name, why, sizeof(why)))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    struct image_rec m;
    if (store_image_get(e->store, name, &m) == 0)
        return yerr_set(err, YE_CONFLICT, "image '%s' already exists", name);
    struct exchange_file x;
    if (exchange_open_import(e->cfg, file, &x, err) < 0)
        return -1;
    int rc = import_from(e, name, file, &x, format, &m, err);
    exchange_close(&x);
    if (rc == 0)
        *out = m;
    return rc;
}

int engine_image_delete(struct engine *e, const char *name, struct yerr *err)
{
    struct image_rec m;
    int rc = store_image_get(e->store, name, &m);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "image '%s' does not exist", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(e->store));
    int users = 0;
    if (store_vm_count_using_image(e->store, m.name, &users) != 0)
        return yerr_db(err, store_errmsg(e->store));
    if (users > 0)
        return yerr_set(err, YE_CONFLICT, "image '%s' is used by %d vm%s", m.name, users,
                        users == 1 ? "" : "s");
    if (store_image_delete(e->store, m.name) != 0)
        return yerr_db(err, store_errmsg(e->store));
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", e->images_dir, m.name);
    if (remove_tree(dir) < 0)
        log_warn("cannot remove %s: %s", dir, strerror(errno));
    engine_event(e, "image", m.name, "delete", "ok", "%s", "");
    return 0;
}
