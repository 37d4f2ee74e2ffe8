/*
 * agent_ksm.c - KSM on this host (agent_ksm.h): reading its counters for
 * host.sample, and the controller loop. Every KSM_INTERVAL_S the holder of
 * the machine's KSM lock reads MemTotal/MemAvailable, PSI memory, the
 * /sys/kernel/mm/ksm counters and ksmd's CPU time, lets ksm_decide() (pure,
 * agent/ksm_policy.c) choose, and writes pages_to_scan, sleep_millisecs and
 * run only when the decision changes: an operator's or another tool's
 * tuning is not fought every few seconds, and a host it never needed to
 * touch sees no write. All of it is a few small sysfs and /proc reads, cheap
 * enough for the loop (as the sampler's are).
 *
 * When this yund stops (the flock goes with its descriptor) KSM is left in
 * its last state rather than restored: pages merged stay merged, and the
 * next holder decides afresh from what it finds.
 */
#include "agent/agent_ksm.h"
#include "agent/sample_msg.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/procfs.h"
#include "lib/util.h"
#include "agent/ksm_policy.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

struct agent_ksm {
    struct event *timer;
    struct ksm_tuning t;
    struct ksm_state st;
    int lock_fd; /* -1: not the holder */
    bool said_busy;
    bool write_failed;
    uint64_t ksmd_ticks; /* the last tick's ksmd CPU time, for its rate */
    int64_t ksmd_at;     /* ms, monotonic; 0: none yet */
};

static pid_t ksmd_pid;         /* found once, looked for again when it no longer is ksmd */
static int64_t ksmd_missed_at; /* not found then: /proc is not walked again for a minute */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int read_counter(const char *name, uint64_t *out)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", KSM_SYSFS, name);
    char *s = read_file(path, 64, NULL);
    int rc = ksm_parse_counter(s, out);
    free(s);
    return rc;
}

static bool is_ksmd(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    char *s = read_file(path, 64, NULL);
    bool yes = s && !strcmp(s, "ksmd\n");
    free(s);
    return yes;
}

/* ksmd is a kernel thread started at boot: a low pid, found in the first
 * entries of /proc. */
static pid_t find_ksmd(void)
{
    if (ksmd_pid > 0 && is_ksmd(ksmd_pid))
        return ksmd_pid;
    ksmd_pid = 0;
    int64_t now = mono_ms();
    if (ksmd_missed_at && now - ksmd_missed_at < 60000)
        return 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *end;
        long p = strtol(de->d_name, &end, 10);
        if (*end || p <= 0 || p > INT32_MAX)
            continue;
        if (is_ksmd((pid_t)p)) {
            ksmd_pid = (pid_t)p;
            break;
        }
    }
    if (d)
        closedir(d);
    ksmd_missed_at = ksmd_pid ? 0 : now;
    return ksmd_pid;
}

static int ksmd_ticks(uint64_t *ticks)
{
    pid_t p = find_ksmd();
    if (p <= 0)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    char *s = read_file(path, 4096, NULL);
    int rc = procfs_pid_cpu_ticks(s, ticks);
    free(s);
    return rc;
}

void agent_ksm_read(struct host_counters *h)
{
    uint64_t run, shared, sharing;
    h->have_ksm = read_counter("run", &run) == 0 && run <= 2 &&
                  read_counter("pages_shared", &shared) == 0 &&
                  read_counter("pages_sharing", &sharing) == 0;
    if (!h->have_ksm)
        return;
    long ps = sysconf(_SC_PAGESIZE);
    h->ksm_run = run;
    h->ksm_pages_shared = shared;
    h->ksm_pages_sharing = sharing;
    h->ksm_saved_bytes = sharing * (uint64_t)(ps > 0 ? ps : 4096);
    h->have_ksmd = ksmd_ticks(&h->ksmd_ticks) == 0;
}

/* The previous decision is what the kernel has: a decision equal to it is
 * not written (run 2, unmerging, is nobody's decision of ours: invalid). */
static void seed_state(struct agent_ksm *k)
{
    uint64_t run, pages, sleep, scans = 0;
    k->st = (struct ksm_state){0};
    if (read_counter("run", &run) < 0 || run > 1 || read_counter("pages_to_scan", &pages) < 0 ||
        read_counter("sleep_millisecs", &sleep) < 0 || pages > UINT32_MAX || sleep > UINT32_MAX)
        return;
    read_counter("full_scans", &scans);
    k->st = (struct ksm_state){.valid = true,
                               .run = (int)run,
                               .pages_to_scan = (unsigned)pages,
                               .sleep_ms = (unsigned)sleep,
                               .scans_at_start = scans};
}

static bool take_lock(struct agent_ksm *k)
{
    if (k->lock_fd >= 0)
        return true;
    int fd = open(KSM_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
        k->lock_fd = fd;
        k->said_busy = false;
        seed_state(k); /* decide afresh from what the kernel has now */
        log_info("ksm: this yund drives KSM (ksm = %s; %s)", ksm_mode_name(k->t.mode),
                 KSM_LOCK_PATH);
        return true;
    }
    if (!k->said_busy)
        log_info("ksm: %s: %s; another yund drives KSM, asking again every %d s", KSM_LOCK_PATH,
                 fd < 0 ? strerror(errno) : "held", KSM_INTERVAL_S);
    k->said_busy = true;
    if (fd >= 0)
        close(fd);
    return false;
}

static void read_input(struct agent_ksm *k, struct ksm_input *in)
{
    memset(in, 0, sizeof *in);
    char *mi = read_file("/proc/meminfo", 1 << 16, NULL);
    if (procfs_meminfo(mi, &in->mem_total, &in->mem_available) < 0)
        in->mem_total = in->mem_available = 0; /* unknown: no free-memory pressure */
    free(mi);
    char *psi = read_file("/proc/pressure/memory", 4096, NULL);
    in->have_psi = ksm_parse_psi(psi, &in->psi_some_avg10) == 0;
    free(psi);
    read_counter("pages_shared", &in->pages_shared);
    read_counter("pages_sharing", &in->pages_sharing);
    read_counter("pages_unshared", &in->pages_unshared);
    read_counter("pages_volatile", &in->pages_volatile);
    read_counter("full_scans", &in->full_scans);
    long ps = sysconf(_SC_PAGESIZE);
    in->page_size = ps > 0 ? (uint64_t)ps : 4096;
    uint64_t ticks;
    int64_t now = mono_ms();
    long tck = sysconf(_SC_CLK_TCK);
    if (ksmd_ticks(&ticks) == 0) {
        if (k->ksmd_at && now > k->ksmd_at && ticks >= k->ksmd_ticks) {
            in->have_cpu = true;
            in->ksmd_cpu = (double)(ticks - k->ksmd_ticks) / (double)(tck > 0 ? tck : 100) /
                           ((double)(now - k->ksmd_at) / 1000.0);
        }
        k->ksmd_ticks = ticks;
        k->ksmd_at = now;
    } else {
        k->ksmd_at = 0;
    }
}

static int write_knob(const char *name, unsigned v)
{
    char path[128], buf[24];
    snprintf(path, sizeof path, "%s/%s", KSM_SYSFS, name);
    int n = snprintf(buf, sizeof buf, "%u\n", v);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t w = write(fd, buf, (size_t)n);
    int saved = errno;
    close(fd);
    errno = saved;
    return w == n ? 0 : -1;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct agent_ksm *k = arg;
    if (!take_lock(k))
        return;
    struct ksm_input in;
    read_input(k, &in);
    struct ksm_decision d;
    ksm_decide(&k->t, &in, &k->st, &d);
    if (!d.changed || d.run < 0)
        return;
    /* the tuning first: a start scans at the chosen rate from its first pass */
    if (write_knob("pages_to_scan", d.pages_to_scan) < 0 ||
        write_knob("sleep_millisecs", d.sleep_ms) < 0 || write_knob("run", (unsigned)d.run) < 0) {
        if (!k->write_failed)
            log_warn("ksm: cannot write %s: %s (asking again every %d s)", KSM_SYSFS,
                     strerror(errno), KSM_INTERVAL_S);
        k->write_failed = true;
        k->st.valid = false; /* written again at the next tick */
        return;
    }
    k->write_failed = false;
    log_info("ksm: run=%d pages_to_scan=%u sleep_millisecs=%u (%s; %llu MiB free of %llu, "
             "saving %llu MiB)",
             d.run, d.pages_to_scan, d.sleep_ms, d.reason,
             (unsigned long long)(in.mem_available >> 20), (unsigned long long)(in.mem_total >> 20),
             (unsigned long long)(ksm_saved_bytes(&in) >> 20));
}

struct agent_ksm *agent_ksm_new(struct event_base *base, const struct yun_config *cfg)
{
    enum ksm_mode mode;
    if (ksm_mode_parse(cfg->ksm, &mode) < 0 || mode == KSM_OFF)
        return NULL;
    struct agent_ksm *k = calloc(1, sizeof *k);
    if (k)
        k->timer = event_new(base, -1, EV_PERSIST, tick, k);
    struct timeval tv = {KSM_INTERVAL_S, 0};
    if (!k || !k->timer || event_add(k->timer, &tv) < 0) {
        log_warn("ksm: cannot start the KSM controller: out of memory");
        if (k && k->timer)
            event_free(k->timer);
        free(k);
        return NULL;
    }
    k->lock_fd = -1;
    k->t = (struct ksm_tuning){mode, cfg->ksm_free_pct, cfg->ksm_psi, cfg->ksm_min_saving};
    event_active(k->timer, EV_TIMEOUT, 0); /* the first decision now, not in 5 s */
    return k;
}

bool agent_ksm_holder(const struct agent_ksm *k)
{
    return k && k->lock_fd >= 0;
}

void agent_ksm_free(struct agent_ksm *k)
{
    if (!k)
        return;
    event_free(k->timer);
    if (k->lock_fd >= 0)
        close(k->lock_fd);
    free(k);
}
