/*
 * images.c - the image library (controller side): building an image from
 * Debian packages (scripts/build-KIND-image.sh, run by the agent as a task).
 * Importing qcow2/raw files, reads and delete: images_import.c.
 *
 * An image is a directory under <state>/images/<name>/ holding a disk and,
 * for direct-kernel-boot images, a kernel and initrd. VM disks are qcow2
 * overlays whose backing file is the image disk, so images are read-only
 * once registered and are never deleted while a VM uses them.
 */
#include "ctl/images.h"
#include "ctl/ctl.h"
#include "agent/agent.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
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

int ctl_image_register(struct ctl *c, struct image_rec *m, struct yerr *err)
{
    uuid_generate_str(m->id);
    m->created_at = now_ms();
    m->actual_size = file_size_on_disk(m->path);
    int rc = store_image_insert(c->store, m);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "image '%s' already exists", m->name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

static const char *const kinds[] = {"tiny", "debian", NULL};

/* scripts/build-KIND-image.sh beside the binary (build/, build/san/) or installed. */
static int find_builder(struct ctl *c, const char *kind, char *out, size_t len)
{
    if (!strcmp(kind, "tiny") && c->cfg->image_builder[0]) {
        snprintf(out, len, "%s", c->cfg->image_builder);
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
static int register_built(struct ctl *c, const char *kind, struct image_rec *out, struct yerr *err)
{
    char outdir[512], meta[600];
    ctl_image_dir(c, kind, outdir, sizeof(outdir));
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
    if (disk_inspect(c->cfg->qemu_img, m.path, NULL, &di, err) < 0)
        return -1;
    snprintf(m.format, sizeof(m.format), "%s", di.format);
    m.virtual_size = di.virtual_size;
    if (ctl_image_register(c, &m, err) < 0)
        return -1;
    ctl_event(c, "image", kind, "build", "ok", "%s", m.path);
    *out = m;
    return 0;
}

/* The build is a task: the builder runs on the agent (image.build, a job);
 * what it leaves in images/KIND is registered when it succeeds. Steps:
 *   image_build.after_begin  task running, builder not started -> recover: outdir removed
 *   image_build.after_run    builder done, not registered      -> recover: adopted (succeeded)
 */
struct build_op {
    struct ctl *c;
    char task[37];
    char kind[16];
    uint64_t call;
};

json_t *image_to_json(const struct image_rec *m)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "id", m->id, "name",
                     m->name, "format", m->format, "path", m->path, "kernel", m->kernel, "initrd",
                     m->initrd, "cmdline", m->cmdline, "os", m->os, "virtual_size",
                     (json_int_t)m->virtual_size, "actual_size", (json_int_t)m->actual_size,
                     "created_at", (json_int_t)m->created_at, "min_memory_mb",
                     (json_int_t)m->min_memory_mb);
}

static void build_done(void *ctx, json_t *result, const struct yerr *err)
{
    struct build_op *op = ctx;
    struct ctl *c = op->c;
    struct yerr ferr = {0};
    struct image_rec m;
    char outdir[512];
    ctl_image_dir(c, op->kind, outdir, sizeof(outdir));
    if (!err) {
        FAILPOINT("image_build.after_run");
        if (register_built(c, op->kind, &m, &ferr) < 0)
            err = &ferr;
    } else {
        ferr = *err;
        yerr_wrap(&ferr, "building image '%s' failed: ", op->kind);
        err = &ferr;
    }
    if (err) {
        remove_tree(outdir);
        ctl_event(c, "image", op->kind, "build", "error", "%s", err->message);
        task_fail(c->tasks, op->task, err);
    } else {
        task_succeed(c->tasks, op->task, image_to_json(&m));
    }
    free(op);
}

static void build_cancel(void *ctx)
{
    struct build_op *op = ctx;
    agent_cancel(op->c->agent, op->call);
}

static void build_object(const char *kind, char *id, size_t len)
{
    snprintf(id, len, "image-build:%s", kind);
}

int ctl_image_build(struct ctl *c, const char *kind, struct image_rec *out, struct task_rec *task,
                    struct yerr *err)
{
    bool known = false;
    for (const char *const *k = kinds; *k && !known; k++)
        known = !strcmp(*k, kind);
    if (!known)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "unknown image kind '%s' (this yund builds: tiny, debian)", kind);
    if (store_image_get(c->store, kind, out) == 0)
        return 0; /* cached: built once, reused */
    char obj[64];
    build_object(kind, obj, sizeof(obj));
    if (task_busy(c->tasks, obj, task))
        return 1; /* being built: the same task */
    char imp[80];
    snprintf(imp, sizeof imp, "image:%s", kind);
    struct task_rec busy;
    if (task_busy(c->tasks, imp, &busy))
        return task_conflict(err, &busy); /* an import of that name */
    char outdir[512], meta[600];
    ctl_image_dir(c, kind, outdir, sizeof(outdir));
    snprintf(meta, sizeof(meta), "%s/image.json", outdir);
    /* a build finished while yund was down: adopt it */
    if (path_exists(meta) && register_built(c, kind, out, err) == 0)
        return 0;
    char script[PATH_MAX];
    if (find_builder(c, kind, script, sizeof(script)) < 0)
        return yerr_set(err, YE_INTERNAL, "image builder script not found (%s)", script);
    struct build_op *op = calloc(1, sizeof(*op));
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->c = c;
    snprintf(op->kind, sizeof(op->kind), "%s", kind);
    if (task_begin(c->tasks, "image.build", "image", obj, kind, task, err) < 0) {
        free(op);
        return -1;
    }
    snprintf(op->task, sizeof(op->task), "%s", task->id);
    FAILPOINT("image_build.after_begin");
    remove_tree(outdir); /* what a failed or interrupted build left */
    ctl_event(c, "image", kind, "build", "info", "started (task %s)", task->id);
    op->call = agent_call(c->agent, AV_IMAGE_BUILD,
                          json_pack("{s:s,s:s}", "script", script, "outdir", outdir), build_done,
                          NULL, op);
    task_on_cancel(c->tasks, op->task, build_cancel, op);
    return 1;
}

static int recover_build(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    char outdir[512], meta[600];
    struct image_rec m;
    ctl_image_dir(c, k->object_name, outdir, sizeof(outdir));
    snprintf(meta, sizeof(meta), "%s/image.json", outdir);
    if (store_image_get(c->store, k->object_name, &m) == 0 ||
        (path_exists(meta) && register_built(c, k->object_name, &m, err) == 0)) {
        k->state = TASK_SUCCEEDED;
        json_t *j = image_to_json(&m);
        k->result = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return 0;
    }
    if (!strchr(k->object_name, '/') && k->object_name[0] && k->object_name[0] != '.')
        remove_tree(outdir);
    return 0;
}

void ctl_images_init(struct ctl *c)
{
    tasks_register_kind(c->tasks, "image.build", recover_build, c);
    ctl_images_import_init(c);
}
