/*
 * procfs.h - parsers for the /proc files the collectors read. They take the
 * file's text, so they are unit-tested on captured samples.
 */
#ifndef YUN_PROCFS_H
#define YUN_PROCFS_H

#include <stdint.h>

/* /proc/stat: jiffies of the "cpu" line, busy (all but idle+iowait) and total. */
int procfs_stat_cpu(const char *text, uint64_t *busy, uint64_t *total);
/* /proc/meminfo: MemTotal and MemAvailable in bytes. */
int procfs_meminfo(const char *text, uint64_t *total, uint64_t *available);
/* /proc/pressure/memory: the avg10 of "some" and of "full" (0 when the
 * file has no full line), percent. */
int procfs_psi(const char *text, double *some10, double *full10);
/* /proc/loadavg: the 1-minute load. */
int procfs_loadavg(const char *text, double *load1);
/* /proc/diskstats: sectors read and written, summed over whole disks
 * (partitions, loop, ram and device-mapper devices are skipped). Bytes. */
int procfs_diskstats(const char *text, uint64_t *rd_bytes, uint64_t *wr_bytes);
/* /proc/net/dev: bytes and packets summed over every interface but lo. */
int procfs_net_dev(const char *text, uint64_t *rx_bytes, uint64_t *tx_bytes, uint64_t *rx_pkts,
                   uint64_t *tx_pkts);
/* /proc/PID/stat or /proc/PID/task/TID/stat: utime+stime in clock ticks. */
int procfs_pid_cpu_ticks(const char *text, uint64_t *ticks);
/* /proc/PID/task/TID/schedstat: "run_ns wait_ns slices": the time the
 * thread ran on a CPU and the time it waited runnable for one. */
int procfs_schedstat(const char *text, uint64_t *run_ns, uint64_t *wait_ns);
/* /proc/PID/status: VmRSS in bytes. */
int procfs_status_rss(const char *text, uint64_t *bytes);

#endif
