/*
 * main.c - yun, the command-line client. Global options, then a command
 * group; each group lives in its own file (cmd_*.c). Talks REST to yund over
 * its Unix socket, or over TCP with --url and --token.
 */
#include "cli/cli.h"
#include "sim/sim_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: yun [global options] COMMAND ...\n"
               "commands:\n"
               "  vm       create, list, show, start, stop, reboot, pause, resume, delete,\n"
               "           console, logs  (yun vm --help)\n"
               "  image    build, import, list, show, delete  (yun image --help)\n"
               "  volume   create, import, list, show, clone, resize, compact, export, attach,\n"
               "           detach, delete  (yun volume --help)\n"
               "  snapshot create, list, show, revert, delete a vm's disk snapshots\n"
               "           (yun snapshot --help)\n"
               "  pool     list: storage pools with capacity and allocation\n"
               "  events   the event log; -f follows it\n"
               "  alert    alert rules, silences and alert history  (yun alert --help)\n"
               "  top      live view of the host and VMs, busiest first\n"
               "  host     capacity and allocation of this host\n"
               "  sim      trace-driven data-centre simulator  (yun sim --help)\n"
               "  completion bash   print the bash completion script\n"
               "global options:\n"
               "  -o json|table     output format (default table)\n"
               "  --socket PATH     yund's Unix socket (default $YUN_SOCKET, else\n"
               "                    $YUN_STATE_DIR/yund.sock, else /var/lib/yun/yund.sock)\n"
               "  --url http://H:P  talk to yund over TCP (with --token or $YUN_TOKEN)\n"
               "  --token TOKEN     bearer token for --url\n"
               "exit status: 0 ok, 1 yund refused or failed, 2 bad usage, 3 yund unreachable\n");
}

int cmd_completion(struct cli *c, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "bash")) {
        fprintf(stderr, "yun: usage: yun completion bash\n");
        return EXIT_USAGE;
    }
    fputs("# bash completion for yun; load with: source <(yun completion bash)\n"
          "_yun() {\n"
          "  local cur=${COMP_WORDS[COMP_CWORD]} group=${COMP_WORDS[1]} sub=${COMP_WORDS[2]}\n"
          "  if [ $COMP_CWORD -eq 1 ]; then\n"
          "    COMPREPLY=($(compgen -W 'vm image volume pool snapshot events host alert top sim "
          "completion' "
          "-- "
          "\"$cur\"))\n"
          "  elif [ $COMP_CWORD -eq 2 ]; then\n"
          "    case $group in\n"
          "      vm) COMPREPLY=($(compgen -W 'create list show start stop reboot pause resume "
          "delete console logs stats' -- \"$cur\"));;\n"
          "      volume) COMPREPLY=($(compgen -W 'create import list show clone resize compact "
          "export attach detach delete' -- \"$cur\"));;\n"
          "      snapshot) COMPREPLY=($(compgen -W 'create list show revert delete' -- "
          "\"$cur\"));;\n"
          "      alert) COMPREPLY=($(compgen -W 'rule silence unsilence list' -- \"$cur\"));;\n"
          "      image) COMPREPLY=($(compgen -W 'build import list show delete' -- \"$cur\"));;\n"
          "      events) COMPREPLY=($(compgen -W '-f --vm' -- \"$cur\"));;\n"
          "      sim) COMPREPLY=($(compgen -W 'run place synth --help' -- \"$cur\"));;\n"
          "    esac\n"
          "  elif [ \"$group\" = vm ] && [ $COMP_CWORD -eq 3 ] && [ \"$sub\" != create ]; then\n"
          "    COMPREPLY=($(compgen -W \"$(yun vm list -o json 2>/dev/null | "
          "sed -n 's/.*\\\"name\\\": \\\"\\([^\\\"]*\\)\\\".*/\\1/p')\" -- \"$cur\"))\n"
          "  elif [ \"$group\" = vm ] && [ \"$sub\" = create ]; then\n"
          "    COMPREPLY=($(compgen -W '--image --cpus --memory --disk --cmdline --machine "
          "--accel --restart --cpu-weight --cpu-max --cpuset --start' -- \"$cur\"))\n"
          "  elif [ \"$group\" = image ] && [ \"$sub\" = import ]; then\n"
          "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "  fi\n"
          "}\n"
          "complete -F _yun yun\n",
          stdout);
    return 0;
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
    if ((env = getenv("YUN_TOKEN")))
        snprintf(c.token, sizeof(c.token), "%s", env);

    /* Global options may appear anywhere, except after `sim`, whose own
     * options (its -o among them) are passed through untouched. */
    int n = 0;
    bool passthrough = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (passthrough || (n == 0 && !strcmp(a, "sim"))) {
            passthrough = true;
            argv[n++] = argv[i];
            continue;
        }
        bool has_val = i + 1 < argc;
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_val) {
            const char *v = argv[++i];
            if (strcmp(v, "json") && strcmp(v, "table")) {
                fprintf(stderr, "yun: -o takes json or table, not '%s'\n", v);
                return EXIT_USAGE;
            }
            c.json = !strcmp(v, "json");
        } else if (!strcmp(a, "--socket") && has_val) {
            snprintf(c.socket, sizeof(c.socket), "%s", argv[++i]);
        } else if (!strcmp(a, "--url") && has_val) {
            snprintf(c.url, sizeof(c.url), "%s", argv[++i]);
        } else if (!strcmp(a, "--token") && has_val) {
            snprintf(c.token, sizeof(c.token), "%s", argv[++i]);
        } else {
            argv[n++] = argv[i];
        }
    }
    argv[n] = NULL;
    argc = n;
    if (argc == 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[0];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "vm"))
        return cmd_vm(&c, argc, argv);
    if (!strcmp(cmd, "image"))
        return cmd_image(&c, argc, argv);
    if (!strcmp(cmd, "events"))
        return cmd_events(&c, argc, argv);
    if (!strcmp(cmd, "host"))
        return cmd_host(&c, argc, argv);
    if (!strcmp(cmd, "volume"))
        return cmd_volume(&c, argc, argv);
    if (!strcmp(cmd, "snapshot"))
        return cmd_snapshot(&c, argc, argv);
    if (!strcmp(cmd, "pool"))
        return cmd_pool(&c, argc, argv);
    if (!strcmp(cmd, "alert"))
        return cmd_alert(&c, argc, argv);
    if (!strcmp(cmd, "top"))
        return cmd_top(&c, argc, argv);
    if (!strcmp(cmd, "sim"))
        return sim_cli_main(argc, argv);
    if (!strcmp(cmd, "completion"))
        return cmd_completion(&c, argc, argv);
    fprintf(stderr, "yun: unknown command '%s' (see: yun --help)\n", cmd);
    return EXIT_USAGE;
}
