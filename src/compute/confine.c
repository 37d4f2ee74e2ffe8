/*
 * confine.c - each VM's QEMU runs as a uid of its own, with no capabilities
 * and a seccomp filter (see confine.h for the design).
 *
 * Uids are claimed machine-wide, so that two yunds on one machine (each with
 * its own state directory) never hand out the same one: a claim is a file
 * qemu_uid_dir/UID made with O_EXCL, naming the VM and its state directory,
 * and every claim is taken or dropped under an flock on qemu_uid_dir/.lock.
 * A claim outlives yund (the VM keeps its uid across restarts); it is
 * released when the VM is deleted, and one whose VM directory is gone and
 * whose uid no process runs as is stale and taken over.
 */
#include "compute/confine.h"
#include "compute/bootfd.h"
#include "compute/qemu_proc.h"
#include "compute/qemu_argv.h"
#include "compute/qmp.h"
#include "lib/log.h"
#include "lib/util.h"
#include "storage/volumes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHAIN_MAX 64 /* disk layers in a VM's directory; a volume's linked clones */

/* ---- claims ---- */

void confine_claim_text(const char *vm_id, const char *vms_dir, char *out, size_t len)
{
    snprintf(out, len, "%s %s\n", vm_id, vms_dir);
}

bool confine_claim_is(const char *text, const char *vm_id, const char *vms_dir)
{
    char want[512];
    confine_claim_text(vm_id, vms_dir, want, sizeof(want));
    return !strcmp(text, want);
}

static int claims_lock(struct engine *e, char *why, size_t len)
{
    char path[320];
    if (mkdir_p(e->cfg->qemu_uid_dir, 0700) < 0 ||
        snprintf_checked(path, sizeof(path), "%s/.lock", e->cfg->qemu_uid_dir) < 0) {
        snprintf(why, len, "cannot create %s: %s", e->cfg->qemu_uid_dir, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(why, len, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int rc;
    while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
        ;
    if (rc < 0) {
        snprintf(why, len, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void claim_path(struct engine *e, uint32_t uid, char *out, size_t len)
{
    snprintf(out, len, "%s/%u", e->cfg->qemu_uid_dir, uid);
}

/* Does any live process run as uid (real, effective, saved or file-system)? */
static bool uid_in_use(uint32_t uid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return true; /* cannot tell: do not hand it out */
    bool used = false;
    struct dirent *de;
    while (!used && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
        char *st = read_file(path, 16384, NULL);
        if (!st && errno != ENOENT && errno != ESRCH) {
            used = true; /* cannot tell: do not hand it out */
            break;
        }
        const char *u = st ? strstr(st, "\nUid:") : NULL,
                   *state = st ? strstr(st, "\nState:") : NULL;
        unsigned long ids[4];
        char c = 0;
        /* a zombie (a QEMU that just exited, not yet reaped) runs nothing */
        if (state && sscanf(state + 7, " %c", &c) == 1 && (c == 'Z' || c == 'X'))
            u = NULL;
        if (u && sscanf(u + 5, "%lu %lu %lu %lu", &ids[0], &ids[1], &ids[2], &ids[3]) == 4)
            for (int i = 0; i < 4; i++)
                used |= ids[i] == uid;
        free(st);
    }
    closedir(d);
    return used;
}

enum claim { CLAIM_FREE, CLAIM_OURS, CLAIM_TAKEN };

/* Who holds uid? A stale claim (its VM directory is gone and nothing runs
 * as the uid) is removed and reported free. Called under the lock. */
static enum claim claim_state(struct engine *e, const struct vm_rec *vm, uint32_t uid)
{
    char path[320];
    claim_path(e, uid, path, sizeof(path));
    char *text = read_file(path, 1024, NULL);
    if (!text)
        return errno == ENOENT ? CLAIM_FREE : CLAIM_TAKEN;
    if (confine_claim_is(text, vm->id, e->vms_dir)) {
        free(text);
        return CLAIM_OURS;
    }
    /* a claim that does not parse was cut short by a crash (claims are
     * written under the lock): it is stale unless the uid is in use */
    char id[64], vms[400], dir[480];
    bool named = sscanf(text, "%63s %399[^\n]", id, vms) == 2 &&
                 snprintf_checked(dir, sizeof(dir), "%s/%s", vms, id) >= 0;
    bool stale = (!named || !path_exists(dir)) && !uid_in_use(uid);
    free(text);
    if (!stale)
        return CLAIM_TAKEN;
    unlink(path);
    return CLAIM_FREE;
}

/* Makes uid vm's, if nobody else has it. Called under the lock. */
static int claim_for(struct engine *e, const struct vm_rec *vm, uint32_t uid)
{
    enum claim c = claim_state(e, vm, uid);
    if (c == CLAIM_TAKEN)
        return -1;
    char path[320];
    claim_path(e, uid, path, sizeof(path));
    if (uid_in_use(uid)) {
        /* some process runs as it (not a QEMU of ours: this VM is down) */
        if (c == CLAIM_OURS)
            unlink(path);
        return -1;
    }
    if (c == CLAIM_OURS)
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    char text[512];
    confine_claim_text(vm->id, e->vms_dir, text, sizeof(text));
    ssize_t n = write(fd, text, strlen(text)); /* a few bytes: one write */
    int rc = close(fd) < 0 || n != (ssize_t)strlen(text) ? -1 : 0;
    if (rc < 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

/* A VM whose disk is in a pool (POOL/vms/ID): that directory and its
 * disk layers are given to uid too, 0700/0600, through O_NOFOLLOW fds. On
 * a shared pool another host's uid may have held them: the owner is
 * whoever runs the VM's QEMU now. */
static int give_disk_dir(const struct vm_rec *vm, uint32_t uid, char *why, size_t len)
{
    int dfd = open(vm->disk_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || fchown(dfd, uid, uid) < 0 || fchmod(dfd, 0700) < 0) {
        snprintf(why, len, "cannot give %s to uid %u: %s", vm->disk_dir, uid, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        snprintf(why, len, "cannot list %s: %s", vm->disk_dir, strerror(errno));
        if (dup_fd >= 0)
            close(dup_fd);
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        const char *f = de->d_name;
        size_t l = strlen(f);
        if (strncmp(f, "disk", 4) || l <= 6 || strcmp(f + l - 6, ".qcow2"))
            continue;
        int fd = openat(dfd, f, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        if ((st.st_uid != uid || st.st_gid != uid) && fchown(fd, uid, uid) < 0)
            rc = -1;
        if (rc == 0 && (st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
            rc = -1;
        if (rc < 0)
            snprintf(why, len, "cannot give %s/%s to uid %u: %s", vm->disk_dir, f, uid,
                     strerror(errno));
        close(fd);
    }
    closedir(d);
    close(dfd);
    return rc;
}

/* Gives the VM's directory and the files QEMU writes (disk layers, the
 * logs it appends to, the seed) to uid, 0700/0600. Files are opened with
 * O_NOFOLLOW and changed through the fd: the directory is the VM's, so
 * what is in it is not trusted to be what it was. */
static int give_files(struct engine *e, const struct vm_rec *vm, uint32_t uid, char *why,
                      size_t len)
{
    char dir[512];
    engine_vm_path(e, vm, NULL, dir, sizeof(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || fchown(dfd, uid, uid) < 0 || fchmod(dfd, 0700) < 0) {
        snprintf(why, len, "cannot give %s to uid %u: %s", dir, uid, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    static const char *const logs[] = {VMDIR_CONLOG, VMDIR_QEMULOG};
    for (size_t i = 0; i < 2; i++) {
        int fd = openat(dfd, logs[i],
                        O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    int rc = 0;
    int dup_fd = dup(dfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        snprintf(why, len, "cannot list %s: %s", dir, strerror(errno));
        if (dup_fd >= 0)
            close(dup_fd);
        close(dfd);
        return -1;
    }
    struct dirent *de;
    while (d && rc == 0 && (de = readdir(d))) {
        const char *f = de->d_name;
        size_t l = strlen(f);
        bool layer = !strncmp(f, "disk", 4) && l > 6 && !strcmp(f + l - 6, ".qcow2");
        if (!layer && strcmp(f, VMDIR_SEED) && strcmp(f, VMDIR_CONLOG) && strcmp(f, VMDIR_QEMULOG))
            continue;
        int fd = openat(dfd, f, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
            if (fd >= 0)
                close(fd);
            continue; /* not a plain file of its own: leave it alone */
        }
        if ((st.st_uid != uid || st.st_gid != uid) && fchown(fd, uid, uid) < 0)
            rc = -1;
        if (rc == 0 && (st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
            rc = -1;
        if (rc < 0)
            snprintf(why, len, "cannot give %s/%s to uid %u: %s", dir, f, uid, strerror(errno));
        close(fd);
    }
    if (d)
        closedir(d);
    close(dfd);
    return rc;
}

/* ---- the files QEMU gets by fd ---- */

/* The backing file name in the header of qcow2 file (in directory dfd): ""
 * when it has none. The VM's layers are written by its QEMU, so the header
 * is read with care. -1 when it is not a qcow2 file that can be read. */
static int qcow2_backing(int dfd, const char *file, char *out, size_t len)
{
    int fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    unsigned char h[20];
    int rc = -1;
    if (fd >= 0 && pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) && !memcmp(h, "QFI\xfb", 4)) {
        uint64_t off = 0;
        uint32_t size = 0;
        for (int i = 0; i < 8; i++)
            off = off << 8 | h[8 + i];
        for (int i = 0; i < 4; i++)
            size = size << 8 | h[16 + i];
        if (!off) {
            out[0] = 0;
            rc = 0;
        } else if (size < len && size <= 1023 && off < (1u << 20) &&
                   pread(fd, out, size, (off_t)off) == (ssize_t)size) {
            out[size] = 0;
            rc = strlen(out) == size ? 0 : -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int plan_file(struct vm_confine *c, const char *path, const char *fmt, bool rw, bool memfd,
                     struct yerr *err)
{
    if (c->nfiles == CONFINE_FILES_MAX)
        return yerr_set(err, YE_CONFLICT, "more than %d files to pass to qemu", CONFINE_FILES_MAX);
    struct confine_file *f = &c->files[c->nfiles];
    if (snprintf_checked(f->path, sizeof(f->path), "%s", path) < 0)
        return yerr_set(err, YE_INTERNAL, "path too long: %s", path);
    snprintf(f->fmt, sizeof(f->fmt), "%s", fmt);
    f->rw = rw;
    f->memfd = memfd;
    return c->nfiles++;
}

/* How many layers of vm's disk chain lie in its directory, and whether the
 * lowest sits on the image. Layers name the one under them by a relative
 * name; a layer made by an older yund may name one in the directory by its
 * absolute path, which is rewritten (qemu-img rebase -u) into the relative
 * name the confined QEMU can open. A name that leads anywhere else (only
 * the VM's own QEMU writes these headers) is refused: yund opens the image
 * for QEMU as root, and must never open something else. */
static int plan_disk(struct engine *e, const struct vm_rec *vm, const struct image_rec *img,
                     struct vm_confine *c, struct confine_rebases *fix, struct yerr *err)
{
    char dir[512], cur[256], back[1024];
    engine_vm_disk_path(e, vm, NULL, dir, sizeof(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return yerr_set(err, YE_INTERNAL, "cannot open %s: %s", dir, strerror(errno));
    snprintf(cur, sizeof(cur), "%s", vm->disk);
    size_t dl = strlen(dir);
    int rc = -1;
    for (c->disk_layers = 1; c->disk_layers <= CHAIN_MAX; c->disk_layers++) {
        if (qcow2_backing(dfd, cur, back, sizeof(back)) < 0) {
            yerr_set(err, YE_INTERNAL, "vm '%s': cannot read the header of disk layer %s", vm->name,
                     cur);
            break;
        }
        if (!back[0]) { /* the chain ends in the directory */
            rc = 0;
            break;
        }
        if (!strcmp(back, img->path)) {
            c->disk_on_image = true;
            rc = 0;
            break;
        }
        const char *name = back;
        if (!strncmp(back, dir, dl) && back[dl] == '/')
            name = back + dl + 1;
        if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") ||
            strlen(name) >= sizeof(cur)) {
            yerr_set(err, YE_CONFLICT,
                     "vm '%s': disk layer %s sits on %s, which is neither in its directory nor "
                     "its image: not started",
                     vm->name, cur, back);
            break;
        }
        if (name != back) {
            /* the caller runs the rebase (qemu-img, as a job) before QEMU */
            if (!fix || fix->n == CONFINE_REBASE_MAX) {
                yerr_set(err, YE_CONFLICT,
                         "vm '%s': more than %d disk layers name another by "
                         "its absolute path",
                         vm->name, CONFINE_REBASE_MAX);
                break;
            }
            struct confine_rebase *rb = &fix->r[fix->n];
            if (snprintf_checked(rb->layer, sizeof(rb->layer), "%s/%s", dir, cur) < 0 ||
                snprintf_checked(rb->backing, sizeof(rb->backing), "%s", name) < 0) {
                yerr_set(err, YE_INTERNAL, "vm '%s': path too long", vm->name);
                break;
            }
            fix->n++;
        }
        memmove(cur, name, strlen(name) + 1);
    }
    if (c->disk_layers > CHAIN_MAX)
        yerr_set(err, YE_CONFLICT, "vm '%s': its disk chain is deeper than %d", vm->name,
                 CHAIN_MAX);
    close(dfd);
    return rc < 0 ? -1 : 0;
}

/* Every attached volume and the volumes it is a linked clone of, as the
 * caller (the controller, from its rows) named them. */
static int plan_volumes(const struct vm_rec *vm, const struct confine_volin *vs, size_t n,
                        struct vm_confine *c, struct yerr *err)
{
    for (size_t i = 0; i < n; i++) {
        if (c->nvols == CONFINE_VOLS_MAX)
            return yerr_set(err, YE_CONFLICT, "vm '%s' has more than %d volumes", vm->name,
                            CONFINE_VOLS_MAX);
        if (vs[i].n < 1 || vs[i].n > CHAIN_MAX)
            return yerr_set(err, YE_CONFLICT, "volume '%s' is a linked clone too deep", vs[i].name);
        struct confine_vol *cv = &c->vols[c->nvols++];
        snprintf(cv->id, sizeof(cv->id), "%s", vs[i].id);
        cv->first = c->nfiles;
        cv->n = vs[i].n;
        for (int k = 0; k < vs[i].n; k++)
            if (plan_file(c, vs[i].layers[k].path, vs[i].layers[k].format, k == 0, false, err) < 0)
                return -1;
    }
    return 0;
}

/* What a confined QEMU is handed by fd: the image under the VM's disk, the
 * image's kernel and initrd (memfd copies: QEMU reads them once, into the
 * guest's firmware config, and they cost memory, not a file, while it
 * runs), and the attached volumes with their chains. */
static int plan_files(struct engine *e, const struct vm_rec *vm, const struct image_rec *img,
                      const struct confine_volin *vols, size_t nvols, struct vm_confine *c,
                      struct confine_rebases *fix, struct yerr *err)
{
    c->image = c->kernel = c->initrd = -1;
    if (plan_disk(e, vm, img, c, fix, err) < 0)
        return -1;
    /* the image goes first (fdset QEMU_FDSET_IMAGE), even under a chain
     * that no longer reaches it: its set's label keeps the VM's directory
     * in the command line (see qemu_argv.c) */
    if ((c->image = plan_file(c, img->path, img->format, false, false, err)) < 0)
        return -1;
    if (img->kernel[0] && (c->kernel = plan_file(c, img->kernel, "", false, true, err)) < 0)
        return -1;
    if (img->kernel[0] && img->initrd[0] &&
        (c->initrd = plan_file(c, img->initrd, "", false, true, err)) < 0)
        return -1;
    return plan_volumes(vm, vols, nvols, c, err);
}

/* Whether this process has capability cap in its effective set. */
static bool has_cap(int cap)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long eff = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &eff) == 1)
            break;
    if (f)
        fclose(f);
    return (eff >> cap) & 1;
}

int64_t vm_confine_memlock_max(void)
{
    if (has_cap(CAP_IPC_LOCK) || has_cap(CAP_SYS_RESOURCE))
        return -1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
        return 0;
    return rl.rlim_max == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_max;
}

int vm_confine_prepare(struct engine *e, struct vm_rec *vm, const struct image_rec *img,
                       const struct confine_volin *vols, size_t nvols, struct vm_confine *out,
                       struct confine_rebases *fix, struct yerr *err)
{
    memset(out, 0, sizeof(*out));
    if (fix)
        fix->n = 0;
    out->image = out->kernel = out->initrd = -1;
    if (!e->cfg->qemu_confine)
        return 0;
    char why[400];
    int lk = claims_lock(e, why, sizeof(why));
    if (lk < 0)
        return yerr_set(err, YE_CONFINE_ERROR, "%s", why);
    uint32_t min = e->cfg->qemu_uid_min, max = e->cfg->qemu_uid_max, uid = vm->uid;
    /* keep the VM's uid when it is still in the range and still its own */
    if (uid < min || uid > max || claim_for(e, vm, uid) < 0) {
        uid = 0;
        for (uint64_t u = min; u <= max && !uid; u++)
            if (claim_for(e, vm, (uint32_t)u) == 0)
                uid = (uint32_t)u;
    }
    if (!uid) {
        close(lk);
        return yerr_set(err, YE_NO_UID,
                        "no free uid for vm '%s' in qemu_uid_min..qemu_uid_max (%u..%u)", vm->name,
                        min, max);
    }
    /* the caller records a new uid (the controller's row) before QEMU runs */
    vm->uid = uid;
    close(lk);
    if (give_files(e, vm, uid, why, sizeof(why)) < 0 ||
        (vm->disk_dir[0] && give_disk_dir(vm, uid, why, sizeof(why)) < 0))
        return yerr_set(err, YE_CONFINE_ERROR, "%s", why);
    if (plan_files(e, vm, img, vols, nvols, out, fix, err) < 0)
        return -1;
    out->on = true;
    out->uid = out->gid = uid;
    out->ipc_lock = vm->memory_lock && has_cap(CAP_IPC_LOCK);
    return 0;
}

void vm_confine_release(struct engine *e, const struct vm_rec *vm)
{
    if (!vm->uid)
        return;
    char why[400], path[320];
    int lk = claims_lock(e, why, sizeof(why));
    if (lk < 0) {
        log_warn("vm %s: uid %u not released: %s", vm->name, vm->uid, why);
        return;
    }
    if (claim_state(e, vm, vm->uid) == CLAIM_OURS) {
        claim_path(e, vm->uid, path, sizeof(path));
        unlink(path);
    }
    close(lk);
}

/* ---- spawn ---- */

static void child_fail(const char *what)
{
    const char *m = strerror(errno);
    (void)!write(2, what, strlen(what));
    (void)!write(2, ": ", 2);
    (void)!write(2, m, strlen(m));
    (void)!write(2, "\n", 1);
    _exit(126);
}

/* The boot slot of file i, or NULL. */
static const struct confine_spawn *boot_of(const struct confine_spawn *s, int i, int *k)
{
    for (*k = 0; *k < 2; (*k)++)
        if (s->boot[*k].fd >= 0 && s->boot[*k].file == i)
            return s;
    return NULL;
}

/* Opens c->files as fds CONFINE_FD_FIRST.. (inherited by QEMU), while
 * still root. Everything from 3 up is closed but the boot copies' fds
 * (moved above the files' numbers), so the next fd is the one wanted; a
 * memfd copy is moved down onto it, filled and sealed first when this
 * start is the one making it (bootfd.h). */
static void open_files(const struct confine_spawn *s, const int *boot_hi)
{
    const struct vm_confine *c = s->c;
    for (int i = 0; i < c->nfiles; i++) {
        const struct confine_file *f = &c->files[i];
        int k, fd;
        if (f->memfd && boot_of(s, i, &k)) {
            if (s->boot[k].fill && bootfd_fill(boot_hi[k], f->path) < 0)
                child_fail(f->path);
            fd = boot_hi[k];
        } else {
            fd = open(f->path, (f->rw ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NOCTTY);
            if (fd < 0)
                child_fail(f->path);
        }
        if (f->memfd && !boot_of(s, i, &k)) {
            struct stat st;
            int m = memfd_create("yun-boot", MFD_ALLOW_SEALING);
            if (m < 0 || fstat(fd, &st) < 0)
                child_fail(f->path);
            for (off_t off = 0; off < st.st_size;)
                if (sendfile(m, fd, &off, (size_t)(st.st_size - off)) <= 0)
                    child_fail(f->path);
            if (fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
                child_fail("memfd seals");
            close(fd);
            fd = m;
        }
        if (fd != CONFINE_FD_FIRST + i) {
            if (dup2(fd, CONFINE_FD_FIRST + i) < 0)
                child_fail("dup2");
            close(fd);
        }
    }
}

/* Closes fds lo..hi (close_range, else one by one up to the limit). */
static void close_span(unsigned lo, unsigned hi)
{
    if (lo > hi || close_range(lo, hi, 0) == 0)
        return;
    struct rlimit rl;
    unsigned long top =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1048576 ? rl.rlim_cur : 1048576;
    for (unsigned long fd = lo; fd <= hi && fd < top; fd++)
        close((int)fd);
}

/* Becomes the VM's uid for good: no supplementary group but its own, no
 * capability in any set (the bounding set too, so nothing exec'd can get
 * one back), no_new_privs. QEMU then starts unprivileged, which is what
 * lets its filter forbid setuid (elevateprivileges=deny). */
static void drop_privileges(const struct vm_confine *c)
{
    for (int cap = 0; cap < 64; cap++)
        if ((!c->ipc_lock || cap != CAP_IPC_LOCK) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
            errno != EINVAL)
            child_fail("PR_CAPBSET_DROP");
    gid_t gid = c->gid;
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0)
        child_fail("setgid");
    /* a locked VM's QEMU mlocks all its memory: unprivileged that is
     * bounded by RLIMIT_MEMLOCK, which only CAP_SYS_RESOURCE raises; with
     * CAP_IPC_LOCK kept (ambient, so it survives the exec) it is bounded by
     * the VM's cgroup memory limit instead */
    if (c->ipc_lock && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        child_fail("PR_SET_KEEPCAPS");
    if (setresuid(c->uid, c->uid, c->uid) < 0)
        child_fail("setuid");
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof(none));
    if (c->ipc_lock)
        none[0].effective = none[0].permitted = none[0].inheritable = 1u << CAP_IPC_LOCK;
    if (syscall(SYS_capset, &hdr, none) < 0 ||
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        child_fail("capset");
    if (c->ipc_lock && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_IPC_LOCK, 0, 0) < 0)
        child_fail("CAP_IPC_LOCK");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail("PR_SET_NO_NEW_PRIVS");
    if (setuid(0) == 0 || getuid() != c->uid || geteuid() != c->uid)
        child_fail("still privileged");
}

/* In the process that becomes QEMU (only async-signal-safe calls). */
static void qemu_child(const struct confine_spawn *s)
{
    const struct vm_confine *c = s->c;
    int logfd = s->logfd;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
        _exit(126);
    if (s->pre_exec && s->pre_exec(s->pre_arg) != 0)
        _exit(126);
    /* the boot copies out of the way of the files' numbers, the lower first */
    int hi[2] = {-1, -1};
    for (int k = 0; k < 2; k++)
        if (s->boot[k].fd >= 0 &&
            (hi[k] = fcntl(s->boot[k].fd, F_DUPFD, CONFINE_FD_FIRST + c->nfiles)) < 0)
            child_fail("boot fd");
    int keep[2] = {hi[0], hi[1]};
    if (keep[0] > keep[1]) {
        keep[0] = hi[1];
        keep[1] = hi[0];
    }
    /* nothing else of yund's (its database, its sockets) goes into QEMU */
    unsigned lo = 3;
    for (int k = 0; k < 2; k++)
        if (keep[k] >= 0) {
            close_span(lo, (unsigned)keep[k] - 1);
            lo = (unsigned)keep[k] + 1;
        }
    close_span(lo, ~0U);
    if (chdir(s->dir) < 0)
        child_fail("chdir");
    umask(077);
    open_files(s, hi);
    drop_privileges(c);
    execvp(s->argv[0], s->argv);
    child_fail("exec");
}

int vm_confine_spawn_open(struct engine *e, const struct vm_rec *vm, const struct vm_confine *c,
                          char *const argv[], int (*pre_exec)(void *arg), void *arg,
                          struct confine_spawn *s, char *why, size_t len)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->argv = argv;
    s->pre_exec = pre_exec;
    s->pre_arg = arg;
    s->logfd = -1;
    s->boot[0].fd = s->boot[1].fd = -1;
    if (!c->on)
        return 0;
    /* the kernel and initrd: the shared sealed copies (bootfd.h) */
    int boot[2] = {c->kernel, c->initrd};
    for (int k = 0; k < 2; k++) {
        if (boot[k] < 0 || !c->files[boot[k]].memfd)
            continue;
        s->boot[k].file = boot[k];
        s->boot[k].fd = bootfd_get(c->files[boot[k]].path, &s->boot[k].fill);
        if (s->boot[k].fd < 0) {
            snprintf(why, len, "cannot copy %s: %s", c->files[boot[k]].path, strerror(errno));
            vm_confine_spawn_close(s);
            return -1;
        }
    }
    char log[512];
    engine_vm_path(e, vm, NULL, s->dir, sizeof(s->dir));
    engine_vm_path(e, vm, VMDIR_QEMULOG, log, sizeof(log));
    int logfd =
        open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    struct stat lst;
    if (logfd >= 0 && (fstat(logfd, &lst) < 0 || !S_ISREG(lst.st_mode))) {
        close(logfd); /* not a plain file (the VM's uid owns the directory) */
        logfd = -1;
        errno = EINVAL;
    }
    if (logfd < 0) {
        snprintf(why, len, "cannot open qemu.log: %s", strerror(errno));
        return -1;
    }
    fcntl(logfd, F_SETFL, O_WRONLY | O_APPEND); /* QEMU writes to it blocking */
    s->logfd = logfd;
    return 0;
}

void vm_confine_spawn_close(struct confine_spawn *s)
{
    if (s->logfd >= 0)
        close(s->logfd);
    s->logfd = -1;
    for (int k = 0; k < 2; k++) {
        if (s->boot[k].fd >= 0)
            close(s->boot[k].fd);
        s->boot[k].fd = -1;
    }
}

/* The job's child (job.c: its own session, stdout and stderr its pipes).
 * Unconfined it only joins the cgroup and lets the job exec a -daemonize
 * QEMU. Confined, QEMU cannot -daemonize (spawn=deny forbids the fork
 * after the seccomp filter is in place), so this child daemonizes it: it
 * forks QEMU, reports its pid on stdout and exits, and QEMU is reparented
 * to init, outliving yund like a -daemonize QEMU. */
int vm_confine_spawn_child(void *arg)
{
    struct confine_spawn *s = arg;
    if (!s->c->on)
        return s->pre_exec ? s->pre_exec(s->pre_arg) : 0;
    pid_t q = fork();
    if (q == 0)
        qemu_child(s);
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)q);
    (void)!write(1, buf, (size_t)n);
    _exit(q < 0 ? 1 : 0);
}

/* ---- naming files for a running QEMU ---- */

int vm_qemu_name(struct engine *e, const struct vm_rec *vm, const char *file, char *out, size_t len)
{
    char dir[512], cwd[64];
    struct stat a, b;
    engine_vm_path(e, vm, NULL, dir, sizeof(dir));
    snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", (int)vm->pid);
    if (vm->pid > 0 && stat(cwd, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        return snprintf_checked(out, len, "%s", file) < 0 ? -1 : 0;
    return engine_vm_path(e, vm, file, out, len);
}

void vm_qemu_abs(struct engine *e, const struct vm_rec *vm, const char *name, char *out, size_t len)
{
    if (name[0] == '/' || !name[0])
        snprintf(out, len, "%s", name);
    else
        engine_vm_path(e, vm, name, out, len);
}
