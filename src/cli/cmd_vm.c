/*
 * cmd_vm.c - `yun vm ...`: create, list, show, start, stop, reboot, pause,
 * resume, delete, console, logs.
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void vm_usage(FILE *f)
{
    fprintf(f, "usage: yun vm COMMAND [options]\n"
               "  create NAME --image IMG [--cpus N] [--memory SIZE] [--disk SIZE] [--cmdline S]\n"
               "         [--machine pc|q35|microvm] [--accel auto|kvm|tcg]\n"
               "         [--restart no|on-failure|always] [--cpu-weight 1..10000]\n"
               "         [--cpu-max QUOTA[/PERIOD] | PERCENT%%] [--cpuset LIST] [--start]\n"
               "         [--hostname H] [--user-data FILE] [--ssh-key FILE ...]   (cloud-init)\n"
               "  list                       all VMs\n"
               "  show NAME                  one VM, with live QEMU status\n"
               "  start NAME\n"
               "  stop NAME [--force] [--no-wait] [--timeout S]\n"
               "                             ACPI power-off (force: end QEMU now); waits up to\n"
               "                             S seconds (120) for QEMU to exit\n"
               "  reboot|pause|resume NAME\n"
               "  delete NAME [--force]      remove the VM and its disk (force: even if running)\n"
               "  console NAME               attach to the serial console (Ctrl-] detaches)\n"
               "  logs NAME [-f]             print the console log (-f: follow)\n"
               "  stats NAME                 latest CPU, memory and disk figures\n"
               "  exec NAME [--timeout S] -- CMD [ARG...]   run a command in the guest (agent)\n"
               "global: -o json for machine-readable output\n");
}

static void vm_print_row(json_t *v)
{
    char age[16], mem[16];
    long long started = json_integer_value(json_object_get(v, "started_at"));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    cli_fmt_age(started ? (long long)now.tv_sec - started / 1000 : 0, age, sizeof(age));
    cli_fmt_bytes(json_integer_value(json_object_get(v, "memory_mb")) << 20, mem, sizeof(mem));
    printf("%-20s %-9s %4lld %7s %-12s %-7s %.8s\n", json_string_value(json_object_get(v, "name")),
           json_string_value(json_object_get(v, "state")),
           (long long)json_integer_value(json_object_get(v, "cpus")), mem,
           json_string_value(json_object_get(v, "image")), age,
           json_string_value(json_object_get(v, "id")));
}

static void vm_print_header(void)
{
    printf("%-20s %-9s %4s %7s %-12s %-7s %s\n", "NAME", "STATE", "CPUS", "MEMORY", "IMAGE",
           "UPTIME", "ID");
}

static void vm_print_detail(json_t *v)
{
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (json_is_string(x))
            printf("%-15s %s\n", k, json_string_value(x));
        else if (json_is_integer(x))
            printf("%-15s %lld\n", k, (long long)json_integer_value(x));
        else if (json_is_boolean(x))
            printf("%-15s %s\n", k, json_is_true(x) ? "true" : "false");
        else if (json_is_array(x)) {
            printf("%-15s", k);
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e) printf(" %s", json_string_value(e) ?: "?");
            printf("\n");
        }
    }
}

static int parse_cpu_max(const char *s, json_t *body)
{
    uint64_t quota = 0, period = 100000;
    size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '%') {
        char num[32];
        snprintf(num, sizeof(num), "%.*s", (int)(n - 1), s);
        uint64_t pct;
        if (parse_u64(num, 1, 100000, &pct) < 0)
            return -1;
        quota = pct * period / 100;
    } else {
        char q[32], *slash;
        snprintf(q, sizeof(q), "%s", s);
        slash = strchr(q, '/');
        if (slash) {
            *slash = 0;
            if (parse_u64(slash + 1, 1000, 1000000, &period) < 0)
                return -1;
        }
        if (parse_u64(q, 1000, 1ULL << 40, &quota) < 0)
            return -1;
    }
    json_object_set_new(body, "cpu_quota_us", json_integer((json_int_t)quota));
    json_object_set_new(body, "cpu_period_us", json_integer((json_int_t)period));
    return 0;
}

static int vm_create(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {{"image", required_argument, 0, 'i'},
                                         {"cpus", required_argument, 0, 'c'},
                                         {"memory", required_argument, 0, 'm'},
                                         {"disk", required_argument, 0, 'd'},
                                         {"cmdline", required_argument, 0, 'k'},
                                         {"machine", required_argument, 0, 'M'},
                                         {"accel", required_argument, 0, 'a'},
                                         {"restart", required_argument, 0, 'r'},
                                         {"cpu-weight", required_argument, 0, 'w'},
                                         {"cpu-max", required_argument, 0, 'q'},
                                         {"cpuset", required_argument, 0, 'p'},
                                         {"start", no_argument, 0, 's'},
                                         {"hostname", required_argument, 0, 'H'},
                                         {"user-data", required_argument, 0, 'U'},
                                         {"ssh-key", required_argument, 0, 'K'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    json_t *body = json_object();
    int opt;
    uint64_t u;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "i:c:m:d:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            json_object_set_new(body, "image", json_string(optarg));
            break;
        case 'c':
            if (parse_u64(optarg, 0, 1000000, &u) < 0) {
                fprintf(stderr, "yun: --cpus takes a whole number, not '%s'\n", optarg);
                goto usage;
            }
            json_object_set_new(body, "cpus", json_integer((json_int_t)u));
            break;
        case 'm':
            if (parse_size(optarg, &u) < 0) {
                fprintf(stderr, "yun: --memory takes a size such as 512M, not '%s'\n", optarg);
                goto usage;
            }
            /* A bare number means MiB, as in qemu -m. */
            if (strspn(optarg, "0123456789") == strlen(optarg))
                u <<= 20;
            json_object_set_new(body, "memory_mb", json_integer((json_int_t)(u >> 20)));
            if (u % (1 << 20)) {
                fprintf(stderr, "yun: --memory must be a whole number of MiB\n");
                goto usage;
            }
            break;
        case 'd':
            if (parse_size(optarg, &u) < 0) {
                fprintf(stderr, "yun: --disk takes a size such as 4G, not '%s'\n", optarg);
                goto usage;
            }
            json_object_set_new(body, "disk_bytes", json_integer((json_int_t)u));
            break;
        case 'k':
            json_object_set_new(body, "cmdline", json_string(optarg));
            break;
        case 'M':
            json_object_set_new(body, "machine", json_string(optarg));
            break;
        case 'a':
            json_object_set_new(body, "accel", json_string(optarg));
            break;
        case 'r':
            json_object_set_new(body, "restart", json_string(optarg));
            break;
        case 'w':
            if (parse_u64(optarg, 0, 1000000, &u) < 0) {
                fprintf(stderr, "yun: --cpu-weight takes a whole number, not '%s'\n", optarg);
                goto usage;
            }
            json_object_set_new(body, "cpu_weight", json_integer((json_int_t)u));
            break;
        case 'q':
            if (parse_cpu_max(optarg, body) < 0) {
                fprintf(stderr,
                        "yun: --cpu-max takes QUOTA[/PERIOD] in microseconds or PERCENT%%, "
                        "not '%s'\n",
                        optarg);
                goto usage;
            }
            break;
        case 'p':
            json_object_set_new(body, "cpuset", json_string(optarg));
            break;
        case 's':
            json_object_set_new(body, "start", json_true());
            break;
        case 'H':
            json_object_set_new(body, "hostname", json_string(optarg));
            break;
        case 'U':
        case 'K': {
            /* the CLI reads the files; yund receives their contents */
            size_t len;
            char *text = read_file(optarg, 1 << 20, &len);
            json_t *str = text ? json_string(text) : NULL; /* NULL when not UTF-8 */
            if (!str) {
                fprintf(stderr, "yun: cannot read %s (or it is not UTF-8 text)\n", optarg);
                free(text);
                goto usage;
            }
            if (opt == 'U') {
                json_object_set_new(body, "user_data", str);
            } else {
                json_decref(str);
                json_t *keys = json_object_get(body, "ssh_keys");
                if (!keys) {
                    keys = json_array();
                    json_object_set_new(body, "ssh_keys", keys);
                }
                for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
                    if (*line && *line != '#')
                        json_array_append_new(keys, json_string(line));
            }
            free(text);
            break;
        }
        case 'h':
            vm_usage(stdout);
            json_decref(body);
            return 0;
        default:
            goto usage;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "yun: vm create takes exactly one NAME\n");
        goto usage;
    }
    if (!json_object_get(body, "image")) {
        fprintf(stderr, "yun: vm create needs --image (see: yun image list)\n");
        goto usage;
    }
    json_object_set_new(body, "name", json_string(argv[optind]));
    int code = 0;
    json_t *r = cli_call(c, "POST", "/v1/vms", body, &code);
    json_decref(body);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else
        printf("vm %s created (%s)\n", json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "state")));
    json_decref(r);
    return 0;
usage:
    json_decref(body);
    return EXIT_USAGE;
}

static int vm_list(struct cli *c)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/vms", NULL, &code);
    if (!r)
        return code;
    json_t *arr = json_object_get(r, "vms");
    if (c->json) {
        cli_print_json(arr);
    } else {
        vm_print_header();
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) vm_print_row(v);
    }
    json_decref(r);
    return 0;
}

/* name percent-encoded for a URL path or query; malloc'd. */
static char *url_encode(const char *name)
{
    char *enc = malloc(strlen(name) * 3 + 1), *p = enc;
    if (!enc)
        return NULL;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.')
            *p++ = (char)*s;
        else
            p += sprintf(p, "%%%02X", *s);
    }
    *p = 0;
    return enc;
}

static void vm_path(char *buf, size_t len, const char *name, const char *suffix)
{
    char *enc = url_encode(name);
    snprintf(buf, len, "/v1/vms/%s%s", enc ? enc : "", suffix);
    free(enc);
}

static json_t *vm_get(struct cli *c, const char *name, int *code)
{
    char path[512];
    vm_path(path, sizeof(path), name, "");
    return cli_call(c, "GET", path, NULL, code);
}

/* GET /v1/events for VM name after event id `after`, long-polling up to
 * wait_s seconds when there is none yet. Moves *after past what came. */
static json_t *vm_events(struct cli *c, const char *name, long long *after, int limit, int wait_s,
                         int *code)
{
    char path[600], *enc = url_encode(name);
    snprintf(path, sizeof(path), "/v1/events?object=%s&after=%lld&limit=%d&wait=%d", enc ? enc : "",
             *after, limit, wait_s);
    free(enc);
    json_t *r = cli_call(c, "GET", path, NULL, code);
    if (r)
        *after = json_integer_value(json_object_get(r, "last_id"));
    return r;
}

/* Waits on the event stream (no polling) until the VM's QEMU has exited,
 * which yund records as its "exit" event once the process is gone; returns
 * the VM as it is then. `after` is an event id from before the stop. */
static json_t *vm_wait_stopped(struct cli *c, const char *name, long long after, int timeout_s,
                               int *code)
{
    int64_t deadline = monotonic_ms() + timeout_s * 1000LL;
    for (int64_t left; (left = deadline - monotonic_ms()) > 0;) {
        int wait_s = (int)((left + 999) / 1000);
        json_t *r = vm_events(c, name, &after, 1000, wait_s > 60 ? 60 : wait_s, code);
        if (!r)
            return NULL;
        bool exited = false;
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(r, "events"), i, ev)
        {
            const char *action = json_string_value(json_object_get(ev, "action"));
            exited |= action && !strcmp(action, "exit");
        }
        json_decref(r);
        if (exited)
            return vm_get(c, name, code);
    }
    json_t *v = vm_get(c, name, code);
    const char *state = v ? json_string_value(json_object_get(v, "state")) : NULL;
    fprintf(stderr, "yun: vm %s did not stop within %d s (it is %s; yun vm stop --force ends it)\n",
            name, timeout_s, state ? state : "unknown");
    json_decref(v);
    *code = EXIT_API;
    return NULL;
}

static int vm_action(struct cli *c, const char *action, int argc, char **argv)
{
    bool force = false, wait = true;
    const char *name = NULL;
    /* Long enough for yund's ACPI grace period and the quit after it. */
    uint64_t timeout_s = 120;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
            force = true;
        else if (!strcmp(argv[i], "--no-wait"))
            wait = false;
        else if (!strcmp(argv[i], "--timeout") && !strcmp(action, "stop")) {
            if (i + 1 >= argc || parse_u64(argv[++i], 1, 86400, &timeout_s) < 0) {
                fprintf(stderr, "yun: --timeout takes 1..86400 seconds\n");
                return EXIT_USAGE;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "yun: unknown option '%s' for vm %s\n", argv[i], action);
            return EXIT_USAGE;
        } else if (name) {
            fprintf(stderr, "yun: vm %s takes one NAME\n", action);
            return EXIT_USAGE;
        } else
            name = argv[i];
    }
    if (!name) {
        fprintf(stderr, "yun: vm %s needs a NAME\n", action);
        return EXIT_USAGE;
    }
    if (force && strcmp(action, "stop") && strcmp(action, "delete")) {
        fprintf(stderr, "yun: --force applies to stop and delete only\n");
        return EXIT_USAGE;
    }
    char path[512];
    int code = 0;
    json_t *r;
    if (!strcmp(action, "delete")) {
        vm_path(path, sizeof(path), name, force ? "?force=true" : "");
        r = cli_call(c, "DELETE", path, NULL, &code);
        if (!r)
            return code;
        if (c->json)
            cli_print_json(r);
        else
            printf("vm %s deleted\n", name);
        json_decref(r);
        return 0;
    }
    bool wait_stop = !strcmp(action, "stop") && wait;
    long long mark = 0;
    if (wait_stop) {
        /* the VM's newest event before the stop: its exit comes after it */
        r = vm_events(c, name, &mark, 1, 0, &code);
        if (!r)
            return code;
        json_decref(r);
    }
    char suffix[64];
    snprintf(suffix, sizeof(suffix), "/actions/%s", force ? "force-stop" : action);
    vm_path(path, sizeof(path), name, suffix);
    r = cli_call(c, "POST", path, NULL, &code);
    if (!r)
        return code;
    if (wait_stop && strcmp(json_string_value(json_object_get(r, "state")) ?: "", "stopped")) {
        json_decref(r);
        r = vm_wait_stopped(c, name, mark, (int)timeout_s, &code);
        if (!r)
            return code;
    }
    if (c->json)
        cli_print_json(r);
    else
        printf("vm %s %s\n", name, json_string_value(json_object_get(r, "state")));
    json_decref(r);
    return 0;
}

static int vm_show(struct cli *c, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "yun: vm show takes one NAME\n");
        return EXIT_USAGE;
    }
    int code = 0;
    json_t *r = vm_get(c, argv[1], &code);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else
        vm_print_detail(r);
    json_decref(r);
    return 0;
}

static int vm_logs(struct cli *c, int argc, char **argv)
{
    bool follow = false;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
            follow = true;
        else if (argv[i][0] == '-' || name) {
            fprintf(stderr, "yun: usage: yun vm logs NAME [-f]\n");
            return EXIT_USAGE;
        } else
            name = argv[i];
    }
    if (!name) {
        fprintf(stderr, "yun: vm logs needs a NAME\n");
        return EXIT_USAGE;
    }
    long long offset = 0;
    for (;;) {
        char path[512], suffix[64], err[512];
        snprintf(suffix, sizeof(suffix), "/console?offset=%lld", offset);
        vm_path(path, sizeof(path), name, suffix);
        struct http_resp r;
        if (cli_http(c, "GET", path, NULL, &r, err, sizeof(err)) < 0) {
            fprintf(stderr, "yun: %s\n", err);
            return EXIT_CONN;
        }
        if (r.status != 200) {
            json_t *j = json_loads(r.body, 0, NULL);
            const char *m =
                json_string_value(json_object_get(json_object_get(j, "error"), "message"));
            fprintf(stderr, "yun: %s\n", m ? m : "cannot read console log");
            json_decref(j);
            http_resp_free(&r);
            return EXIT_API;
        }
        fwrite(r.body, 1, r.len, stdout);
        fflush(stdout);
        if (r.next_offset >= 0)
            offset = r.next_offset;
        bool more = r.len > 0;
        http_resp_free(&r);
        if (!follow && !more)
            return 0;
        if (!more) {
            struct timespec ts = {0, 250 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

static int vm_exec(struct cli *c, int argc, char **argv)
{
    uint64_t timeout = 60;
    int i = 1;
    const char *name = NULL;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            if (parse_u64(argv[++i], 1, 3600, &timeout) < 0) {
                fprintf(stderr, "yun: --timeout must be 1..3600 seconds, not '%s'\n", argv[i]);
                return EXIT_USAGE;
            }
        } else if (!name && argv[i][0] != '-')
            name = argv[i];
        else {
            fprintf(stderr, "yun: usage: yun vm exec NAME [--timeout S] -- CMD [ARG...]\n");
            return EXIT_USAGE;
        }
    }
    if (!name || i + 1 >= argc) {
        fprintf(stderr, "yun: usage: yun vm exec NAME [--timeout S] -- CMD [ARG...]\n");
        return EXIT_USAGE;
    }
    json_t *cmd = json_array();
    for (i++; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    json_t *body = json_pack("{s:o,s:i}", "argv", cmd, "timeout", (int)timeout);
    char path[512];
    vm_path(path, sizeof(path), name, "/exec");
    int code = 0;
    json_t *r = cli_call(c, "POST", path, body, &code);
    json_decref(body);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(r);
    } else {
        fputs(json_string_value(json_object_get(r, "stdout")) ?: "", stdout);
        fputs(json_string_value(json_object_get(r, "stderr")) ?: "", stderr);
    }
    json_t *ec = json_object_get(r, "exitcode");
    int rc = json_is_integer(ec) ? (int)json_integer_value(ec) : 128;
    json_decref(r);
    /* the guest command's status becomes ours, as with ssh */
    return rc;
}

static int vm_console(struct cli *c, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "yun: vm console takes one NAME\n");
        return EXIT_USAGE;
    }
    int code = 0;
    json_t *r = vm_get(c, argv[1], &code);
    if (!r)
        return code;
    const char *state = json_string_value(json_object_get(r, "state"));
    const char *sock = json_string_value(json_object_get(r, "console_socket"));
    if (strcmp(state, "running") && strcmp(state, "paused")) {
        fprintf(stderr, "yun: vm %s is %s: start it first (its past output: yun vm logs %s)\n",
                argv[1], state, argv[1]);
        json_decref(r);
        return EXIT_API;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s", sock ? sock : "");
    json_decref(r);
    return vm_console_attach(path, argv[1]);
}

int cmd_vm(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        vm_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    argc--;
    argv++;
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            vm_usage(stdout);
            return 0;
        }
    if (!strcmp(sub, "create"))
        return vm_create(c, argc, argv);
    if (!strcmp(sub, "list") || !strcmp(sub, "ls"))
        return vm_list(c);
    if (!strcmp(sub, "show"))
        return vm_show(c, argc, argv);
    if (!strcmp(sub, "logs"))
        return vm_logs(c, argc, argv);
    if (!strcmp(sub, "console"))
        return vm_console(c, argc, argv);
    if (!strcmp(sub, "exec"))
        return vm_exec(c, argc, argv);
    if (!strcmp(sub, "stats")) {
        if (argc != 2) {
            fprintf(stderr, "yun: vm stats takes one NAME\n");
            return EXIT_USAGE;
        }
        return vm_stats(c, argv[1]);
    }
    static const char *const actions[] = {"start",  "stop",   "reboot", "pause",
                                          "resume", "delete", NULL};
    for (const char *const *a = actions; *a; a++)
        if (!strcmp(sub, *a))
            return vm_action(c, sub, argc, argv);
    fprintf(stderr, "yun: unknown vm command '%s'\n", sub);
    vm_usage(stderr);
    return EXIT_USAGE;
}
