/*
 * cmd_events.c - `yun events [-f] [--vm NAME]` (the event log, followed by
 * long polling): its row of the command table and its handler.
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

static int events(struct cli *c, const struct cli_args *a)
{
    bool follow = cli_flag(a, "follow");
    const char *object = cli_val(a, "vm"), *n = cli_val(a, "count");
    if (!object)
        object = cli_val(a, "object");
    uint64_t limit = 50;
    if (n && parse_u64(n, 1, 10000, &limit) < 0) {
        fprintf(stderr, "yun: -n must be 1..10000, not '%s'\n", n);
        return EXIT_USAGE;
    }
    char *enc = object ? cli_url_encode(object) : NULL;
    long long after = 0;
    for (bool first = true;; first = false) {
        char path[600], obj[400] = "";
        if (enc)
            snprintf(obj, sizeof(obj), "&object=%s", enc);
        snprintf(path, sizeof(path), "/v1/events?after=%lld&limit=%d%s%s", after,
                 first ? (int)limit : 1000, obj, first ? "" : "&wait=30");
        int code = 0;
        json_t *r = cli_call(c, "GET", path, NULL, &code);
        if (!r) {
            free(enc);
            return code;
        }
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(r, "events"), i, e) print_event(c, e);
        fflush(stdout);
        after = json_integer_value(json_object_get(r, "last_id"));
        json_decref(r);
        if (!follow) {
            free(enc);
            return 0;
        }
    }
}

const struct cli_cmd cmd_events_entries[] = {
    {.words = "events",
     .summary = "the event log, oldest first; -f follows it",
     .opts =
         (const struct cli_opt[]){
             {"follow", 'f', NULL, CLI_K_TEXT, NULL, 0,
              "print new events as they happen (Ctrl-C stops)"},
             {"vm", 0, "NAME", CLI_K_VM, NULL, 0, "only this VM's events"},
             {"object", 0, "NAME", CLI_K_TEXT, NULL, 0, "only this object's events"},
             {"count", 'n', "COUNT", CLI_K_TEXT, NULL, 0, "the last COUNT events (50)"},
             {0}},
     .more = "with -o json, one JSON object per line\n",
     .run = events},
    {0},
};
