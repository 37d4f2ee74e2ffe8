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
#include "ctl/images_fetch.h"
#include "agent/agent.h"
#include "ctl/tasks.h"
#include "lib/failpoint.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <event2/event.h>
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

/* Reads what a builder left in images/KIND (image.json + files) into *out;
 * its disk's format and size come from the agent's check (disk.inspect). */
static int read_built(struct ctl *c, const char *kind, struct image_rec *out, struct yerr *err)
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
    *out = m;
    return 0;
}

/* The agent judged the built disk (info: disk.inspect's result): the row. */
static int register_built(struct ctl *c, struct image_rec *m, json_t *info, struct yerr *err)
{
    const char *fmt = json_string_value(json_object_get(info, "format"));
    json_int_t size = json_integer_value(json_object_get(info, "virtual_size"));
    if (!fmt || size <= 0)
        return yerr_set(err, YE_INTERNAL, "agent: disk.inspect without format or size");
    snprintf(m->format, sizeof(m->format), "%s", fmt);
    m->virtual_size = (uint64_t)size;
    if (ctl_image_register(c, m, err) < 0)
        return -1;
    ctl_event(c, "image", m->name, "build", "ok", "%s", m->path);
    return 0;
}

static json_t *inspect_args(const struct image_rec *m)
{
    return json_pack("{s:s,s:b}", "path", m->path, "image", 1);
}

/* The build is a task: the builder runs on the agent (image.build, a job);
 * what it leaves in images/KIND is checked by the agent (disk.inspect) and
 * registered when it succeeds. What a failed build left goes through the
 * agent (image.remove) before the task fails, so a yund killed meanwhile
 * leaves the task running, and its recovery removes it. Steps:
 *   image_build.after_begin  task running, builder not started -> recover: outdir removed
 *   image_build.after_run    builder done, not registered      -> recover: adopted (succeeded)
 */
struct build_op {
    struct ctl *c;
    char task[37];
    char kind[16];
    char script[PATH_MAX];
    uint64_t call;
    bool adopt; /* image.json was there: what it names is checked first */
    struct image_rec m;
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

static void build_fail(struct build_op *op, const struct yerr *err)
{
    ctl_image_rollback(op->c, op->kind, "build", op->task, err);
    free(op);
}

static void run_builder(struct build_op *op);

static void built_inspected(void *ctx, json_t *info, const struct yerr *aerr)
{
    struct build_op *op = ctx;
    struct ctl *c = op->c;
    struct yerr err = {0};
    if (aerr && op->adopt) {
        op->adopt = false; /* what is there is no image: build it anew */
        return run_builder(op);
    }
    if (aerr)
        err = *aerr;
    if (err.code || register_built(c, &op->m, info, &err) < 0) {
        yerr_wrap(&err, "building image '%s' failed: ", op->kind);
        return build_fail(op, &err);
    }
    task_succeed(c->tasks, op->task, image_to_json(&op->m));
    free(op);
}

static void build_done(void *ctx, json_t *result, const struct yerr *err)
{
    struct build_op *op = ctx;
    struct yerr ferr = {0};
    if (!err) {
        FAILPOINT("image_build.after_run");
        if (read_built(op->c, op->kind, &op->m, &ferr) < 0)
            err = &ferr;
    } else {
        ferr = *err;
        err = &ferr;
    }
    if (err) {
        yerr_wrap(&ferr, "building image '%s' failed: ", op->kind);
        return build_fail(op, &ferr);
    }
    op->call =
        ctl_disk_call(op->c, AV_DISK_INSPECT, inspect_args(&op->m), built_inspected, NULL, op);
}

/* What a failed or interrupted build left is gone: the builder runs. */
static void outdir_cleared(void *ctx, json_t *result, const struct yerr *err)
{
    struct build_op *op = ctx;
    struct ctl *c = op->c;
    char outdir[512];
    ctl_image_dir(c, op->kind, outdir, sizeof(outdir));
    if (err)
        log_warn("image %s: %s", op->kind, err->message);
    op->call = ctl_disk_call(c, AV_IMAGE_BUILD,
                             json_pack("{s:s,s:s}", "script", op->script, "outdir", outdir),
                             build_done, NULL, op);
}

static void run_builder(struct build_op *op)
{
    char outdir[512];
    ctl_image_dir(op->c, op->kind, outdir, sizeof(outdir));
    op->call = ctl_disk_call(op->c, AV_IMAGE_REMOVE, json_pack("{s:s}", "dir", outdir),
                             outdir_cleared, NULL, op);
}

static void build_cancel(void *ctx)
{
    struct build_op *op = ctx;
    ctl_disk_cancel(op->c, op->call);
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
    struct build_op *op = calloc(1, sizeof(*op));
    if (!op)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    op->c = c;
    snprintf(op->kind, sizeof(op->kind), "%s", kind);
    /* a build finished while yund was down: adopted once the agent has
     * checked its disk (else built anew) */
    struct yerr ignore;
    op->adopt = read_built(c, kind, &op->m, &ignore) == 0;
    if (find_builder(c, kind, op->script, sizeof(op->script)) < 0 && !op->adopt) {
        yerr_set(err, YE_INTERNAL, "image builder script not found (%s)", op->script);
        free(op);
        return -1;
    }
    if (task_begin(c->tasks, "image.build", "image", obj, kind, task, err) < 0) {
        free(op);
        return -1;
    }
    snprintf(op->task, sizeof(op->task), "%s", task->id);
    FAILPOINT("image_build.after_begin");
    if (op->adopt) {
        op->call =
            ctl_disk_call(c, AV_DISK_INSPECT, inspect_args(&op->m), built_inspected, NULL, op);
    } else {
        ctl_event(c, "image", kind, "build", "info", "started (task %s)", task->id);
        run_builder(op);
    }
    task_on_cancel(c->tasks, op->task, build_cancel, op);
    return 1;
}

/* At start-up, before the API accepts requests: the agent's check of a
 * built disk, waited for on the loop (as ctl_init waits for host.facts). */
struct inspect_wait {
    bool done;
    struct yerr err;
    json_t *info;
};

static void on_inspect_wait(void *ctx, json_t *info, const struct yerr *err)
{
    struct inspect_wait *w = ctx;
    w->done = true;
    if (err)
        w->err = *err;
    else
        w->info = json_incref(info);
}

static int adopt_now(struct ctl *c, struct image_rec *m, struct yerr *err)
{
    struct inspect_wait w = {0};
    if (!ctl_disk_call(c, AV_DISK_INSPECT, inspect_args(m), on_inspect_wait, NULL, &w))
        return yerr_set(err, YE_INTERNAL, "agent: cannot ask to check %s", m->path);
    while (!w.done && event_base_loop(c->base, EVLOOP_ONCE) == 0)
        ;
    if (!w.done) {
        ctl_agents_forget(c, &w);
        return yerr_set(err, YE_UNAVAILABLE, "no answer to disk.inspect of %s", m->path);
    }
    int rc = w.err.code ? (*err = w.err, -1) : register_built(c, m, w.info, err);
    json_decref(w.info);
    return rc;
}

static int recover_build(void *ctx, struct task_rec *k, struct yerr *err)
{
    struct ctl *c = ctx;
    struct image_rec m;
    struct yerr ignore;
    if (store_image_get(c->store, k->object_name, &m) == 0 ||
        (read_built(c, k->object_name, &m, &ignore) == 0 && adopt_now(c, &m, &ignore) == 0)) {
        k->state = TASK_SUCCEEDED;
        json_t *j = image_to_json(&m);
        k->result = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return 0;
    }
    if (!strchr(k->object_name, '/') && k->object_name[0] && k->object_name[0] != '.')
        ctl_image_remove_dir(c, k->object_name);
    (void)err;
    return 0;
}

void ctl_images_init(struct ctl *c)
{
    tasks_register_kind(c->tasks, "image.build", recover_build, c);
    ctl_images_import_init(c);
    ctl_images_fetch_init(c);
}
