/*
 * cmd_events.c - `yun events [-f] [--vm NAME]` (the event log, followed by
 * long polling) and `yun host` (capacity and allocation of this host).
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_event(struct cli *c, json_t *e)
{
    if (c->json) {
        char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(s);
        free(s);
        return;
    }
    char ts[32];
    cli_fmt_time(json_integer_value(json_object_get(e, "ts")), ts, sizeof(ts));
    printf("%s  %-5s %-20s %-14s %-6s %s\n", ts,
           json_string_value(json_object_get(e, "object_type")),
           json_string_value(json_object_get(e, "object")),
           json_string_value(json_object_get(e, "action")),
           json_string_value(json_object_get(e, "result")),
           json_string_value(json_object_get(e, "reason")));
}

int cmd_events(struct cli *c, int argc, char **argv)
{
    bool follow = false;
    const char *object = NULL;
    uint64_t limit = 50;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
            follow = true;
        else if ((!strcmp(argv[i], "--vm") || !strcmp(argv[i], "--object")) && i + 1 < argc)
            object = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            if (parse_u64(argv[++i], 1, 10000, &limit) < 0) {
                fprintf(stderr, "yun: -n must be 1..10000, not '%s'\n", argv[i]);
                return EXIT_USAGE;
            }
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: yun events [-f] [--vm NAME] [-n COUNT]\n"
                   "  -f  follow: print new events as they happen (Ctrl-C to stop)\n"
                   "  -o json prints one JSON object per line\n");
            return 0;
        } else {
            fprintf(stderr, "yun: unknown events option '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    long long after = 0;
    for (bool first = true;; first = false) {
        char path[256], obj[160] = "";
        if (object)
            snprintf(obj, sizeof(obj), "&object=%s", object);
        snprintf(path, sizeof(path), "/v1/events?after=%lld&limit=%d%s%s", after,
                 first ? (int)limit : 1000, obj, first ? "" : "&wait=30");
        int code = 0;
        json_t *r = cli_call(c, "GET", path, NULL, &code);
        if (!r)
            return code;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(r, "events"), i, e) print_event(c, e);
        fflush(stdout);
        after = json_integer_value(json_object_get(r, "last_id"));
        json_decref(r);
        if (!follow)
            return 0;
    }
}

int cmd_host(struct cli *c, int argc, char **argv)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/host", NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(r);
    } else {
        char total[16], cap[16], used[16];
        cli_fmt_bytes(json_integer_value(json_object_get(r, "memory_bytes")), total, sizeof(total));
        cli_fmt_bytes(json_integer_value(json_object_get(r, "memory_capacity")), cap, sizeof(cap));
        cli_fmt_bytes(json_integer_value(json_object_get(r, "memory_used")), used, sizeof(used));
        printf("cpus      %lld (capacity %.0f vCPUs at overcommit %.1f), %lld vCPUs in use\n",
               (long long)json_integer_value(json_object_get(r, "cpus")),
               json_real_value(json_object_get(r, "cpus_capacity")),
               json_real_value(json_object_get(r, "cpu_overcommit")),
               (long long)json_integer_value(json_object_get(r, "cpus_used")));
        printf("memory    %s (capacity %s at overcommit %.1f), %s in use\n", total, cap,
               json_real_value(json_object_get(r, "memory_overcommit")), used);
        printf("vms       %lld defined, %lld running\n",
               (long long)json_integer_value(json_object_get(r, "vms")),
               (long long)json_integer_value(json_object_get(r, "vms_running")));
        printf("accel     %s\ncgroups   %s\nversion   %s\n",
               json_string_value(json_object_get(r, "accel")),
               json_string_value(json_object_get(r, "cgroups")),
               json_string_value(json_object_get(r, "version")));
    }
    json_decref(r);
    return 0;
}
