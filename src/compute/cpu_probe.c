/*
 * cpu_probe.c - the usable CPU models of this host's QEMU (cpu_probe.h).
 * QEMU reads the three QMP commands from a memfd as its stdin and exits
 * at "quit"; its stdout is the replies.
 */
#include "compute/cpu_probe.h"
#include "lib/proc.h"

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MS 15000

static const char qmp_in[] = "{\"execute\":\"qmp_capabilities\"}\n"
                             "{\"execute\":\"query-cpu-definitions\"}\n"
                             "{\"execute\":\"quit\"}\n";

/* "Name-v12" is a versioned alias */
static bool versioned(const char *name)
{
    const char *v = strrchr(name, '-');
    if (!v || v[1] != 'v' || !v[2])
        return false;
    for (const char *p = v + 2; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

int cpu_probe_parse(const char *qmp_out, char *out, size_t len, char *err, size_t errlen)
{
    if (len)
        out[0] = 0;
    size_t o = 0;
    for (const char *line = qmp_out; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        json_t *j = json_loadb(line, n, JSON_DISABLE_EOF_CHECK, NULL);
        line += n + (nl != NULL);
        json_t *defs = json_object_get(j, "return");
        if (!json_is_array(defs)) {
            json_decref(j);
            continue;
        }
        size_t i;
        json_t *d;
        json_array_foreach(defs, i, d)
        {
            const char *name = json_string_value(json_object_get(d, "name"));
            json_t *un = json_object_get(d, "unavailable-features");
            if (!name || !name[0] || strlen(name) > 63 || versioned(name) ||
                json_is_true(json_object_get(d, "deprecated")) || !json_is_array(un) ||
                json_array_size(un) > 0)
                continue;
            int w = snprintf(out + o, len - o, "%s%s", o ? "," : "", name);
            if (w < 0 || (size_t)w >= len - o) {
                out[o] = 0; /* whole names only */
                break;
            }
            o += (size_t)w;
        }
        json_decref(j);
        return 0;
    }
    snprintf(err, errlen, "no query-cpu-definitions reply in QEMU's output");
    return -1;
}

static int stdin_from(void *arg)
{
    int fd = *(int *)arg;
    return dup2(fd, 0) < 0 ? -1 : 0;
}

int cpu_probe_run(const char *qemu, const char *accel, char *out, size_t len, char *err,
                  size_t errlen)
{
    if (len)
        out[0] = 0;
    int fd = memfd_create("yun-cpu-probe", MFD_CLOEXEC);
    if (fd < 0 || write(fd, qmp_in, sizeof(qmp_in) - 1) != (ssize_t)(sizeof(qmp_in) - 1) ||
        lseek(fd, 0, SEEK_SET) < 0) {
        snprintf(err, errlen, "memfd for QEMU's input: %m");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char acc[16];
    snprintf(acc, sizeof acc, "%s", accel);
    char *argv[] = {(char *)qemu, "-machine", "none", "-accel", acc, "-nodefaults",
                    "-display",   "none",     "-qmp", "stdio",  NULL};
    struct proc_result r;
    int st = proc_run_ex(argv, PROBE_TIMEOUT_MS, &r, stdin_from, &fd);
    close(fd);
    int ret = cpu_probe_parse(r.out, out, len, err, errlen);
    if (ret < 0) {
        char last[200];
        proc_last_line(r.err, last, sizeof last);
        snprintf(err, errlen, "%s -accel %s%s: %s", qemu, accel, r.timed_out ? " timed out" : "",
                 last[0]   ? last
                 : st == 0 ? "no query-cpu-definitions reply"
                           : "failed");
    }
    proc_result_free(&r);
    return ret;
}
