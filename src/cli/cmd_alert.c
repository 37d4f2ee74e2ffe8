/*
 * cmd_alert.c - `yun alert ...`: alert rules (add, list, show, rm), silences,
 * and the alert history.
 */
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void alert_usage(FILE *f)
{
    fprintf(f, "usage: yun alert COMMAND\n"
               "  rule add NAME --metric M [--scope vms|host|vm:NAME] [--agg avg|max|min|last]\n"
               "               [--window 60s] --op '>' --threshold N [--for 30s] [--repeat 1h]\n"
               "               [--severity info|warning|critical] [--label K=V ...]\n"
               "               [--channel webhook:URL|email:ADDR|sms:NUMBER ...]\n"
               "  rule list | rule show NAME | rule rm NAME\n"
               "  silence NAME --for 1h        suppress a rule's notifications\n"
               "  unsilence NAME\n"
               "  list [--state pending|firing|resolved]   alert history, newest first\n"
               "VM metrics: cpu mem_rss balloon disk_read_bps disk_write_bps disk_read_iops\n"
               "            disk_write_iops disk_read_latency_ms disk_write_latency_ms\n"
               "host metrics: cpu load1 mem_used mem_available disk_read_bps disk_write_bps\n"
               "              net_rx_bps net_tx_bps\n");
}

static int rule_add(struct cli *c, int argc, char **argv)
{
    if (argc < 1 || argv[0][0] == '-') {
        fprintf(stderr, "yun: alert rule add needs a NAME\n");
        return EXIT_USAGE;
    }
    json_t *b = json_pack("{s:s}", "name", argv[0]);
    json_t *labels = json_object(), *channels = json_array();
    static const char *const str_opts[][2] = {{"--metric", "metric"}, {"--scope", "scope"},
                                              {"--agg", "agg"},       {"--window", "window"},
                                              {"--op", "op"},         {"--for", "for"},
                                              {"--repeat", "repeat"}, {"--severity", "severity"}};
    for (int i = 1; i < argc; i++) {
        bool done = false;
        if (i + 1 >= argc) {
            fprintf(stderr, "yun: option %s needs a value\n", argv[i]);
            goto usage;
        }
        for (size_t k = 0; k < sizeof(str_opts) / sizeof(str_opts[0]) && !done; k++)
            if (!strcmp(argv[i], str_opts[k][0])) {
                json_object_set_new(b, str_opts[k][1], json_string(argv[++i]));
                done = true;
            }
        if (done)
            continue;
        if (!strcmp(argv[i], "--threshold")) {
            char *end;
            double v = strtod(argv[++i], &end);
            if (*end || end == argv[i] || !isfinite(v)) {
                fprintf(stderr, "yun: --threshold takes a finite number, not '%s'\n", argv[i]);
                goto usage;
            }
            json_object_set_new(b, "threshold", json_real(v));
        } else if (!strcmp(argv[i], "--label")) {
            char *eq = strchr(argv[++i], '=');
            if (!eq) {
                fprintf(stderr, "yun: --label takes KEY=VALUE\n");
                goto usage;
            }
            *eq = 0;
            json_object_set_new(labels, argv[i], json_string(eq + 1));
        } else if (!strcmp(argv[i], "--channel")) {
            json_array_append_new(channels, json_string(argv[++i]));
        } else {
            fprintf(stderr, "yun: unknown option '%s' for alert rule add\n", argv[i]);
            goto usage;
        }
    }
    json_object_set_new(b, "labels", labels);
    json_object_set_new(b, "channels", channels);
    int code = 0;
    json_t *r = cli_call(c, "POST", "/v1/alert-rules", b, &code);
    json_decref(b);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else
        printf("alert rule %s added\n", json_string_value(json_object_get(r, "name")));
    json_decref(r);
    return 0;
usage:
    json_decref(b);
    json_decref(labels);
    json_decref(channels);
    return EXIT_USAGE;
}

static void print_rule(json_t *r)
{
    char cond[160], silenced[32] = "";
    snprintf(cond, sizeof(cond), "%s(%s,%llds) %s %g for %llds",
             json_string_value(json_object_get(r, "agg")),
             json_string_value(json_object_get(r, "metric")),
             (long long)json_integer_value(json_object_get(r, "window")),
             json_string_value(json_object_get(r, "op")),
             json_number_value(json_object_get(r, "threshold")),
             (long long)json_integer_value(json_object_get(r, "for")));
    long long until = json_integer_value(json_object_get(r, "silenced_until"));
    if (until > 0) {
        char t[32];
        cli_fmt_time(until, t, sizeof(t));
        snprintf(silenced, sizeof(silenced), " silenced until %s", t);
    }
    printf("%-16s %-12s %-40s %-8s %lld/%lld%s\n", json_string_value(json_object_get(r, "name")),
           json_string_value(json_object_get(r, "scope")), cond,
           json_string_value(json_object_get(r, "severity")),
           (long long)json_integer_value(json_object_get(r, "pending")),
           (long long)json_integer_value(json_object_get(r, "firing")), silenced);
}

static int rules(struct cli *c, int argc, char **argv)
{
    if (argc < 1) {
        alert_usage(stderr);
        return EXIT_USAGE;
    }
    int code = 0;
    json_t *r;
    char path[200];
    if (!strcmp(argv[0], "add"))
        return rule_add(c, argc - 1, argv + 1);
    if (!strcmp(argv[0], "list") || !strcmp(argv[0], "ls")) {
        if (!(r = cli_call(c, "GET", "/v1/alert-rules", NULL, &code)))
            return code;
        if (c->json) {
            cli_print_json(json_object_get(r, "rules"));
        } else {
            printf("%-16s %-12s %-40s %-8s %s\n", "NAME", "SCOPE", "CONDITION", "SEVERITY",
                   "PENDING/FIRING");
            size_t i;
            json_t *x;
            json_array_foreach(json_object_get(r, "rules"), i, x) print_rule(x);
        }
        json_decref(r);
        return 0;
    }
    if (argc == 2 && (!strcmp(argv[0], "show") || !strcmp(argv[0], "rm"))) {
        snprintf(path, sizeof(path), "/v1/alert-rules/%s", argv[1]);
        bool rm = !strcmp(argv[0], "rm");
        if (!(r = cli_call(c, rm ? "DELETE" : "GET", path, NULL, &code)))
            return code;
        if (rm && !c->json)
            printf("alert rule %s removed\n", argv[1]);
        else
            cli_print_json(r);
        json_decref(r);
        return 0;
    }
    fprintf(stderr, "yun: unknown alert rule command '%s'\n", argv[0]);
    return EXIT_USAGE;
}

int cmd_alert(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        alert_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            alert_usage(stdout);
            return 0;
        }
    const char *sub = argv[1];
    int code = 0;
    json_t *r;
    if (!strcmp(sub, "rule"))
        return rules(c, argc - 2, argv + 2);
    if (!strcmp(sub, "silence") || !strcmp(sub, "unsilence")) {
        bool on = !strcmp(sub, "silence");
        if (argc != (on ? 5 : 3) || (on && strcmp(argv[3], "--for"))) {
            fprintf(stderr, "yun: usage: yun alert silence NAME --for 1h | unsilence NAME\n");
            return EXIT_USAGE;
        }
        char path[200];
        snprintf(path, sizeof(path), "/v1/alert-rules/%s/silence", argv[2]);
        json_t *b = on ? json_pack("{s:s}", "for", argv[4]) : json_pack("{s:i}", "for", 0);
        r = cli_call(c, "POST", path, b, &code);
        json_decref(b);
        if (!r)
            return code;
        printf("alert rule %s %s\n", argv[2], on ? "silenced" : "unsilenced");
        json_decref(r);
        return 0;
    }
    if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
        char path[128] = "/v1/alerts?limit=100";
        if (argc == 4 && !strcmp(argv[2], "--state"))
            snprintf(path, sizeof(path), "/v1/alerts?limit=100&state=%s", argv[3]);
        else if (argc != 2) {
            fprintf(stderr, "yun: usage: yun alert list [--state S]\n");
            return EXIT_USAGE;
        }
        if (!(r = cli_call(c, "GET", path, NULL, &code)))
            return code;
        if (c->json) {
            cli_print_json(json_object_get(r, "alerts"));
        } else {
            printf("%-19s %-16s %-20s %-9s %-8s %s\n", "STARTED", "RULE", "OBJECT", "STATE",
                   "SEVERITY", "VALUE");
            size_t i;
            json_t *a;
            json_array_foreach(json_object_get(r, "alerts"), i, a)
            {
                char t[32];
                cli_fmt_time(json_integer_value(json_object_get(a, "started_at")), t, sizeof(t));
                printf("%-19s %-16s %-20s %-9s %-8s %.2f\n", t,
                       json_string_value(json_object_get(a, "rule")),
                       json_string_value(json_object_get(a, "object")),
                       json_string_value(json_object_get(a, "state")),
                       json_string_value(json_object_get(a, "severity")),
                       json_number_value(json_object_get(a, "value")));
            }
        }
        json_decref(r);
        return 0;
    }
    fprintf(stderr, "yun: unknown alert command '%s'\n", sub);
    alert_usage(stderr);
    return EXIT_USAGE;
}
