/*
 * cmd_vm.c - `yun vm ...`: create, list, show, start, stop, reboot, pause,
 * resume, delete, console, logs, stats, exec (its rows of the command table
 * and their handlers).
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void vm_print_row(json_t *v)
{
    char age[16], mem[16];
    long long started = json_integer_value(json_object_get(v, "started_at"));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    cli_fmt_age(started ? (long long)now.tv_sec - started / 1000 : 0, age, sizeof(age));
    cli_fmt_bytes(json_integer_value(json_object_get(v, "memory_mb")) << 20, mem, sizeof(mem));
    const char *host = json_string_value(json_object_get(v, "host"));
    printf("%-20s %-9s %4lld %7s %-12s %-16s %-7s %.8s\n",
           json_string_value(json_object_get(v, "name")),
           json_string_value(json_object_get(v, "state")),
           (long long)json_integer_value(json_object_get(v, "cpus")), mem,
           json_string_value(json_object_get(v, "image")), host && host[0] ? host : "-", age,
           json_string_value(json_object_get(v, "id")));
}

static void vm_print_header(void)
{
    printf("%-20s %-9s %4s %7s %-12s %-16s %-7s %s\n", "NAME", "STATE", "CPUS", "MEMORY", "IMAGE",
           "HOST", "UPTIME", "ID");
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
    if (!strcmp(s, "0") || !strcmp(s, "max")) {
        period = 0; /* no cap (the period goes back to its default) */
    } else if (n > 1 && s[n - 1] == '%') {
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

/* The CPU options create and update share: --cpu-weight, --cpu-max,
 * --cpuset, --cpu-pin, --emulator-pin into the body. -1 after a message. */
static int cpu_opts_body(const struct cli_args *a, json_t *body)
{
    static const char *const strings[][2] = {
        {"cpuset", "cpuset"}, {"cpu-pin", "cpu_pin"}, {"emulator-pin", "emulator_pin"}};
    const char *v;
    uint64_t u;
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if ((v = cli_val(a, strings[i][0])))
            json_object_set_new(body, strings[i][1], json_string(v));
    if ((v = cli_val(a, "cpu-weight"))) {
        if (parse_u64(v, 0, 1000000, &u) < 0) {
            fprintf(stderr, "yun: --cpu-weight takes a whole number, not '%s'\n", v);
            return -1;
        }
        json_object_set_new(body, "cpu_weight", json_integer((json_int_t)u));
    }
    if ((v = cli_val(a, "cpu-max")) && parse_cpu_max(v, body) < 0) {
        fprintf(stderr,
                "yun: --cpu-max takes QUOTA[/PERIOD] in microseconds or PERCENT%%, not '%s'\n", v);
        return -1;
    }
    return 0;
}

/* A size option in bytes; a bare number means MiB when mib_default (qemu -m). */
static int size_opt(const char *name, const char *v, bool mib_default, uint64_t *out)
{
    if (parse_size(v, out) < 0) {
        fprintf(stderr, "yun: --%s takes a size such as %s, not '%s'\n", name,
                mib_default ? "512M" : "4G", v);
        return -1;
    }
    if (mib_default && strspn(v, "0123456789") == strlen(v))
        *out <<= 20;
    return 0;
}

/* What create and place (cmd_place.c) share: --image, --cpus, --memory,
 * --host, --group, --require..., --cpu-model and --start, into the
 * request's body.
 * -1 (after a one-line reason) on a bad value. */
int cli_vm_shape_body(const struct cli_args *a, json_t *body)
{
    const char *v;
    uint64_t u;
    if ((v = cli_val(a, "image")))
        json_object_set_new(body, "image", json_string(v));
    if ((v = cli_val(a, "cpus"))) {
        if (parse_u64(v, 0, 1000000, &u) < 0) {
            fprintf(stderr, "yun: --cpus takes a whole number, not '%s'\n", v);
            return -1;
        }
        json_object_set_new(body, "cpus", json_integer((json_int_t)u));
    }
    if ((v = cli_val(a, "memory"))) {
        if (size_opt("memory", v, true, &u) < 0)
            return -1;
        if (u % (1 << 20)) {
            fprintf(stderr, "yun: --memory must be a whole number of MiB\n");
            return -1;
        }
        json_object_set_new(body, "memory_mb", json_integer((json_int_t)(u >> 20)));
    }
    if ((v = cli_val(a, "host")))
        json_object_set_new(body, "host", json_string(v));
    if ((v = cli_val(a, "group")))
        json_object_set_new(body, "group", json_string(v));
    if ((v = cli_val(a, "cpu-model")))
        json_object_set_new(body, "cpu_model", json_string(v));
    int ri = 0;
    while ((v = cli_val_next(a, "require", &ri))) {
        json_t *req = json_object_get(body, "requires");
        if (!req)
            json_object_set_new(body, "requires", req = json_array());
        json_array_append_new(req, json_string(v));
    }
    if (cli_flag(a, "start"))
        json_object_set_new(body, "start", json_true());
    return 0;
}

/* The contents of a text file given to --user-data or --ssh-key. */
static json_t *file_text(const char *path)
{
    size_t len;
    char *text = read_file(path, 1 << 20, &len);
    json_t *str = text ? json_string(text) : NULL; /* NULL when not UTF-8 */
    free(text);
    if (!str)
        fprintf(stderr, "yun: cannot read %s (or it is not UTF-8 text)\n", path);
    return str;
}

/* --memory-min, --memory-swap, --memory-high (sizes, a bare number MiB),
 * --memory-lock and --no-merge into the body; -1 after a one-line reason. */
static int memory_policy_body(const struct cli_args *a, json_t *body)
{
    static const char *const sizes[][2] = {{"memory-min", "memory_min"},
                                           {"memory-swap", "memory_swap"},
                                           {"memory-high", "memory_high"}};
    const char *v;
    uint64_t u;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (!(v = cli_val(a, sizes[i][0])))
            continue;
        if (size_opt(sizes[i][0], v, true, &u) < 0)
            return -1;
        json_object_set_new(body, sizes[i][1], json_integer((json_int_t)u));
    }
    if (cli_flag(a, "memory-lock"))
        json_object_set_new(body, "memory_lock", json_true());
    if (cli_flag(a, "no-merge"))
        json_object_set_new(body, "merge", json_false());
    return 0;
}

static int vm_create(struct cli *c, const struct cli_args *a)
{
    json_t *body = json_object();
    const char *v;
    uint64_t u;
    json_object_set_new(body, "name", json_string(a->argv[0]));
    if (cli_vm_shape_body(a, body) < 0 || memory_policy_body(a, body) < 0)
        goto usage;
    /* create's own: where the disk lives, and HA (place has neither) */
    if ((v = cli_val(a, "pool")))
        json_object_set_new(body, "pool", json_string(v));
    if (cli_flag(a, "ha"))
        json_object_set_new(body, "ha", json_true());
    if ((v = cli_val(a, "disk"))) {
        if (size_opt("disk", v, false, &u) < 0)
            goto usage;
        json_object_set_new(body, "disk_bytes", json_integer((json_int_t)u));
    }
    static const char *const strings[][2] = {{"cmdline", "cmdline"},
                                             {"machine", "machine"},
                                             {"accel", "accel"},
                                             {"restart", "restart"},
                                             {"hostname", "hostname"}};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        if ((v = cli_val(a, strings[i][0])))
            json_object_set_new(body, strings[i][1], json_string(v));
    if (cpu_opts_body(a, body) < 0)
        goto usage;
    bool explain = cli_flag(a, "explain");
    if (explain)
        json_object_set_new(body, "explain", json_true());
    /* the CLI reads the files; yund receives their contents */
    if ((v = cli_val(a, "user-data"))) {
        json_t *str = file_text(v);
        if (!str)
            goto usage;
        json_object_set_new(body, "user_data", str);
    }
    int it = 0;
    while ((v = cli_val_next(a, "ssh-key", &it))) {
        json_t *str = file_text(v);
        if (!str)
            goto usage;
        json_t *keys = json_object_get(body, "ssh_keys");
        if (!keys) {
            keys = json_array();
            json_object_set_new(body, "ssh_keys", keys);
        }
        char *text = strdup(json_string_value(str));
        json_decref(str);
        for (char *save, *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save))
            if (*line && *line != '#')
                json_array_append_new(keys, json_string(line));
        free(text);
    }
    int code = 0;
    json_t *r = cli_call(c, "POST", "/v1/vms", body, &code);
    json_decref(body);
    if (!r) {
        if (explain && !c->json) /* why it was refused, host by host */
            cli_show_placement(c, a->argv[0]);
        return code;
    }
    if (c->json)
        cli_print_json(r);
    else
        printf("vm %s created (%s)\n", json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "state")));
    if (explain && !c->json)
        cli_print_placement(json_object_get(r, "placement"));
    json_decref(r);
    return 0;
usage:
    json_decref(body);
    return EXIT_USAGE;
}

static int vm_list(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    char path[256] = "/v1/vms";
    const char *host = cli_val(a, "host");
    if (host) {
        char *enc = cli_url_encode(host);
        snprintf(path, sizeof path, "/v1/vms?host=%s", enc ? enc : "");
        free(enc);
    }
    json_t *r = cli_call(c, "GET", path, NULL, &code);
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

static void vm_path(char *buf, size_t len, const char *name, const char *suffix)
{
    char *enc = cli_url_encode(name);
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
    char path[600], *enc = cli_url_encode(name);
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

/* start, stop, reboot, pause, resume and delete: the command's last word. */
static int vm_update(struct cli *c, const struct cli_args *a)
{
    json_t *body = json_object();
    const char *v = cli_val(a, "memory-min");
    uint64_t u;
    if (cpu_opts_body(a, body) < 0 || (v && size_opt("memory-min", v, true, &u) < 0)) {
        json_decref(body);
        return EXIT_USAGE;
    }
    if (v)
        json_object_set_new(body, "memory_min", json_integer((json_int_t)u));
    if (json_object_size(body) == 0) {
        json_decref(body);
        fprintf(stderr, "yun: vm update: nothing to change (see yun vm update --help)\n");
        return EXIT_USAGE;
    }
    char path[512];
    int code = 0;
    vm_path(path, sizeof(path), a->argv[0], "");
    json_t *r = cli_call(c, "PATCH", path, body, &code);
    json_decref(body);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else
        printf("vm %s updated (%s)\n", a->argv[0], json_string_value(json_object_get(r, "state")));
    json_decref(r);
    return 0;
}

static int vm_action(struct cli *c, const struct cli_args *a)
{
    const char *action = strrchr(a->cmd->words, ' ') + 1, *name = a->argv[0];
    bool is_stop = !strcmp(action, "stop"), is_del = !strcmp(action, "delete");
    bool force = (is_stop || is_del) && cli_flag(a, "force");
    bool wait = !is_stop || !cli_flag(a, "no-wait");
    /* Long enough for yund's ACPI grace period and the quit after it. */
    uint64_t timeout_s = 120;
    const char *t = is_stop ? cli_val(a, "timeout") : NULL;
    if (t && parse_u64(t, 1, 86400, &timeout_s) < 0) {
        fprintf(stderr, "yun: --timeout takes 1..86400 seconds, not '%s'\n", t);
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

static int vm_show(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    json_t *r = vm_get(c, a->argv[0], &code);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else
        vm_print_detail(r);
    json_decref(r);
    return 0;
}

static int vm_logs(struct cli *c, const struct cli_args *a)
{
    bool follow = cli_flag(a, "follow");
    const char *name = a->argv[0];
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

static int vm_exec(struct cli *c, const struct cli_args *a)
{
    uint64_t timeout = 60;
    const char *name = a->argv[0], *t = cli_val(a, "timeout");
    if (t && parse_u64(t, 1, 3600, &timeout) < 0) {
        fprintf(stderr, "yun: --timeout must be 1..3600 seconds, not '%s'\n", t);
        return EXIT_USAGE;
    }
    json_t *cmd = json_array();
    for (int i = 0; i < a->rest_argc; i++)
        json_array_append_new(cmd, json_string(a->rest[i]));
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

static int vm_console(struct cli *c, const struct cli_args *a)
{
    return vm_console_attach(c, a->argv[0]);
}

static int vm_stats_cmd(struct cli *c, const struct cli_args *a)
{
    return vm_stats(c, a->argv[0]);
}

static const struct cli_arg arg_vm[] = {{"NAME", CLI_K_VM, NULL, 0}, {0}};

const struct cli_cmd cmd_vm_entries[] = {
    {.words = "vm", .summary = "virtual machines"},
    {.words = "vm create",
     .summary = "define a VM on an image (stopped, unless --start)",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_TEXT, NULL, 0}, {0}},
     .opts =
         (const struct cli_opt[]){
             {"image", 'i', "IMG", CLI_K_IMAGE, NULL, CLI_OPT_REQUIRED,
              "the image it boots (yun image list)"},
             {"cpus", 'c', "N", CLI_K_TEXT, NULL, 0, "virtual CPUs (default 1)"},
             {"memory", 'm', "SIZE", CLI_K_TEXT, NULL, 0, "memory, e.g. 512M (a bare number: MiB)"},
             {"memory-min", 0, "SIZE", CLI_K_TEXT, NULL, 0,
              "the balloon never takes it below SIZE (default: all its memory)"},
             {"memory-swap", 0, "SIZE", CLI_K_TEXT, NULL, 0,
              "swap it may use beyond its memory; 0 = none (default: the host's)"},
             {"memory-high", 0, "SIZE", CLI_K_TEXT, NULL, 0,
              "soft limit: above it the kernel reclaims its coldest pages first"},
             {"memory-lock", 0, NULL, CLI_K_TEXT, NULL, 0,
              "keep its memory locked resident (never swapped)"},
             {"no-merge", 0, NULL, CLI_K_TEXT, NULL, 0, "keep its pages out of KSM merging"},
             {"disk", 'd', "SIZE", CLI_K_TEXT, NULL, 0, "grow its disk to SIZE, e.g. 4G"},
             {"cmdline", 0, "S", CLI_K_TEXT, NULL, 0, "kernel command line (direct-kernel images)"},
             {"machine", 0, "TYPE", CLI_K_CHOICE, "pc q35 microvm", 0, "QEMU machine type"},
             {"accel", 0, "A", CLI_K_CHOICE, "auto kvm tcg", 0, "accelerator (default auto)"},
             {"restart", 0, "POLICY", CLI_K_CHOICE, "no on-failure always", 0,
              "restart policy when QEMU ends"},
             {"cpu-weight", 0, "1..10000", CLI_K_TEXT, NULL, 0, "cgroup CPU weight"},
             {"cpu-max", 0, "QUOTA[/PERIOD]|PERCENT%", CLI_K_TEXT, NULL, 0,
              "CPU cap: microseconds per period, or a percent of one CPU"},
             {"cpuset", 0, "LIST", CLI_K_TEXT, NULL, 0, "host CPUs it may run on, e.g. 0-1"},
             {"cpu-pin", 0, "VCPU:CPUS[,...]", CLI_K_TEXT, NULL, 0,
              "pin each vCPU's thread, e.g. 0:2,1:3"},
             {"emulator-pin", 0, "LIST", CLI_K_TEXT, NULL, 0,
              "host CPUs of QEMU's other threads (I/O, main loop)"},
             {"cpu-model", 0, "MODEL", CLI_K_TEXT, NULL, 0,
              "QEMU CPU model, e.g. Westmere (default: the cluster's baseline)"},
             {"start", 0, NULL, CLI_K_TEXT, NULL, 0, "start it once created"},
             {"hostname", 0, "H", CLI_K_TEXT, NULL, 0, "guest hostname (cloud-init)"},
             {"user-data", 0, "FILE", CLI_K_FILE, NULL, 0, "cloud-init user-data file"},
             {"ssh-key", 0, "FILE", CLI_K_FILE, NULL, CLI_OPT_REPEAT,
              "authorized SSH keys, one a line (cloud-init)"},
             {"host", 0, "HOST", CLI_K_TEXT, NULL, 0, "put it on HOST (the filters still apply)"},
             {"group", 0, "GROUP", CLI_K_TEXT, NULL, 0, "a placement group (yun group list)"},
             {"pool", 0, "POOL", CLI_K_TEXT, NULL, 0,
              "its disk in POOL (yun pool create), not in its directory"},
             {"ha", 0, NULL, CLI_K_TEXT, NULL, 0,
              "restart it on another host when its host is lost (needs a --shared pool)"},
             {"require", 0, "K=V", CLI_K_TEXT, NULL, CLI_OPT_REPEAT,
              "only hosts with this label, e.g. gpu=1"},
             {"explain", 0, NULL, CLI_K_TEXT, NULL, 0, "print every host's verdict"},
             {0}},
     .run = vm_create},
    {.words = "vm list",
     .alias = "ls",
     .summary = "all VMs (with their host)",
     .opts = (const struct cli_opt[]){{"host", 0, "HOST", CLI_K_TEXT, NULL, 0,
                                       "only the VMs on this host (name or id)"},
                                      {0}},
     .run = vm_list},
    {.words = "vm show",
     .summary = "one VM, with live QEMU and guest-agent status",
     .args = arg_vm,
     .run = vm_show},
    {.words = "vm update",
     .summary = "change CPU weight, cap, cpuset, pins and memory minimum; live on a running VM",
     .args = arg_vm,
     .opts =
         (const struct cli_opt[]){
             {"cpu-weight", 0, "1..10000", CLI_K_TEXT, NULL, 0, "cgroup CPU weight"},
             {"cpu-max", 0, "QUOTA[/PERIOD]|PERCENT%", CLI_K_TEXT, NULL, 0,
              "CPU cap (0 = none): microseconds per period, or a percent of one CPU"},
             {"cpuset", 0, "LIST", CLI_K_TEXT, NULL, 0, "host CPUs it may run on (\"\" = any)"},
             {"cpu-pin", 0, "VCPU:CPUS[,...]", CLI_K_TEXT, NULL, 0,
              "pin each vCPU's thread (\"\" = none)"},
             {"emulator-pin", 0, "LIST", CLI_K_TEXT, NULL, 0,
              "host CPUs of QEMU's other threads (\"\" = none)"},
             {"memory-min", 0, "SIZE", CLI_K_TEXT, NULL, 0,
              "the balloon's floor (up to --memory: never ballooned)"},
             {0}},
     .run = vm_update},
    {.words = "vm start", .summary = "start a VM", .args = arg_vm, .run = vm_action},
    {.words = "vm stop",
     .summary = "ACPI power-off (or the guest agent), then quit; waits for QEMU to exit",
     .args = arg_vm,
     .opts =
         (const struct cli_opt[]){
             {"force", 'f', NULL, CLI_K_TEXT, NULL, 0, "end QEMU now"},
             {"no-wait", 0, NULL, CLI_K_TEXT, NULL, 0, "return once the stop is asked for"},
             {"timeout", 0, "S", CLI_K_TEXT, NULL, 0, "wait up to S seconds (default 120)"},
             {0}},
     .run = vm_action},
    {.words = "vm reboot", .summary = "reset the VM", .args = arg_vm, .run = vm_action},
    {.words = "vm pause", .summary = "stop its vCPUs", .args = arg_vm, .run = vm_action},
    {.words = "vm resume", .summary = "run its vCPUs again", .args = arg_vm, .run = vm_action},
    {.words = "vm delete",
     .summary = "remove the VM and its disk",
     .args = arg_vm,
     .opts = (const struct cli_opt[]){{"force", 'f', NULL, CLI_K_TEXT, NULL, 0, "even if running"},
                                      {0}},
     .run = vm_action},
    {.words = "vm console",
     .summary = "attach to the serial console (Ctrl-] detaches)",
     .args = arg_vm,
     .run = vm_console},
    {.words = "vm logs",
     .summary = "print the console log",
     .args = arg_vm,
     .opts =
         (const struct cli_opt[]){
             {"follow", 'f', NULL, CLI_K_TEXT, NULL, 0, "keep printing what comes"}, {0}},
     .run = vm_logs},
    {.words = "vm stats",
     .summary = "latest CPU, memory and disk figures",
     .args = arg_vm,
     .run = vm_stats_cmd},
    {.words = "vm exec",
     .summary = "run a command in the guest (guest agent); exits with its status",
     .args = arg_vm,
     .opts =
         (const struct cli_opt[]){
             {"timeout", 0, "S", CLI_K_TEXT, NULL, 0, "give up after S seconds (default 60)"}, {0}},
     .flags = CLI_CMD_DASHDASH,
     .run = vm_exec},
    {0},
};
