/*
 * fuzz_mountinfo.c - cgroup detection from /proc/self/mountinfo text and the
 * per-VM limit checks (cpuset syntax), compute/cgroup_detect.c.
 */
#include "fuzz.h"

#include "compute/cgroup.h"
#include "compute/cgroup_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cg_layout lay;
    char unified[256];
    FILE *f = fuzz_stream(data, size);
    cg_mountinfo_scan(f, &lay, unified, sizeof(unified));
    fclose(f);
    FUZZ_ASSERT(memchr(unified, 0, sizeof(unified)));
    if (cg_layout_v1(&lay) == 0) {
        FUZZ_ASSERT(lay.mode == CG_V1);
        FUZZ_ASSERT(lay.cpu[0] || lay.memory[0] || lay.cpuset[0] || lay.cpuacct[0]);
        FUZZ_ASSERT(memchr(lay.root, 0, sizeof(lay.root)));
    } else {
        FUZZ_ASSERT(lay.mode == CG_NONE && !lay.root[0]);
    }

    /* The first line as a cpuset, as a VM's limits carry it. */
    struct cg_limits l = {0};
    size_t n = 0;
    while (n < size && n < sizeof(l.cpuset) - 1 && data[n] != '\n')
        n++;
    memcpy(l.cpuset, data, n);
    l.cpuset[n] = 0;
    char err[256] = "";
    if (cg_limits_validate(&l, 8, CG_SWAP_UNKNOWN, err, sizeof(err)) < 0)
        FUZZ_ASSERT(err[0]);
    return 0;
}
