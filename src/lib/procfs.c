/*
 * procfs.c - /proc text parsers for the collectors.
 */
#include "lib/procfs.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int procfs_stat_cpu(const char *t, uint64_t *busy, uint64_t *total)
{
    unsigned long long v[10] = {0};
    if (!t || strncmp(t, "cpu ", 4))
        return -1;
    int n = sscanf(t + 4, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    if (n < 4)
        return -1;
    /* user nice system idle iowait irq softirq steal (guest is inside user) */
    uint64_t tot = 0;
    for (int i = 0; i < 8 && i < n; i++)
        tot += v[i];
    *total = tot;
    *busy = tot - v[3] - (n > 4 ? v[4] : 0);
    return 0;
}

static int meminfo_field(const char *t, const char *key, uint64_t *out)
{
    const char *p = strstr(t, key);
    if (!p)
        return -1;
    unsigned long long kb;
    if (sscanf(p + strlen(key), " %llu", &kb) != 1)
        return -1;
    *out = (uint64_t)kb * 1024;
    return 0;
}

int procfs_meminfo(const char *t, uint64_t *total, uint64_t *available)
{
    if (!t || meminfo_field(t, "MemTotal:", total) < 0)
        return -1;
    if (meminfo_field(t, "MemAvailable:", available) < 0)
        return -1;
    return 0;
}

int procfs_loadavg(const char *t, double *load1)
{
    return t && sscanf(t, "%lf", load1) == 1 ? 0 : -1;
}

static int whole_disk(const char *name)
{
    if (!strncmp(name, "loop", 4) || !strncmp(name, "ram", 3) || !strncmp(name, "dm-", 3) ||
        !strncmp(name, "sr", 2) || !strncmp(name, "zram", 4))
        return 0;
    size_t n = strlen(name);
    if (!strncmp(name, "nvme", 4) || !strncmp(name, "mmcblk", 6))
        return strchr(name, 'p') == NULL || strrchr(name, 'p') < strrchr(name, 'n');
    return n > 0 && !isdigit((unsigned char)name[n - 1]);
}

int procfs_diskstats(const char *t, uint64_t *rd, uint64_t *wr)
{
    if (!t)
        return -1;
    *rd = *wr = 0;
    const char *line = t;
    while (*line) {
        unsigned maj, min;
        char name[64];
        unsigned long long r_ios, r_merged, r_sect, r_ms, w_ios, w_merged, w_sect;
        if (sscanf(line, "%u %u %63s %llu %llu %llu %llu %llu %llu %llu", &maj, &min, name, &r_ios,
                   &r_merged, &r_sect, &r_ms, &w_ios, &w_merged, &w_sect) == 10 &&
            whole_disk(name)) {
            *rd += r_sect * 512;
            *wr += w_sect * 512;
        }
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return 0;
}

int procfs_net_dev(const char *t, uint64_t *rx, uint64_t *tx, uint64_t *rxp, uint64_t *txp)
{
    if (!t)
        return -1;
    *rx = *tx = *rxp = *txp = 0;
    const char *line = t;
    int found = 0;
    while (*line) {
        const char *colon = strchr(line, ':');
        const char *nl = strchr(line, '\n');
        if (colon && (!nl || colon < nl)) {
            const char *s = line;
            while (*s == ' ')
                s++;
            int is_lo = (colon - s == 2 && !strncmp(s, "lo", 2));
            unsigned long long v[10];
            if (!is_lo &&
                sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                       &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) == 10) {
                *rx += v[0];
                *rxp += v[1];
                *tx += v[8];
                *txp += v[9];
                found = 1;
            }
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    (void)found;
    return 0;
}

int procfs_pid_cpu_ticks(const char *t, uint64_t *ticks)
{
    /* The command name may contain spaces and parentheses: parse after the last ')'. */
    const char *rp = t ? strrchr(t, ')') : NULL;
    if (!rp)
        return -1;
    unsigned long long ut, st;
    /* fields after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime(14) stime(15) */
    if (sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    *ticks = ut + st;
    return 0;
}

int procfs_schedstat(const char *t, uint64_t *run_ns, uint64_t *wait_ns)
{
    unsigned long long run, wait;
    if (!t || sscanf(t, "%llu %llu", &run, &wait) != 2)
        return -1;
    *run_ns = run;
    *wait_ns = wait;
    return 0;
}

int procfs_status_rss(const char *t, uint64_t *bytes)
{
    if (!t)
        return -1;
    return meminfo_field(t, "VmRSS:", bytes);
}

/* /proc/pressure/memory: "some avg10=1.23 avg60=..." then "full avg10=...". */
int procfs_psi(const char *t, double *some10, double *full10)
{
    const char *s = t ? strstr(t, "some avg10=") : NULL;
    const char *f = t ? strstr(t, "full avg10=") : NULL;
    char *end;
    if (!s)
        return -1;
    *some10 = strtod(s + 11, &end);
    if (end == s + 11 || *some10 < 0 || *some10 > 100)
        return -1;
    *full10 = f ? strtod(f + 11, &end) : 0;
    if (f && (end == f + 11 || *full10 < 0 || *full10 > 100))
        return -1;
    return 0;
}
