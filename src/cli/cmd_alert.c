/*
 * cmd_alert.c - `yun alert ...`: alert rules (add, list, show, rm), silences,
 * and the alert history (their rows of the command table and handlers).
 */
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rule_add(struct cli *c, const struct cli_args *a)
{
    json_t *b = json_pack("{s:s}", "name", a->argv[0]);
    json_t *labels = json_object(), *channels = json_array();
    static const char *const str_opts[] = {"metric", "scope", "agg",    "window",
                                           "op",     "for",   "repeat", "severity"};
    const char *v;
    for (size_t k = 0; k < sizeof(str_opts) / sizeof(str_opts[0]); k++)
        if ((v = cli_val(a, str_opts[k])))
            json_object_set_new(b, str_opts[k], json_string(v));
    if ((v = cli_val(a, "threshold"))) {
        char *end;
        double t = strtod(v, &end);
        if (*end || end == v || !isfinite(t)) {
            fprintf(stderr, "yun: --threshold takes a finite number, not '%s'\n", v);
            goto usage;
        }
        json_object_set_new(b, "threshold", json_real(t));
    }
    int it = 0;
    while ((v = cli_val_next(a, "label", &it))) {
        const char *eq = strchr(v, '=');
        if (!eq) {
            fprintf(stderr, "yun: --label takes KEY=VALUE, not '%s'\n", v);
            goto usage;
        }
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - v), v);
        json_object_set_new(labels, key, json_string(eq + 1));
    }
    it = 0;
    while ((v = cli_val_next(a, "channel", &it)))
        json_array_append_new(channels, json_string(v));
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

static int rule_list(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/alert-rules", NULL, &code);
    if (!r)
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

static void rule_path(char *buf, size_t len, const char *name, const char *suffix)
{
    char *enc = cli_url_encode(name);
    snprintf(buf, len, "/v1/alert-rules/%s%s", enc ? enc : "", suffix);
    free(enc);
}

static int rule_show_rm(struct cli *c, const struct cli_args *a)
{
    char path[600];
    bool rm = strcmp(a->cmd->words, "alert rule show") != 0;
    int code = 0;
    rule_path(path, sizeof(path), a->argv[0], "");
    json_t *r = cli_call(c, rm ? "DELETE" : "GET", path, NULL, &code);
    if (!r)
        return code;
    if (rm && !c->json)
        printf("alert rule %s removed\n", a->argv[0]);
    else
        cli_print_json(r);
    json_decref(r);
    return 0;
}

static int silence(struct cli *c, const struct cli_args *a)
{
    bool on = !strcmp(a->cmd->words, "alert silence");
    char path[600];
    int code = 0;
    rule_path(path, sizeof(path), a->argv[0], "/silence");
    json_t *b = on ? json_pack("{s:s}", "for", cli_val(a, "for")) : json_pack("{s:i}", "for", 0);
    json_t *r = cli_call(c, "POST", path, b, &code);
    json_decref(b);
    if (!r)
        return code;
    printf("alert rule %s %s\n", a->argv[0], on ? "silenced" : "unsilenced");
    json_decref(r);
    return 0;
}

static int alert_list(struct cli *c, const struct cli_args *a)
{
    char path[300] = "/v1/alerts?limit=100";
    const char *state = cli_val(a, "state");
    if (state) {
        char *enc = cli_url_encode(state);
        snprintf(path, sizeof(path), "/v1/alerts?limit=100&state=%s", enc ? enc : "");
        free(enc);
    }
    int code = 0;
    json_t *r = cli_call(c, "GET", path, NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(json_object_get(r, "alerts"));
    } else {
        printf("%-19s %-16s %-20s %-9s %-8s %s\n", "STARTED", "RULE", "OBJECT", "STATE", "SEVERITY",
               "VALUE");
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(r, "alerts"), i, x)
        {
            char t[32];
            cli_fmt_time(json_integer_value(json_object_get(x, "started_at")), t, sizeof(t));
            printf("%-19s %-16s %-20s %-9s %-8s %.2f\n", t,
                   json_string_value(json_object_get(x, "rule")),
                   json_string_value(json_object_get(x, "object")),
                   json_string_value(json_object_get(x, "state")),
                   json_string_value(json_object_get(x, "severity")),
                   json_number_value(json_object_get(x, "value")));
        }
    }
    json_decref(r);
    return 0;
}

static const struct cli_arg arg_rule[] = {{"NAME", CLI_K_RULE, NULL, 0}, {0}};

const struct cli_cmd cmd_alert_entries[] = {
    {.words = "alert", .summary = "alert rules, silences and alert history"},
    {.words = "alert rule", .summary = "alert rules"},
    {.words = "alert rule add",
     .summary = "a rule: fires when a metric's aggregate crosses a threshold for a while",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_TEXT, NULL, 0}, {0}},
     .opts =
         (const struct cli_opt[]){
             {"metric", 0, "M", CLI_K_TEXT, NULL, 0, "the metric (listed below)"},
             {"scope", 0, "vms|host|vm:NAME", CLI_K_TEXT, NULL, 0, "what it watches (vms)"},
             {"agg", 0, "AGG", CLI_K_CHOICE, "avg max min last", 0, "aggregate over the window"},
             {"window", 0, "DURATION", CLI_K_TEXT, NULL, 0, "aggregation window, e.g. 60s"},
             {"op", 0, "OP", CLI_K_CHOICE, "> >= < <= == !=", 0, "comparison, e.g. '>'"},
             {"threshold", 0, "N", CLI_K_TEXT, NULL, 0, "the number it compares with"},
             {"for", 0, "DURATION", CLI_K_TEXT, NULL, 0, "how long it must hold, e.g. 30s"},
             {"repeat", 0, "DURATION", CLI_K_TEXT, NULL, 0, "re-notify while firing, e.g. 1h"},
             {"severity", 0, "S", CLI_K_CHOICE, "info warning critical", 0, "its severity"},
             {"label", 0, "K=V", CLI_K_TEXT, NULL, CLI_OPT_REPEAT, "a label on its alerts"},
             {"channel", 0, "webhook:URL|email:ADDR|sms:NUMBER", CLI_K_TEXT, NULL, CLI_OPT_REPEAT,
              "where notifications go"},
             {0}},
     .more = "VM metrics: cpu mem_rss balloon disk_read_bps disk_write_bps disk_read_iops\n"
             "            disk_write_iops disk_read_latency_ms disk_write_latency_ms\n"
             "host metrics: cpu load1 mem_used mem_available disk_read_bps disk_write_bps\n"
             "              net_rx_bps net_tx_bps\n",
     .run = rule_add},
    {.words = "alert rule list",
     .alias = "ls",
     .summary = "rules with pending/firing counts",
     .run = rule_list},
    {.words = "alert rule show",
     .summary = "one rule (JSON)",
     .args = arg_rule,
     .run = rule_show_rm},
    {.words = "alert rule rm",
     .alias = "delete",
     .summary = "remove a rule",
     .args = arg_rule,
     .run = rule_show_rm},
    {.words = "alert silence",
     .summary = "suppress a rule's notifications for a while",
     .args = arg_rule,
     .opts =
         (const struct cli_opt[]){
             {"for", 0, "DURATION", CLI_K_TEXT, NULL, CLI_OPT_REQUIRED, "how long, e.g. 1h"}, {0}},
     .run = silence},
    {.words = "alert unsilence", .summary = "notify again", .args = arg_rule, .run = silence},
    {.words = "alert list",
     .alias = "ls",
     .summary = "alert history, newest first",
     .opts = (const struct cli_opt[]){{"state", 0, "STATE", CLI_K_CHOICE, "pending firing resolved",
                                       0, "only alerts in STATE"},
                                      {0}},
     .run = alert_list},
    {0},
};
