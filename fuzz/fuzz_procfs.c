/*
 * fuzz_procfs.c - the /proc text parsers: the host collectors'
 * (lib/procfs.c), the stat fields yund reads of a process (zombie state,
 * start time) and QEMU command-line matching (compute/qemu_proc.c).
 */
#include "fuzz.h"

#include "compute/qemu_proc.h"
#include "lib/util.h"
#include "lib/procfs.h"

#define VMS_DIR "/srv/yun/vms"
#define VM_ID   "0a1b2c3d-0000-4000-8000-00000000abcd"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *t = fuzz_cstr(data, size);
    uint64_t a, b, c, d;
    double load;
    if (procfs_stat_cpu(t, &a, &b) == 0)
        FUZZ_ASSERT(a <= b || b < a); /* values are used, whatever they are */
    procfs_meminfo(t, &a, &b);
    procfs_loadavg(t, &load);
    procfs_diskstats(t, &a, &b);
    procfs_net_dev(t, &a, &b, &c, &d);
    procfs_pid_cpu_ticks(t, &a);
    procfs_status_rss(t, &a);
    (void)proc_stat_zombie(t);
    unsigned long long ticks;
    (void)proc_stat_starttime(t, &ticks);
    free(t);

    /* /proc/PID/cmdline is NUL-separated and read whole, as qemu_scan_run
     * reads it: into a buffer with a NUL after the last byte. */
    char *cmd = fuzz_cstr(data, size);
    (void)qemu_cmdline_matches(cmd, size, VMS_DIR, VM_ID);
    free(cmd);
    return 0;
}
