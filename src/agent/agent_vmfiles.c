/*
 * agent_vmfiles.c - the verbs that make and remove what a VM owns on this
 * host: its directory, overlay and seed ISO, its cgroups and its uid claim.
 * Children (qemu-img, genisoimage) are jobs; waits are evtimers.
 *
 *   vm.prepare {"vm","name","disk_bytes","image_path","image_format",
 *               "seed"?,"hostname"?,"user_data"?,"ssh_keys"?}
 *              -> {"disk", "seed"?}
 *              Makes DIR/vms/ID (which must not exist yet), the qcow2
 *              overlay on the image (qemu-img create), and with "seed" the
 *              cloud-init NoCloud ISO (genisoimage); or with "seed_iso_b64"
 *              (a migration's target) that ISO written as it is, the
 *              source's bytes (vm.seed_read). On failure the directory is
 *              removed: nothing is left behind.
 *   vm.remove  {"vm","uid"} -> {}
 *              What a deleted VM leaves on the host: yund's runtime of it,
 *              its cgroups (rmdir retried on a timer while a process
 *              lingers, at most about a second, then left for a later pass),
 *              its directory, its uid claim. YE_CONFLICT while a QEMU of
 *              it may still run (vm.end first): files under a live QEMU are
 *              never removed.
 */
#include "agent/agent_power.h"
#include "compute/cgroup_remove.h"
#include "compute/confine.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "compute/qemu_proc.h"
#include "lib/base64.h"
#include "lib/failpoint.h"
#include "lib/job.h"
#include "lib/log.h"
#include "lib/proc.h"
#include "lib/util.h"
#include "storage/qemu_img.h"
#include "storage/seed.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREPARE_TIMEOUT_MS 60000
#define MAX_DISK           (16ULL << 40)
#define SEED_B64_MAX       (6u << 20) /* base64 of a seed ISO of at most 4 MiB */

/* ---- vm.prepare ---- */

/* "disk_dir": POOL/vms/ID for a disk in a pool. The pool's directory must
 * be there (this host mounts it); POOL/vms is made when missing (0711:
 * each VM's directory in it is its QEMU uid's). 0, or -1 with err. */
static int pool_disk_dir(const char *dd, const char *id, char *out, size_t len, bool existing,
                         struct yerr *err)
{
    size_t n = dd ? strlen(dd) : 0, il = strlen(id);
    if (!dd || n >= len || n < il + 6 || dd[0] != '/' || path_has_dot_component(dd) ||
        strchr(dd, ',') || strcmp(dd + n - il, id) || strncmp(dd + n - il - 5, "/vms/", 5))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "agent: vm.prepare: disk_dir must be POOL/vms/ID");
    char pool[256], vms[256];
    snprintf(pool, sizeof pool, "%.*s", (int)(n - il - 5), dd);
    snprintf(vms, sizeof vms, "%.*s", (int)(n - il - 1), dd);
    struct stat st;
    if (stat(pool, &st) < 0 || !S_ISDIR(st.st_mode))
        return yerr_set(err, YE_CONFLICT, "the pool directory %s is not on this host: %s", pool,
                        errno ? strerror(errno) : "not a directory");
    /* the daemon's umask is strict: the mode is set, not asked for */
    if ((mkdir(vms, 0711) < 0 && errno != EEXIST) || chmod(vms, 0711) < 0)
        return yerr_set(err, YE_INTERNAL, "cannot create %s: %s", vms, strerror(errno));
    if (existing) {
        if (stat(dd, &st) < 0 || !S_ISDIR(st.st_mode))
            return yerr_set(err, YE_CONFLICT, "the vm's disk directory %s is not on this host", dd);
    } else if (mkdir(dd, 0700) < 0) {
        int en = errno;
        return yerr_set(err, en == EEXIST ? YE_CONFLICT : YE_INTERNAL,
                        "cannot create the vm's disk directory %s: %s", dd, strerror(en));
    }
    snprintf(out, len, "%s", dd);
    return 0;
}

struct prep_op {
    struct agent_op *op;
    struct agent_local *al;
    char dir[512], disk[600];
    char disk_dir[256]; /* a disk in a pool: POOL/vms/ID, made by this prepare ("" = none) */
    struct seed_paths seed;
    bool want_seed;
    bool seed_copied; /* seed_iso_b64 written: only its fsync (a `sync FILE` job) is left */
};

static void prep_fail(struct prep_op *p, const struct yerr *err)
{
    if (remove_tree(p->dir) < 0)
        log_warn("cannot remove %s: %s", p->dir, strerror(errno));
    if (p->disk_dir[0] && remove_tree(p->disk_dir) < 0)
        log_warn("cannot remove %s: %s", p->disk_dir, strerror(errno));
    agent_op_reply(p->op, NULL, err);
    free(p);
}

static void prep_done(struct prep_op *p)
{
    json_t *r = json_pack("{s:s}", "disk", p->disk);
    if (r && p->want_seed)
        json_object_set_new(r, "seed", json_string(p->seed.iso));
    agent_op_reply(p->op, r, NULL);
    free(p);
}

static void on_seed(void *ctx, const struct job_result *r)
{
    struct prep_op *p = ctx;
    if (r->status != 0) {
        char line[300];
        proc_last_line(r->err, line, sizeof line);
        struct yerr err;
        yerr_set(&err, YE_SEED_ERROR, "cloud-init seed: %s failed: %s",
                 p->seed_copied ? "sync" : "genisoimage", line[0] ? line : "no output");
        prep_fail(p, &err);
        return;
    }
    prep_done(p);
}

static void on_overlay(void *ctx, json_t *result, const struct yerr *qerr)
{
    struct prep_op *p = ctx;
    if (qerr) {
        struct yerr err;
        yerr_disk(&err, "qemu-img create failed: %s", qerr->message);
        prep_fail(p, &err);
        return;
    }
    if (!p->want_seed) {
        prep_done(p);
        return;
    }
    char *argv[11];
    char *sync_argv[] = {"sync", p->seed.iso, NULL};
    if (!p->seed_copied)
        seed_argv("genisoimage", &p->seed, argv);
    struct job_spec js = {.argv = p->seed_copied ? sync_argv : argv,
                          .timeout_ms = PREPARE_TIMEOUT_MS,
                          .capture_max = 16384,
                          .capture_tail = true,
                          .on_done = on_seed,
                          .ctx = p};
    char why[256];
    if (!job_start(p->al->base, &js, why, sizeof why)) {
        struct yerr err;
        yerr_set(&err, YE_SEED_ERROR, "cloud-init seed: %s", why);
        prep_fail(p, &err);
    }
}

/* Writes len bytes to a new file path (0600; into the page cache: the
 * fsync is a job). -1 with why. */
static int write_file_new(const char *path, const unsigned char *b, size_t len, char *why,
                          size_t wlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t off = 0;
    while (fd >= 0 && off < len) {
        ssize_t w = write(fd, b + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (fd < 0 || off < len) {
        snprintf(why, wlen, "writing %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return close(fd) < 0 ? (snprintf(why, wlen, "closing %s: %s", path, strerror(errno)), -1) : 0;
}

static const char *opt_str(json_t *args, const char *key, size_t max, bool *ok)
{
    json_t *v = json_object_get(args, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v) || strlen(json_string_value(v)) > max)
        *ok = false;
    return json_string_value(v);
}

void agent_vm_prepare(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    bool ok = true;
    const char *name = opt_str(args, "name", 63, &ok);
    const char *img = opt_str(args, "image_path", 500, &ok);
    const char *fmt = opt_str(args, "image_format", 8, &ok);
    const char *host = opt_str(args, "hostname", 63, &ok);
    const char *ud = opt_str(args, "user_data", 1 << 20, &ok);
    const char *keys = opt_str(args, "ssh_keys", 1 << 20, &ok);
    const char *iso = opt_str(args, "seed_iso_b64", SEED_B64_MAX, &ok);
    json_t *size = json_object_get(args, "disk_bytes"), *seed = json_object_get(args, "seed");
    struct stat st;
    unsigned char *iso_bytes = NULL;
    size_t iso_len = 0;
    if (ok && iso &&
        (json_is_true(seed) || !(iso_bytes = base64_decode(iso, &iso_len)) || !iso_len)) {
        free(iso_bytes);
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.prepare's seed_iso_b64 must be a non-empty base64 ISO, "
                      "without seed: true");
        return;
    }
    if (!ok || !img || img[0] != '/' || path_has_dot_component(img) || stat(img, &st) < 0 ||
        !S_ISREG(st.st_mode) || !fmt || (strcmp(fmt, "qcow2") && strcmp(fmt, "raw")) ||
        !json_is_integer(size) || json_integer_value(size) <= 0 ||
        (uint64_t)json_integer_value(size) > MAX_DISK || (seed && !json_is_boolean(seed))) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.prepare takes image_path (an existing image file), "
                      "image_format (qcow2 or raw), disk_bytes (1..16T), seed (a boolean) and "
                      "name, hostname, user_data, ssh_keys, seed_iso_b64 (strings)");
        free(iso_bytes);
        return;
    }
    char why[300];
    if (json_is_true(seed) && seed_validate(host ? host : "", ud, keys, why, sizeof why) < 0) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "%s", why);
        return;
    }
    struct prep_op *p = calloc(1, sizeof *p);
    if (!p) {
        free(iso_bytes);
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    p->op = op;
    p->al = al;
    p->want_seed = json_is_true(seed);
    struct vm_rec probe = {0};
    snprintf(probe.id, sizeof probe.id, "%s", id);
    if (engine_vm_path(e, &probe, NULL, p->dir, sizeof p->dir) < 0 ||
        engine_vm_path(e, &probe, VMDIR_DISK, p->disk, sizeof p->disk) < 0 ||
        engine_vm_path(e, &probe, VMDIR_SEED, p->seed.iso, sizeof p->seed.iso) < 0) {
        free(p);
        free(iso_bytes);
        agent_op_fail(op, YE_INTERNAL, "path too long");
        return;
    }
    /* A disk in a pool: its directory there, checked first. With
     * "existing" (a move on a shared pool) the disk is there already: only
     * the VM's own directory is made, and a failure leaves the disk. */
    json_t *ddj = json_object_get(args, "disk_dir"), *exj = json_object_get(args, "existing");
    bool existing = json_is_true(exj);
    struct yerr err = {0};
    char dd[256] = "";
    if ((ddj && !json_is_string(ddj)) || (exj && !json_is_boolean(exj)) || (existing && !ddj)) {
        free(p);
        free(iso_bytes);
        agent_op_fail(
            op, YE_INVALID_ARGUMENT,
            "agent: vm.prepare: disk_dir is a string, existing a boolean (with disk_dir)");
        return;
    }
    if (ddj && pool_disk_dir(json_string_value(ddj), id, dd, sizeof dd, existing, &err) < 0) {
        free(p);
        free(iso_bytes);
        agent_op_reply(op, NULL, &err);
        return;
    }
    /* A directory already there is another VM's (or one reconcile has yet
     * to remove): never taken over, never removed by this failure. */
    if (mkdir(p->dir, 0700) < 0) {
        int en = errno;
        if (dd[0] && !existing)
            rmdir(dd);
        free(p);
        free(iso_bytes);
        agent_op_fail(op, en == EEXIST ? YE_CONFLICT : YE_INTERNAL,
                      "cannot create the vm's directory: %s", strerror(en));
        return;
    }
    if (dd[0]) {
        snprintf(p->disk, sizeof p->disk, "%s/" VMDIR_DISK, dd);
        if (!existing)
            snprintf(p->disk_dir, sizeof p->disk_dir, "%s", dd);
    }
    if (existing) {
        /* the disk is in the pool already; a seed, when the move brings
         * one (seed_iso_b64: the source's, byte for byte), is the VM's own
         * directory's, written and then synced as a job (on_overlay) */
        if (stat(p->disk, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(iso_bytes);
            yerr_set(&err, YE_CONFLICT, "the vm's disk %s is not on this host", p->disk);
            prep_fail(p, &err);
            return;
        }
        if (!iso_bytes) {
            prep_done(p);
            return;
        }
        p->want_seed = p->seed_copied = true;
        int rc = write_file_new(p->seed.iso, iso_bytes, iso_len, why, sizeof why);
        free(iso_bytes);
        if (rc < 0) {
            yerr_set(&err, YE_SEED_ERROR, "cloud-init seed: %s", why);
            prep_fail(p, &err);
            return;
        }
        on_overlay(p, NULL, NULL);
        return;
    }
    if (iso_bytes) {
        p->want_seed = p->seed_copied = true; /* the file now, its fsync after the overlay */
        int rc = write_file_new(p->seed.iso, iso_bytes, iso_len, why, sizeof why);
        free(iso_bytes);
        if (rc < 0) {
            yerr_set(&err, YE_SEED_ERROR, "cloud-init seed: %s", why);
            prep_fail(p, &err);
            return;
        }
        iso_bytes = NULL;
    }
    if (json_is_true(seed) && seed_files(p->dir, id, host && host[0] ? host : (name ? name : id),
                                         ud, keys, &p->seed, why, sizeof why) < 0) {
        yerr_set(&err, YE_SEED_ERROR, "cloud-init seed: %s", why);
        prep_fail(p, &err);
        return;
    }
    struct qimg_ctx c = {.base = al->base,
                         .qemu_img = al->cfg->qemu_img,
                         .done = on_overlay,
                         .ctx = p,
                         .keep_fd = -1,
                         .timeout_ms = PREPARE_TIMEOUT_MS};
    if (!qimg_create(&c, p->disk, "qcow2", (uint64_t)json_integer_value(size), img, fmt, &err))
        prep_fail(p, &err);
}

/* ---- vm.remove ---- */

struct remove_op {
    struct agent_op *op;
    struct engine *e;
    struct cg_removal *rm; /* the cgroup removal while it waits on a busy group */
    struct vm_rec vm;      /* id and uid only */
    char group[48];
    char disk_dir[256]; /* a disk in a pool, removed too ("" = none) */
};

static void remove_rest(struct remove_op *x)
{
    FAILPOINT("vm_delete.after_cgroup");
    char dir[512];
    if (engine_vm_path(x->e, &x->vm, NULL, dir, sizeof dir) == 0 && remove_tree(dir) < 0)
        log_warn("cannot remove %s: %s", dir, strerror(errno));
    if (x->disk_dir[0] && remove_tree(x->disk_dir) < 0)
        log_warn("cannot remove %s: %s", x->disk_dir, strerror(errno));
    FAILPOINT("vm_delete.after_files");
    vm_confine_release(x->e, &x->vm);
    FAILPOINT("vm_delete.after_release");
    agent_op_ok(x->op);
    free(x);
}

static void on_cgroup_removed(void *arg, int rc)
{
    struct remove_op *x = arg;
    if (rc != 0)
        log_warn("vm %s: its cgroup %s stays", x->vm.id, x->group);
    remove_rest(x);
}

/* Cancelled (yund stopping) while waiting on a busy cgroup: the row says
 * deleting, so the next yund's reconcile finishes it. */
static void remove_cancel(struct agent_op *op, void *arg)
{
    struct remove_op *x = arg;
    agent_op_fail(op, YE_CANCELLED, "vm %s: removal cancelled", x->vm.id);
    cg_remove_cancel(x->rm);
    free(x);
}

void agent_vm_remove(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    uint32_t uid;
    if (!id || agent_power_uid_arg(op, args, &uid) < 0)
        return;
    /* "disk_dir": the VM's disk in a pool goes too (a delete says so; a
     * move's cleanup of one side never does: on a shared pool both sides
     * name the same disk) */
    json_t *ddj = json_object_get(args, "disk_dir");
    const char *dd = json_string_value(ddj);
    size_t dl = dd ? strlen(dd) : 0, il = strlen(id);
    if (ddj && (!dd || dl >= 256 || dl < il + 6 || dd[0] != '/' || path_has_dot_component(dd) ||
                strcmp(dd + dl - il, id) || strncmp(dd + dl - il - 5, "/vms/", 5))) {
        agent_op_fail(op, YE_INVALID_ARGUMENT, "agent: vm.remove: disk_dir must be POOL/vms/ID");
        return;
    }
    pid_t pid = 0;
    enum qemu_seen seen = qemu_seek(e->vms_dir, id, uid, NULL, &pid);
    if (seen != QEMU_GONE) {
        agent_op_fail(op, YE_CONFLICT, "vm %s: %s; its files stay (vm.end first)", id,
                      seen == QEMU_UNSURE ? "cannot tell whether a qemu of it runs"
                                          : "a qemu of it still runs");
        return;
    }
    struct remove_op *x = calloc(1, sizeof *x);
    if (!x) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    x->op = op;
    x->e = e;
    snprintf(x->vm.id, sizeof x->vm.id, "%s", id);
    snprintf(x->vm.name, sizeof x->vm.name, "%s", id);
    x->vm.uid = uid;
    if (dd)
        snprintf(x->disk_dir, sizeof x->disk_dir, "%s", dd);
    struct vm_rt *rt = engine_rt_find(e, id);
    if (rt)
        engine_rt_drop(e, rt);
    engine_vm_cgroup(&x->vm, x->group);
    engine_cgroup_keep(e, x->group); /* an exit's removal of it: this one takes over */
    agent_op_on_cancel(op, remove_cancel, x);
    /* x is freed when the first try settles it; kept only while pending */
    struct cg_removal *rm = cg_remove_start(al->base, &e->cg, x->group, on_cgroup_removed, x);
    if (rm)
        x->rm = rm;
}
