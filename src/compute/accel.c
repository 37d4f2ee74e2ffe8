/*
 * accel.c - KVM or TCG, decided from /proc/cpuinfo and /dev/kvm.
 */
#include "compute/accel.h"
#include "lib/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool word_in(const char *line, size_t len, const char *w)
{
    size_t wl = strlen(w);
    for (size_t i = 0; i + wl <= len; i++) {
        if (memcmp(line + i, w, wl) == 0 && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t') &&
            (i + wl == len || line[i + wl] == ' ' || line[i + wl] == '\n'))
            return true;
    }
    return false;
}

bool cpuinfo_has_hw_virt(const char *ci)
{
    const char *p = ci;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 5 && strncmp(p, "flags", 5) == 0) {
            const char *colon = memchr(p, ':', len);
            if (colon) {
                size_t rest = len - (size_t)(colon + 1 - p);
                if (word_in(colon + 1, rest, "vmx") || word_in(colon + 1, rest, "svm"))
                    return true;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return false;
}

const char *accel_choose(const char *requested)
{
    if (requested && !strcmp(requested, "kvm"))
        return "kvm";
    if (requested && !strcmp(requested, "tcg"))
        return "tcg";
    char *ci = read_file("/proc/cpuinfo", 4 << 20, NULL);
    bool hw = ci && cpuinfo_has_hw_virt(ci);
    free(ci);
    if (!hw)
        return "tcg";
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return "tcg";
    close(fd);
    return "kvm";
}
