/*
 * taskfmt.c - how yun shows a task (pure: a TASK object in, text out):
 * its progress line ("clone vol1  42%  4.2 GiB / 10 GiB"), its progress
 * column, whether its state is final, and which task an id prefix names.
 */
#include "cli/taskfmt.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool cli_task_final(const char *state)
{
    return state &&
           (!strcmp(state, "succeeded") || !strcmp(state, "failed") || !strcmp(state, "cancelled"));
}

void cli_fmt_iec(long long b, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (b < 1024) {
        snprintf(buf, len, "%lld B", b < 0 ? 0 : b);
        return;
    }
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 6) {
        v /= 1024;
        i++;
    }
    /* one decimal below 10 unless whole: 4.2 GiB, 10 GiB, 512 MiB */
    if (v < 10 && (long long)(v * 10 + 0.5) % 10)
        snprintf(buf, len, "%.1f %s", v, units[i]);
    else
        snprintf(buf, len, "%.0f %s", v, units[i]);
}

/* done/total of a task's progress; false when it has none (or a bad one). */
static bool progress_of(json_t *task, long long *done, long long *total, const char **unit)
{
    json_t *p = json_object_get(task, "progress");
    json_t *d = json_object_get(p, "done"), *t = json_object_get(p, "total");
    if (!json_is_integer(d) || !json_is_integer(t))
        return false;
    *done = json_integer_value(d);
    *total = json_integer_value(t);
    *unit = json_string_value(json_object_get(p, "unit"));
    return *done >= 0 && *total >= 0;
}

int cli_task_percent(json_t *task)
{
    long long done, total;
    const char *unit;
    if (!progress_of(task, &done, &total, &unit) || total == 0)
        return -1;
    if (done >= total)
        return 100;
    return (int)((double)done * 100.0 / (double)total);
}

void cli_task_progress(json_t *task, char *buf, size_t len)
{
    int pct = cli_task_percent(task);
    if (pct < 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%d%%", pct);
}

void cli_task_line(json_t *task, bool final, char *buf, size_t len)
{
    const char *kind = json_string_value(json_object_get(task, "kind"));
    const char *state = json_string_value(json_object_get(task, "state"));
    const char *obj = json_string_value(json_object_get(json_object_get(task, "object"), "name"));
    if (!obj)
        obj = json_string_value(json_object_get(json_object_get(task, "object"), "id"));
    const char *verb = kind ? strrchr(kind, '.') : NULL;
    verb = verb ? verb + 1 : kind ? kind : "task";
    size_t n = (size_t)snprintf(buf, len, "%s %s", verb, obj ? obj : "?");
    if (n >= len)
        return;
    long long done, total;
    const char *unit;
    bool has = progress_of(task, &done, &total, &unit);
    int pct = cli_task_percent(task);
    if (final || pct < 0)
        n += (size_t)snprintf(buf + n, len - n, "  %s", state ? state : "?");
    if (n < len && pct >= 0 && !final)
        n += (size_t)snprintf(buf + n, len - n, "  %d%%", pct);
    if (n < len && has) {
        char d[32], t[32];
        if (unit && !strcmp(unit, "bytes")) {
            cli_fmt_iec(done, d, sizeof(d));
            cli_fmt_iec(total, t, sizeof(t));
            snprintf(buf + n, len - n, "  %s / %s", d, t);
        } else {
            n += (size_t)snprintf(buf + n, len - n, "  %lld / %lld%s%s", done, total,
                                  unit ? " " : "", unit ? unit : "");
        }
    }
    /* an operation's live figures (vm.migrate): its phase, what is left */
    json_t *d = json_object_get(task, "detail");
    const char *phase = json_string_value(json_object_get(d, "phase"));
    if (n < len && phase && !final) {
        json_t *ram = json_object_get(d, "ram"), *disk = json_object_get(d, "disk");
        n += (size_t)snprintf(buf + n, len - n, "  [%s", phase);
        if (n < len && disk && !ram)
            n += (size_t)snprintf(buf + n, len - n, " disk %lld/%lld",
                                  (long long)json_integer_value(json_object_get(disk, "offset")),
                                  (long long)json_integer_value(json_object_get(disk, "len")));
        if (n < len && ram)
            n += (size_t)snprintf(
                buf + n, len - n, " ram left %lld, dirty %lld pages/s, downtime ~%lld ms",
                (long long)json_integer_value(json_object_get(ram, "remaining")),
                (long long)json_integer_value(json_object_get(ram, "dirty_pages_rate")),
                (long long)json_integer_value(json_object_get(d, "expected_downtime_ms")));
        if (n < len)
            snprintf(buf + n, len - n, "]");
    }
}

int cli_task_match(json_t *tasks, const char *prefix, const char **id)
{
    size_t i, plen = strlen(prefix);
    json_t *t;
    int n = 0;
    *id = NULL;
    if (plen == 0)
        return 0;
    json_array_foreach(tasks, i, t)
    {
        const char *tid = json_string_value(json_object_get(t, "id"));
        if (!tid || strncasecmp(tid, prefix, plen))
            continue;
        if (!strcasecmp(tid, prefix)) {
            *id = tid; /* a whole id is never ambiguous */
            return 1;
        }
        if (!*id)
            *id = tid;
        n++;
    }
    if (n != 1)
        *id = NULL;
    return n;
}
