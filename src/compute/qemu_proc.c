/*
 * qemu_proc.c - the process-table view of this yund's QEMUs: one walk of
 * /proc collecting every process whose command line is a QEMU of a VM in our
 * VM directory, and the verdict for one VM (pidfile first, then the walk).
 *
 * Why not the pidfile alone: QEMU writes it only after it has daemonised, so
 * a yund killed in the first tens of milliseconds of a start left a QEMU that
 * no pidfile named; reconcile called the VM stopped, and the next start
 * deleted the live QEMU's files. A start is now only possible when this walk
 * finds nothing.
 */
#include "compute/qemu_proc.h"
#include "compute/qemu_argv.h"
#include "lib/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A QEMU that has run this long without a pidfile is not starting any more:
 * QEMU writes the pidfile within milliseconds of exec. */
#define SETTLED_S 10.0

static bool uuid_like(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* The id after "-uuid" in a NUL-separated command line, or NULL. */
static const char *cmdline_uuid(const char *cmd, size_t len)
{
    const char *end = cmd + len;
    for (const char *a = cmd; a < end; a += strlen(a) + 1) {
        if (strcmp(a, "-uuid"))
            continue;
        const char *v = a + strlen(a) + 1;
        return v < end && uuid_like(v) ? v : NULL;
    }
    return NULL;
}

bool qemu_cmdline_matches(const char *cmd, size_t len, const char *vms_dir, const char *id)
{
    if (!len || cmd[len - 1] != 0)
        return false;
    const char *u = cmdline_uuid(cmd, len);
    if (!u || strcmp(u, id))
        return false;
    /* ... and it must use this yund's VM directory: another yund's VM with
     * the same id (a copied state dir) is not ours to adopt or kill. */
    char dir[600];
    if (snprintf_checked(dir, sizeof(dir), "%s/%s/", vms_dir, id) < 0)
        return false;
    /* anchored: the argument starts with it, or an option value does
     * (path=DIR..., opaque=DIR..., file=DIR...), so /x/srv/yun/vms is not
     * /srv/yun/vms */
    const char *end = cmd + len;
    for (const char *a = cmd; a < end; a += strlen(a) + 1)
        for (const char *hit = strstr(a, dir); hit; hit = strstr(hit + 1, dir))
            if (hit == a || hit[-1] == '=' || hit[-1] == ',' || hit[-1] == ':')
                return true;
    return false;
}

static double uptime_s(void)
{
    char *s = read_file("/proc/uptime", 128, NULL);
    double v = 0;
    if (s) {
        v = strtod(s, NULL);
        free(s);
    }
    return v;
}

/* Seconds since pid started (field 22 of /proc/PID/stat), or -1. */
static double proc_age(pid_t pid, double up)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char *st = read_file(path, 4096, NULL);
    if (!st)
        return -1;
    double age = -1;
    unsigned long long ticks;
    if (proc_stat_starttime(st, &ticks) == 0) {
        long hz = sysconf(_SC_CLK_TCK);
        if (hz > 0)
            age = up - (double)ticks / (double)hz;
    }
    free(st);
    return age;
}

int proc_stat_starttime(const char *st, unsigned long long *ticks)
{
    const char *p = strrchr(st, ')');
    /* after ") ": state is field 3; starttime is field 22 */
    for (int field = 2; p && *p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return -1;
    *ticks = strtoull(p + 1, NULL, 10);
    return 0;
}

int qemu_scan_run(const char *vms_dir, struct qemu_scan *s)
{
    memset(s, 0, sizeof(*s));
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    s->ok = true;
    double up = uptime_s();
    size_t cap = 0;
    struct dirent *de;
    for (;;) {
        errno = 0;
        if (!(de = readdir(d))) {
            if (errno)
                s->ok = false; /* a partial walk proves nothing */
            break;
        }
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        long v = strtol(de->d_name, NULL, 10);
        if (v <= 1 || v == getpid())
            continue;
        char path[64];
        size_t len;
        struct stat pst;
        snprintf(path, sizeof(path), "/proc/%ld", v);
        if (stat(path, &pst) < 0) {
            if (errno != ENOENT && errno != ESRCH)
                s->ok = false;
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", v);
        char *cmd = read_file(path, 1 << 20, &len);
        if (!cmd) {
            if (errno != ENOENT && errno != ESRCH)
                s->ok = false; /* could not look: it might have been ours */
            continue;
        }
        const char *u = cmdline_uuid(cmd, len);
        bool ours = u && qemu_cmdline_matches(cmd, len, vms_dir, u);
        /* an empty command line is a zombie (or a kernel thread): not a
         * QEMU any more, whatever its uid */
        if (ours || (pst.st_uid >= QEMU_UID_FLOOR && len > 0)) {
            if (s->n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                struct qemu_proc *np = realloc(s->procs, nc * sizeof(*np));
                if (!np) {
                    s->ok = false;
                    free(cmd);
                    break;
                }
                s->procs = np;
                cap = nc;
            }
            struct qemu_proc *q = &s->procs[s->n++];
            q->pid = (pid_t)v;
            snprintf(q->id, sizeof(q->id), "%s", ours ? u : "");
            q->uid = (uint32_t)pst.st_uid;
            q->age_s = proc_age(q->pid, up);
        }
        free(cmd);
    }
    closedir(d);
    return s->ok ? 0 : -1;
}

void qemu_scan_free(struct qemu_scan *s)
{
    free(s->procs);
    memset(s, 0, sizeof(*s));
}

static bool proc_is(const struct qemu_proc *q, const char *id, uint32_t uid)
{
    return !strcmp(q->id, id) || (uid && q->uid == uid);
}

size_t qemu_scan_pids(const struct qemu_scan *s, const char *id, uint32_t uid, pid_t *out,
                      size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!proc_is(&s->procs[i], id, uid))
            continue;
        if (n < max)
            out[n] = s->procs[i].pid;
        n++;
    }
    return n;
}

static pid_t read_pidfile(const char *vms_dir, const char *id)
{
    char path[600];
    if (snprintf_checked(path, sizeof(path), "%s/%s/" VMDIR_PIDFILE, vms_dir, id) < 0)
        return 0;
    char *s = read_file(path, 64, NULL);
    if (!s)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    bool ok = v > 1 && (!*end || *end == '\n');
    free(s);
    return ok ? (pid_t)v : 0;
}

int qemu_pidfile_write(const char *vms_dir, const char *id, pid_t pid)
{
    char path[600], text[32];
    if (snprintf_checked(path, sizeof(path), "%s/%s/" VMDIR_PIDFILE, vms_dir, id) < 0)
        return -1;
    if (read_pidfile(vms_dir, id) == pid)
        return 0;
    int n = snprintf(text, sizeof(text), "%d\n", (int)pid);
    /* Made afresh and renamed over, like write_file_atomic, but without its
     * fsync: it is on the start's path (tens of ms on a busy disk), and a
     * pidfile outlives no power cut that its QEMU survives. A torn one
     * reads as no pidfile, and the process table decides. */
    char tmp[640];
    if (snprintf_checked(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) < 0)
        return -1;
    unlink(tmp); /* a link planted there (the VM's uid owns the directory) is never followed */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    ssize_t w;
    while ((w = write(fd, text, (size_t)n)) < 0 && errno == EINTR)
        ;
    int rc = w == n ? 0 : -1; /* a few bytes to a fresh file: one write */
    if (close(fd) < 0)
        rc = -1;
    if (rc < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

enum pid_state qemu_pid_state(pid_t pid, const char *id, uint32_t uid)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "-uuid %s", id);
    enum pid_state ps = pid_state_of(pid, needle);
    if (ps != PID_GONE || !uid || pid_state(pid) != PID_LIVE)
        return ps;
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    if (stat(path, &st) < 0)
        return errno == ENOENT || errno == ESRCH ? PID_GONE : PID_UNKNOWN;
    return st.st_uid == uid ? PID_LIVE : PID_GONE;
}

enum qemu_seen qemu_seek(const char *vms_dir, const char *id, uint32_t uid,
                         const struct qemu_scan *scan, pid_t *pid)
{
    *pid = 0;
    bool unsure = false;
    pid_t p = read_pidfile(vms_dir, id);
    if (p > 0) {
        enum pid_state ps = qemu_pid_state(p, id, uid);
        if (ps == PID_LIVE) {
            *pid = p;
            return QEMU_UP;
        }
        unsure = ps == PID_UNKNOWN;
    }
    struct qemu_scan own;
    if (!scan) {
        qemu_scan_run(vms_dir, &own);
        scan = &own;
    }
    enum qemu_seen seen = QEMU_GONE;
    size_t n = 0;
    const struct qemu_proc *first = NULL;
    for (size_t i = 0; i < scan->n; i++) {
        if (!proc_is(&scan->procs[i], id, uid))
            continue;
        if (!first)
            first = &scan->procs[i];
        n++;
    }
    if (n == 0)
        seen = (!scan->ok || unsure) ? QEMU_UNSURE : QEMU_GONE;
    else if (n == 1 && first->age_s >= SETTLED_S)
        seen = QEMU_UP; /* its pidfile is gone, but the QEMU is not */
    else
        seen = QEMU_COMING;
    if (first)
        *pid = first->pid;
    if (scan == &own)
        qemu_scan_free(&own);
    return seen;
}

void qemu_log_since(const char *path, off_t off, char *buf, size_t len)
{
    buf[0] = 0;
    size_t n;
    char *all = read_file(path, 1 << 20, &n);
    if (!all)
        return;
    size_t from = off >= 0 && (size_t)off <= n ? (size_t)off : 0;
    /* the last two non-empty lines: QEMU's error, and its hint when it has one */
    char *text = all + from;
    char *lines[2] = {NULL, NULL};
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        while (*l == ' ' || *l == '\r')
            l++;
        if (!*l)
            continue;
        lines[0] = lines[1];
        lines[1] = l;
    }
    if (lines[0] && lines[1])
        snprintf(buf, len, "%s; %s", lines[0], lines[1]);
    else if (lines[1])
        snprintf(buf, len, "%s", lines[1]);
    free(all);
}
