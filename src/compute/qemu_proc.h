/*
 * qemu_proc.h - finding the QEMU processes of this yund's VMs on the host.
 *
 * The pidfile is only the fast path: it is written by QEMU a moment after it
 * starts, and a crash of yund can fall in that moment. The truth is the
 * process table: a QEMU of VM <id> is a process whose command line carries
 * "-uuid <id>" and names a file in this yund's VM directory (so the VMs of
 * another yund on the same machine are never taken for ours). A process
 * table that cannot be read is "cannot tell", never "no QEMU".
 */
#ifndef YUN_QEMU_PROC_H
#define YUN_QEMU_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/util.h"

enum qemu_seen {
    QEMU_GONE = 0, /* no process of this VM exists */
    QEMU_UP,       /* its QEMU runs: pid is the daemonised QEMU */
    QEMU_COMING,   /* a process of this VM exists but is not the settled QEMU yet
                      (still starting, or a wrapper about to exec it) */
    QEMU_UNSURE,   /* /proc could not be read: nothing may be concluded */
};

struct qemu_proc {
    pid_t pid;
    char id[37];  /* the VM its command line names; "" for a process kept for its uid */
    uint32_t uid; /* its effective uid */
    double age_s; /* seconds since the process started */
};

/* One walk of /proc: every process that is a QEMU of a VM under vms_dir, and
 * every process running as a uid of the confined range (at or above
 * QEMU_UID_FLOOR): a confined QEMU cannot change its uid, but it can rewrite
 * its own command line, so for a VM with a uid the uid is the proof. */
#define QEMU_UID_FLOOR 100000u
struct qemu_scan {
    struct qemu_proc *procs;
    size_t n;
    bool ok; /* false: some process could not be read; matches may be missing */
};

int qemu_scan_run(const char *vms_dir, struct qemu_scan *s);
void qemu_scan_free(struct qemu_scan *s);
/* How many processes of VM id the scan found; their pids into out (up to max). */
size_t qemu_scan_pids(const struct qemu_scan *s, const char *id, uint32_t uid, pid_t *out,
                      size_t max);

/* What is true of VM id's QEMU (its directory vmdir, under vms_dir; uid the
 * one its confined QEMU runs as, 0 = none). The
 * pidfile is believed when its pid runs with the VM's -uuid; otherwise the
 * scan decides (pass NULL to have one made for this call). */
enum qemu_seen qemu_seek(const char *vms_dir, const char *id, uint32_t uid,
                         const struct qemu_scan *scan, pid_t *pid);

/* What /proc says of pid as the QEMU of VM id: PID_LIVE only when it runs
 * with "-uuid ID" on its command line, or (uid != 0) as the VM's own uid; a
 * recycled pid counts as gone. */
enum pid_state qemu_pid_state(pid_t pid, const char *id, uint32_t uid);

/* Makes DIR/vms/ID/qemu.pid name pid (written afresh, never through a link),
 * unless it already does. 0 or -1. */
int qemu_pidfile_write(const char *vms_dir, const char *id, pid_t pid);

/* QEMU's last words in its log (qemu.log) after offset off, on one line. */
void qemu_log_since(const char *path, off_t off, char *buf, size_t len);

/* Pure: does this NUL-separated command line belong to VM id under vms_dir? */
bool qemu_cmdline_matches(const char *cmd, size_t len, const char *vms_dir, const char *id);
/* Pure: the start time (field 22, clock ticks after boot) of /proc/PID/stat
 * text. 0, or -1 when the text has too few fields. */
int proc_stat_starttime(const char *stat, unsigned long long *ticks);

#endif
