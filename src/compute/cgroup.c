/*
 * cgroup.c - owns what yun does in the cgroup trees: creating
 * <mount>/<parent>/<group> groups (yund: yun/y-<yund id>/vm-<vm id>), writing
 * the limits into the controller files, moving QEMU into them, reading CPU
 * time and memory use back, and removing the groups. Finding the hierarchies
 * and validating limits (pure parsing) are in cgroup_detect.c.
 *
 * Nothing here keeps state: the layout found by cg_detect() is all a caller
 * needs to hand back in, so the daemon can re-detect after a restart and find
 * the groups of VMs that are still running.
 */
#include "compute/cgroup.h"
#include "compute/cgroup_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CG_PARENT "yun" /* the default parent, when none was set */

#define CG_DEF_PERIOD 100000u

/* How long cg_vm_destroy keeps retrying rmdir on EBUSY: a QEMU that was just
 * killed and reaped can still be listed for a moment while the kernel finishes
 * tearing it down. It sleeps between tries: only for an engine without a
 * controller (vm_create.c's destroy_vm: unit tests) and the unit tests; the
 * daemon's paths retry on a timer (cgroup_remove.c). */
#define CG_RMDIR_TRIES    40
#define CG_RMDIR_SLEEP_NS (25 * 1000 * 1000L)

void cg_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- small file helpers ------------------------------------------------- */

/* cgroupfs wants each value in a single write(); a short write would be
 * parsed as a truncated value, so treat it as failure. O_TRUNC is harmless on
 * cgroupfs and lets the same code work on a plain directory tree in tests. */
static int write_file(const char *path, const char *val, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        cg_set_err(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = strlen(val);
    ssize_t w = write(fd, val, n);
    if (w < 0 || (size_t)w != n) {
        int e = w < 0 ? errno : EIO;
        close(fd);
        cg_set_err(err, errlen, "write \"%s\" to %s: %s", val, path, strerror(e));
        return -1;
    }
    if (close(fd) < 0) {
        cg_set_err(err, errlen, "write \"%s\" to %s: %s", val, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads a small control file into buf with trailing whitespace removed.
 * Returns the length or -1 (errno set). */
ssize_t cg_read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off + 1 < len) {
        ssize_t r = read(fd, buf + off, len - 1 - off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        off += (size_t)r;
    }
    close(fd);
    buf[off] = '\0';
    while (off > 0 && isspace((unsigned char)buf[off - 1]))
        buf[--off] = '\0';
    return (ssize_t)off;
}

int cg_join(char *out, size_t outlen, const char *a, const char *b, char *err, size_t errlen)
{
    int n = snprintf(out, outlen, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= outlen) {
        cg_set_err(err, errlen, "cgroup path too long: %s/%s", a, b);
        return -1;
    }
    return 0;
}

static int mkdir_ok(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    cg_set_err(err, errlen, "mkdir %s: %s", path, strerror(errno));
    return -1;
}

/* Space-separated word list membership, e.g. "cpuset cpu io memory". */
bool cg_has_word(const char *list, const char *word)
{
    size_t wl = strlen(word);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\n' || *p == '\t')
            p++;
        const char *s = p;
        while (*p && *p != ' ' && *p != '\n' && *p != '\t')
            p++;
        if ((size_t)(p - s) == wl && strncmp(s, word, wl) == 0)
            return true;
    }
    return false;
}

/* ---- VM name ------------------------------------------------------------ */

/* The caller already validates names, but the name becomes a path component
 * under a root-owned tree, so refuse anything that could escape it. */
static bool name_ok(const char *vm)
{
    if (vm == NULL || !isalnum((unsigned char)vm[0]))
        return false;
    size_t n = 0;
    for (const char *p = vm; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n <= 63 && strstr(vm, "..") == NULL;
}

/* ---- group paths -------------------------------------------------------- */

static const char *parent_of(const struct cg_layout *lay)
{
    return lay->parent[0] ? lay->parent : CG_PARENT;
}

/* <mount>/<first n levels of the parent> */
static int level_dir(char *out, size_t len, const char *mnt, const struct cg_layout *lay, int n,
                     char *err, size_t errlen)
{
    const char *par = parent_of(lay), *p = par;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '/');
        if (p && i + 1 < n)
            p++;
    }
    size_t take = p ? (size_t)(p - par) : strlen(par);
    int w = snprintf(out, len, "%s/%.*s", mnt, (int)take, par);
    if (w < 0 || (size_t)w >= len) {
        cg_set_err(err, errlen, "cgroup path too long under %s", mnt);
        return -1;
    }
    return 0;
}

static int parent_levels(const struct cg_layout *lay)
{
    int n = 1;
    for (const char *p = parent_of(lay); *p; p++)
        n += *p == '/';
    return n;
}

/* <mount>/<parent> */
static int parent_dir(char *out, size_t len, const char *mnt, const struct cg_layout *lay,
                      char *err, size_t errlen)
{
    return level_dir(out, len, mnt, lay, parent_levels(lay), err, errlen);
}

/* <mount>/<parent>/<group> */
static int vm_dir(char *out, size_t len, const char *mnt, const struct cg_layout *lay,
                  const char *vm, char *err, size_t errlen)
{
    int n = snprintf(out, len, "%s/%s/%s", mnt, parent_of(lay), vm);
    if (n < 0 || (size_t)n >= len) {
        cg_set_err(err, errlen, "cgroup path too long for group %s under %s", vm, mnt);
        return -1;
    }
    return 0;
}

int cg_set_parent(struct cg_layout *lay, const char *parent)
{
    if (strlen(parent) >= sizeof(lay->parent) || !parent[0])
        return -1;
    char copy[sizeof(lay->parent)];
    snprintf(copy, sizeof(copy), "%s", parent);
    char *save = NULL;
    int n = 0;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save), n++)
        if (!name_ok(c))
            return -1;
    if (n == 0 || parent[0] == '/' || parent[strlen(parent) - 1] == '/' || strstr(parent, "//"))
        return -1;
    snprintf(lay->parent, sizeof(lay->parent), "%s", parent);
    return 0;
}

static int write_in(const char *dir, const char *file, const char *val, char *err, size_t errlen)
{
    char path[CG_PATH_MAX];
    if (cg_join(path, sizeof(path), dir, file, err, errlen) < 0)
        return -1;
    return write_file(path, val, err, errlen);
}

int cg_write_in(const char *dir, const char *file, const char *val, char *err, size_t errlen)
{
    return write_in(dir, file, val, err, errlen);
}

static ssize_t read_in(const char *dir, const char *file, char *buf, size_t len)
{
    char path[CG_PATH_MAX];
    if (cg_join(path, sizeof(path), dir, file, NULL, 0) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return cg_read_file(path, buf, len);
}

/* The distinct v1 mount points in use, so co-mounted controllers
 * ("cpu,cpuacct") get one mkdir/attach/rmdir instead of two. */
static int v1_mounts(const struct cg_layout *lay, const char *out[4])
{
    const char *all[4] = {lay->cpu, lay->cpuacct, lay->cpuset, lay->memory};
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if (all[i][0] == '\0')
            continue;
        bool dup = false;
        for (int j = 0; j < n; j++)
            dup = dup || strcmp(out[j], all[i]) == 0;
        if (!dup)
            out[n++] = all[i];
    }
    return n;
}

/* ---- setup: v2 ---------------------------------------------------------- */

/* Turns on the controllers children of dir need. In v2 a controller's files
 * only exist in a group if its parent enabled it in cgroup.subtree_control,
 * and it can only be enabled there if it is listed in the parent's
 * cgroup.controllers. Already enabled controllers are not written again:
 * that keeps repeated setups quiet and works in delegated subtrees. */
static int v2_enable(const char *dir, bool want_cpuset, char *err, size_t errlen)
{
    char avail[512] = "", on[512] = "";
    if (read_in(dir, "cgroup.controllers", avail, sizeof(avail)) < 0) {
        cg_set_err(err, errlen, "read %s/cgroup.controllers: %s", dir, strerror(errno));
        return -1;
    }
    (void)read_in(dir, "cgroup.subtree_control", on, sizeof(on));
    const char *need[] = {"cpu", "memory", "cpuset"};
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        bool cpuset = strcmp(need[i], "cpuset") == 0;
        if (cg_has_word(on, need[i]))
            continue;
        if (!cg_has_word(avail, need[i])) {
            if (cpuset && !want_cpuset)
                continue; /* only needed for pinning */
            cg_set_err(err, errlen, "controller %s not available in %s/cgroup.controllers", need[i],
                       dir);
            return -1;
        }
        char val[16];
        snprintf(val, sizeof(val), "+%s", need[i]);
        if (write_in(dir, "cgroup.subtree_control", val, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int v2_setup(const struct cg_layout *lay, const char *vm, const struct cg_limits *l,
                    char *err, size_t errlen)
{
    char parent[CG_PATH_MAX], dir[CG_PATH_MAX], val[64];
    bool pin = l->cpuset[0] != '\0';

    if (v2_enable(lay->root, pin, err, errlen) < 0)
        return -1;
    /* each level of the parent (yun, then this yund's group) passes the
     * controllers down */
    for (int lv = 1; lv <= parent_levels(lay); lv++) {
        if (level_dir(parent, sizeof(parent), lay->root, lay, lv, err, errlen) < 0 ||
            mkdir_ok(parent, err, errlen) < 0 || v2_enable(parent, pin, err, errlen) < 0)
            return -1;
    }
    if (vm_dir(dir, sizeof(dir), lay->root, lay, vm, err, errlen) < 0 ||
        mkdir_ok(dir, err, errlen) < 0)
        return -1;

    /* Every value is written even when it is the default, so calling setup
     * again with relaxed limits really relaxes them. */
    snprintf(val, sizeof(val), "%u", l->cpu_weight ? l->cpu_weight : 100u);
    if (write_in(dir, "cpu.weight", val, err, errlen) < 0)
        return -1;
    uint64_t period = l->cpu_period_us ? l->cpu_period_us : CG_DEF_PERIOD;
    if (l->cpu_quota_us)
        snprintf(val, sizeof(val), "%" PRIu64 " %" PRIu64, l->cpu_quota_us, period);
    else
        snprintf(val, sizeof(val), "max %" PRIu64, period);
    if (write_in(dir, "cpu.max", val, err, errlen) < 0)
        return -1;
    if (cg_v2_memory_setup(dir, l, err, errlen) < 0)
        return -1;

    if (pin) {
        char mems[256] = "";
        if (read_in(dir, "cpuset.mems", mems, sizeof(mems)) >= 0 && mems[0] == '\0') {
            /* An empty mems in v2 means "inherit", which already works; it is
             * copied anyway so the group keeps working if it is ever moved
             * to a parent with a different effective set. */
            if (read_in(parent, "cpuset.mems.effective", mems, sizeof(mems)) > 0 &&
                write_in(dir, "cpuset.mems", mems, err, errlen) < 0)
                return -1;
        }
        if (write_in(dir, "cpuset.cpus", l->cpuset, err, errlen) < 0)
            return -1;
    } else {
        /* "\n" (not "") because kernfs ignores zero-length writes; it resets
         * the group to the parent's CPUs. */
        char cur[256] = "";
        if (read_in(dir, "cpuset.cpus", cur, sizeof(cur)) > 0 &&
            write_in(dir, "cpuset.cpus", "\n", err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* ---- setup: v1 ---------------------------------------------------------- */

/* v1 cpuset groups start with empty cpuset.cpus/mems and refuse tasks
 * (ENOSPC) until both are set, so each new level copies its parent's. */
static int v1_cpuset_inherit(const char *parent, const char *dir, char *err, size_t errlen)
{
    const char *files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        char cur[256] = "", up[256] = "";
        if (read_in(dir, files[i], cur, sizeof(cur)) < 0) {
            cg_set_err(err, errlen, "read %s/%s: %s", dir, files[i], strerror(errno));
            return -1;
        }
        if (cur[0] != '\0')
            continue;
        if (read_in(parent, files[i], up, sizeof(up)) < 0) {
            cg_set_err(err, errlen, "read %s/%s: %s", parent, files[i], strerror(errno));
            return -1;
        }
        if (write_in(dir, files[i], up, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static int v1_setup(const struct cg_layout *lay, const char *vm, const struct cg_limits *l,
                    char *err, size_t errlen)
{
    char parent[CG_PATH_MAX], dir[CG_PATH_MAX], val[64];
    const char *mnts[4];
    int n = v1_mounts(lay, mnts);

    if (l->cpu_weight && !lay->cpu[0]) {
        cg_set_err(err, errlen, "cpu-weight requested but the cpu controller is not mounted");
        return -1;
    }
    if (l->cpu_quota_us && !lay->cpu[0]) {
        cg_set_err(err, errlen, "cpu-quota requested but the cpu controller is not mounted");
        return -1;
    }
    if (l->memory_bytes && !lay->memory[0]) {
        cg_set_err(err, errlen, "memory limit requested but the memory controller is not mounted");
        return -1;
    }
    if (l->cpuset[0] && !lay->cpuset[0]) {
        cg_set_err(err, errlen, "cpuset requested but the cpuset controller is not mounted");
        return -1;
    }

    for (int i = 0; i < n; i++) {
        char up[CG_PATH_MAX];
        snprintf(up, sizeof(up), "%s", mnts[i]);
        for (int lv = 1; lv <= parent_levels(lay); lv++) {
            if (level_dir(parent, sizeof(parent), mnts[i], lay, lv, err, errlen) < 0 ||
                mkdir_ok(parent, err, errlen) < 0)
                return -1;
            if (strcmp(mnts[i], lay->cpuset) == 0 && v1_cpuset_inherit(up, parent, err, errlen) < 0)
                return -1;
            snprintf(up, sizeof(up), "%s", parent);
        }
        if (vm_dir(dir, sizeof(dir), mnts[i], lay, vm, err, errlen) < 0 ||
            mkdir_ok(dir, err, errlen) < 0)
            return -1;
    }

    if (lay->cpu[0]) {
        if (vm_dir(dir, sizeof(dir), lay->cpu, lay, vm, err, errlen) < 0)
            return -1;
        /* v2 weight 100 is v1 shares 1024; the kernel clamps shares to
         * 2..262144, so clamp here and write what will be read back. */
        unsigned long shares = l->cpu_weight ? (unsigned long)l->cpu_weight * 1024 / 100 : 1024;
        if (shares < 2)
            shares = 2;
        if (shares > 262144)
            shares = 262144;
        snprintf(val, sizeof(val), "%lu", shares);
        if (write_in(dir, "cpu.shares", val, err, errlen) < 0)
            return -1;
        /* Lift the quota first: the kernel checks every period/quota pair as
         * it is written, and an old quota with a new period can be refused. */
        if (write_in(dir, "cpu.cfs_quota_us", "-1", err, errlen) < 0)
            return -1;
        snprintf(val, sizeof(val), "%" PRIu64,
                 l->cpu_period_us ? l->cpu_period_us : (uint64_t)CG_DEF_PERIOD);
        if (write_in(dir, "cpu.cfs_period_us", val, err, errlen) < 0)
            return -1;
        if (l->cpu_quota_us) {
            snprintf(val, sizeof(val), "%" PRIu64, l->cpu_quota_us);
            if (write_in(dir, "cpu.cfs_quota_us", val, err, errlen) < 0)
                return -1;
        }
    }
    if (lay->memory[0]) {
        if (parent_dir(parent, sizeof(parent), lay->memory, lay, err, errlen) < 0 ||
            vm_dir(dir, sizeof(dir), lay->memory, lay, vm, err, errlen) < 0 ||
            cg_v1_memory_setup(parent, dir, l, err, errlen) < 0)
            return -1;
    }
    if (lay->cpuset[0]) {
        if (parent_dir(parent, sizeof(parent), lay->cpuset, lay, err, errlen) < 0 ||
            vm_dir(dir, sizeof(dir), lay->cpuset, lay, vm, err, errlen) < 0)
            return -1;
        if (v1_cpuset_inherit(parent, dir, err, errlen) < 0)
            return -1;
        /* No pinning means all of the parent's CPUs, written explicitly so a
         * re-setup without a cpuset undoes an earlier pin. */
        char cpus[256];
        if (l->cpuset[0]) {
            snprintf(cpus, sizeof(cpus), "%s", l->cpuset);
        } else if (read_in(parent, "cpuset.cpus", cpus, sizeof(cpus)) < 0) {
            cg_set_err(err, errlen, "read %s/cpuset.cpus: %s", parent, strerror(errno));
            return -1;
        }
        if (write_in(dir, "cpuset.cpus", cpus, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* ---- public API --------------------------------------------------------- */

int cg_vm_setup(const struct cg_layout *lay, const char *vm, const struct cg_limits *l, char *err,
                size_t errlen)
{
    if (lay == NULL || lay->mode == CG_NONE)
        return 0;
    if (!name_ok(vm)) {
        cg_set_err(err, errlen, "invalid VM name for a cgroup: \"%s\"", vm ? vm : "(null)");
        return -1;
    }
    static const struct cg_limits none;
    if (l == NULL)
        l = &none;
    if (cg_limits_validate(l, 0, cg_swap_accounting(lay), err, errlen) < 0)
        return -1;
    return lay->mode == CG_V2 ? v2_setup(lay, vm, l, err, errlen)
                              : v1_setup(lay, vm, l, err, errlen);
}

int cg_vm_attach(const struct cg_layout *lay, const char *vm, pid_t pid, char *err, size_t errlen)
{
    if (lay == NULL || lay->mode == CG_NONE)
        return 0;
    if (!name_ok(vm)) {
        cg_set_err(err, errlen, "invalid VM name for a cgroup: \"%s\"", vm ? vm : "(null)");
        return -1;
    }
    if (pid <= 0) {
        cg_set_err(err, errlen, "invalid pid %ld", (long)pid);
        return -1;
    }
    char dir[CG_PATH_MAX], val[32];
    snprintf(val, sizeof(val), "%ld", (long)pid);
    const char *mnts[4];
    int n = 1;
    if (lay->mode == CG_V2)
        mnts[0] = lay->root;
    else
        n = v1_mounts(lay, mnts);
    /* cgroup.procs (not tasks) moves the whole thread group, so QEMU's vCPU
     * and I/O threads follow the main pid. */
    for (int i = 0; i < n; i++) {
        if (vm_dir(dir, sizeof(dir), mnts[i], lay, vm, err, errlen) < 0 ||
            write_in(dir, "cgroup.procs", val, err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* *tries is shared by all hierarchies of one destroy, so a VM whose process
 * is really still alive costs one wait, not one per controller. */
static int rmdir_retry(const char *dir, int *tries)
{
    struct timespec ts = {0, CG_RMDIR_SLEEP_NS};
    for (;;) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY || *tries <= 0)
            return -1;
        (*tries)--;
        nanosleep(&ts, NULL);
    }
}

int cg_vm_destroy(const struct cg_layout *lay, const char *vm)
{
    if (lay == NULL || lay->mode == CG_NONE)
        return 0;
    if (!name_ok(vm))
        return -1;
    char dir[CG_PATH_MAX];
    const char *mnts[4];
    int n = 1, rc = 0, tries = CG_RMDIR_TRIES;
    if (lay->mode == CG_V2)
        mnts[0] = lay->root;
    else
        n = v1_mounts(lay, mnts);
    /* Keep going after a failure so one busy hierarchy does not leave the
     * others behind. The parents stay: other VMs share them. */
    for (int i = 0; i < n; i++) {
        if (vm_dir(dir, sizeof(dir), mnts[i], lay, vm, NULL, 0) < 0 || rmdir_retry(dir, &tries) < 0)
            rc = -1;
    }
    return rc;
}

int cg_vm_destroy_once(const struct cg_layout *lay, const char *vm)
{
    if (lay == NULL || lay->mode == CG_NONE)
        return 0;
    if (!name_ok(vm))
        return -1;
    char dir[CG_PATH_MAX];
    const char *mnts[4];
    int n = 1, rc = 0;
    if (lay->mode == CG_V2)
        mnts[0] = lay->root;
    else
        n = v1_mounts(lay, mnts);
    for (int i = 0; i < n; i++) {
        if (vm_dir(dir, sizeof(dir), mnts[i], lay, vm, NULL, 0) < 0)
            return -1;
        if (rmdir(dir) == 0 || errno == ENOENT)
            continue;
        if (errno != EBUSY)
            return -1;
        rc = 1;
    }
    return rc;
}

static int64_t read_u64_in(const char *dir, const char *file)
{
    char buf[64];
    if (read_in(dir, file, buf, sizeof(buf)) <= 0)
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0 || end == buf || v > INT64_MAX)
        return -1;
    return (int64_t)v;
}

int64_t cg_vm_cpu_ns(const struct cg_layout *lay, const char *vm)
{
    if (lay == NULL || lay->mode == CG_NONE || !name_ok(vm))
        return -1;
    char dir[CG_PATH_MAX];
    if (lay->mode == CG_V1) {
        if (!lay->cpuacct[0] || vm_dir(dir, sizeof(dir), lay->cpuacct, lay, vm, NULL, 0) < 0)
            return -1;
        return read_u64_in(dir, "cpuacct.usage");
    }
    if (vm_dir(dir, sizeof(dir), lay->root, lay, vm, NULL, 0) < 0)
        return -1;
    char buf[1024];
    if (read_in(dir, "cpu.stat", buf, sizeof(buf)) < 0)
        return -1;
    for (char *p = buf; p != NULL; p = strchr(p, '\n')) {
        unsigned long long us;
        if (*p == '\n')
            p++;
        if (sscanf(p, "usage_usec %llu", &us) == 1 && us <= (unsigned long long)INT64_MAX / 1000)
            return (int64_t)us * 1000;
    }
    return -1;
}

int64_t cg_vm_memory_bytes(const struct cg_layout *lay, const char *vm)
{
    if (lay == NULL || lay->mode == CG_NONE || !name_ok(vm))
        return -1;
    char dir[CG_PATH_MAX];
    const char *mnt = lay->mode == CG_V2 ? lay->root : lay->memory;
    if (!mnt[0] || vm_dir(dir, sizeof(dir), mnt, lay, vm, NULL, 0) < 0)
        return -1;
    return read_u64_in(dir, lay->mode == CG_V2 ? "memory.current" : "memory.usage_in_bytes");
}
