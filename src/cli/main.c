/*
 * main.c - yun, the command-line client. Takes the global options, then
 * finds the command in the command table (the rows each cmd_*.c exports,
 * concatenated here) and runs it; usage, --help and completion come from the
 * same table (help.c). Talks REST to yund over its Unix socket, or over TCP
 * with --url and --token.
 */
#include "cli/cli.h"
#include "lib/version.h"
#include "sim/sim_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run_sim(struct cli *c, const struct cli_args *a);
static int run_completion(struct cli *c, const struct cli_args *a);
static int run_help(struct cli *c, const struct cli_args *a);
static int run_dump(struct cli *c, const struct cli_args *a);
static int run_man(struct cli *c, const struct cli_args *a);
static int run_version(struct cli *c, const struct cli_args *a);

static const struct cli_cmd main_entries[] = {
    {.words = "sim",
     .summary = "trace-driven data-centre simulator (yun sim --help)",
     .flags = CLI_CMD_RAW,
     .run = run_sim},
    {.words = "sim run", .summary = "replay a trace", .flags = CLI_CMD_RAW, .run = run_sim},
    {.words = "sim place", .summary = "one placement", .flags = CLI_CMD_RAW, .run = run_sim},
    {.words = "sim synth",
     .summary = "write a synthetic trace",
     .flags = CLI_CMD_RAW,
     .run = run_sim},
    {.words = "sim ilp",
     .summary = "optimal placement (ILP)",
     .flags = CLI_CMD_RAW,
     .run = run_sim},
    {.words = "completion",
     .summary = "print the shell completion script: source <(yun completion bash)",
     .args = (const struct cli_arg[]){{"SHELL", CLI_K_CHOICE, "bash", 0}, {0}},
     .run = run_completion},
    {.words = "help",
     .summary = "this help, or a command's (yun help vm create)",
     .args = (const struct cli_arg[]){{"COMMAND", CLI_K_TEXT, NULL, CLI_ARG_OPTIONAL},
                                      {"SUBCOMMAND", CLI_K_TEXT, NULL, CLI_ARG_OPTIONAL},
                                      {"SUBCOMMAND", CLI_K_TEXT, NULL, CLI_ARG_OPTIONAL},
                                      {0}},
     .flags = CLI_CMD_HIDDEN,
     .run = run_help},
    {.words = "version",
     .summary = "this yun's version and git commit, and the version of the yund it talks to",
     .opts = (const struct cli_opt[]){{"client", 0, NULL, 0, NULL, 0, "this yun's only (no yund)"},
                                      {0}},
     .run = run_version},
    {.words = "__man",
     .summary = "the yun(1) manual page, in roff",
     .flags = CLI_CMD_HIDDEN,
     .run = run_man},
    {.words = "__commands",
     .summary = "the command table as JSON (for tests)",
     .flags = CLI_CMD_HIDDEN,
     .run = run_dump},
    {0},
};

/* The whole table, in the order help lists it. */
static cli_table table = {cmd_vm_entries,
                          cmd_image_entries,
                          cmd_volume_entries,
                          cmd_snapshot_entries,
                          cmd_task_entries,
                          cmd_events_entries,
                          cmd_host_entries,
                          cmd_top_entries,
                          cmd_alert_entries,
                          cmd_place_entries,
                          cmd_migrate_entries,
                          main_entries,
                          NULL};

static int run_sim(struct cli *c, const struct cli_args *a)
{
    return sim_cli_main(a->rest_argc, a->rest);
}

static int run_completion(struct cli *c, const struct cli_args *a)
{
    if (strcmp(a->argv[0], "bash")) {
        fprintf(stderr, "yun: completion knows bash only, not '%s'\n", a->argv[0]);
        return EXIT_USAGE;
    }
    cli_completion_bash(table, stdout);
    return 0;
}

static int run_dump(struct cli *c, const struct cli_args *a)
{
    cli_dump_json(table, stdout);
    return 0;
}

static int run_man(struct cli *c, const struct cli_args *a)
{
    cli_man(table, stdout);
    return 0;
}

static int run_version(struct cli *c, const struct cli_args *a)
{
    if (c->json && cli_flag(a, "client")) {
        printf("{\"version\":\"%s\",\"commit\":\"%s\"}\n", yun_version(), yun_commit());
        return 0;
    }
    if (!c->json)
        printf("yun %s (commit %s)\n", yun_version(), yun_commit());
    if (cli_flag(a, "client"))
        return 0;
    int code;
    json_t *r = cli_call(c, "GET", "/v1/version", NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        json_object_set_new(
            r, "client", json_pack("{s:s,s:s}", "version", yun_version(), "commit", yun_commit()));
        cli_print_json(r);
    } else {
        printf("yund %s (commit %s, protocol %lld, schema %lld)\n",
               json_string_value(json_object_get(r, "version")),
               json_string_value(json_object_get(r, "commit")),
               (long long)json_integer_value(json_object_get(r, "protocol")),
               (long long)json_integer_value(json_object_get(r, "schema")));
    }
    json_decref(r);
    return 0;
}

/* Help for the command that words name (all of them: 0 for the top level). */
static int help_for(int argc, char **argv, FILE *f, int code)
{
    int used = 0;
    const struct cli_cmd *cmd = argc ? cli_match(table, argc, argv, &used) : NULL;
    if (argc && used != argc) {
        fprintf(stderr, "yun: no command '%s' (see: yun --help)\n", argv[used]);
        return EXIT_USAGE;
    }
    if (!cmd)
        cli_help_top(table, f);
    else if (!cmd->run)
        cli_help_group(table, cmd, f);
    else
        cli_help_cmd(cmd, f);
    return code;
}

static int run_help(struct cli *c, const struct cli_args *a)
{
    return help_for(a->argc, (char **)a->argv, stdout, 0);
}

/* Takes the global options out of argv (anywhere before "--", and not after
 * a raw command such as `sim`, whose own options pass through untouched).
 * Returns the new argc, or -1 after an error line. */
static int take_globals(struct cli *c, int argc, char **argv)
{
    int n = 0;
    bool passthrough = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!passthrough && n == 0) {
            int used;
            const struct cli_cmd *cmd = cli_match(table, 1, argv + i, &used);
            passthrough = cmd && (cmd->flags & CLI_CMD_RAW);
        }
        if (passthrough || !strcmp(a, "--")) {
            passthrough = true;
            argv[n++] = argv[i];
            continue;
        }
        const struct cli_opt *g = NULL;
        const char *val = NULL;
        for (const struct cli_opt *o = cli_global_opts; o->name && !g; o++) {
            size_t len = strlen(o->name);
            if ((a[0] == '-' && a[1] == o->short_name && o->short_name && !a[2]) ||
                (!strncmp(a, "--", 2) && !strcmp(a + 2, o->name)))
                g = o;
            else if (!strncmp(a, "--", 2) && !strncmp(a + 2, o->name, len) && a[2 + len] == '=') {
                g = o;
                val = a + 3 + len;
            }
        }
        if (!g) {
            argv[n++] = argv[i];
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "yun: option %s needs a value\n", a);
                return -1;
            }
            val = argv[++i];
        }
        if (!strcmp(g->name, "output")) {
            if (strcmp(val, "json") && strcmp(val, "table")) {
                fprintf(stderr, "yun: -o takes json or table, not '%s'\n", val);
                return -1;
            }
            c->json = !strcmp(val, "json");
        } else if (!strcmp(g->name, "socket")) {
            snprintf(c->socket, sizeof(c->socket), "%s", val);
        } else if (!strcmp(g->name, "url")) {
            snprintf(c->url, sizeof(c->url), "%s", val);
        } else {
            snprintf(c->token, sizeof(c->token), "%s", val);
        }
    }
    argv[n] = NULL;
    return n;
}

int main(int argc, char **argv)
{
    struct cli c = {0};
    const char *env;
    if ((env = getenv("YUN_SOCKET")) && *env)
        snprintf(c.socket, sizeof(c.socket), "%s", env);
    else if ((env = getenv("YUN_STATE_DIR")) && *env)
        snprintf(c.socket, sizeof(c.socket), "%s/yund.sock", env);
    else
        snprintf(c.socket, sizeof(c.socket), "/var/lib/yun/yund.sock");
    if ((env = getenv("YUN_URL")) && *env)
        snprintf(c.url, sizeof(c.url), "%s", env);
    if ((env = getenv("YUN_TOKEN")))
        snprintf(c.token, sizeof(c.token), "%s", env);

    if ((argc = take_globals(&c, argc, argv)) < 0)
        return EXIT_USAGE;
    if (argc == 0)
        return help_for(0, NULL, stderr, EXIT_USAGE);
    if (!strcmp(argv[0], "--version") || !strcmp(argv[0], "-V")) {
        printf("yun %s (commit %s)\n", yun_version(), yun_commit());
        return 0;
    }
    if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))
        return help_for(0, NULL, stdout, 0);
    int used = 0;
    const struct cli_cmd *cmd = cli_match(table, argc, argv, &used);
    if (!cmd) {
        fprintf(stderr, "yun: unknown command '%s' (see: yun --help)\n", argv[0]);
        return EXIT_USAGE;
    }
    if (!cmd->run) {
        /* a group: its help, or an unknown command in it */
        if (used == argc)
            return help_for(used, argv, stderr, EXIT_USAGE);
        const char *next = argv[used];
        if (!strcmp(next, "--help") || !strcmp(next, "-h") || !strcmp(next, "help"))
            return help_for(used, argv, stdout, 0);
        fprintf(stderr, "yun: unknown %s command '%s' (see: yun %s --help)\n", cmd->words, next,
                cmd->words);
        return EXIT_USAGE;
    }
    struct cli_args a;
    if (cmd->flags & CLI_CMD_RAW) {
        /* the raw command sees its whole line, from its first word */
        a = (struct cli_args){.cmd = cmd, .rest = argv, .rest_argc = argc};
        return cmd->run(&c, &a);
    }
    int rc = cli_parse(cmd, argc - used, argv + used, &a, stderr);
    if (rc < 0)
        return EXIT_USAGE;
    if (rc == 1) {
        cli_help_cmd(cmd, stdout);
        return 0;
    }
    return cmd->run(&c, &a);
}
