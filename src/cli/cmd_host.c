/*
 * cmd_host.c - `yun host ...`: the cluster's hosts (list, show,
 * maintenance, activate, remove, drain) and `yun host info`, the capacity and
 * allocation the answering yund reports for its own host: their rows of
 * the command table and their handlers.
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The "memory" view: what the VMs were promised and what they hold. */
static void print_memview(json_t *m, const char *label)
{
    if (!json_is_object(m))
        return;
    static const char *const k[5] = {"committed", "resident", "ballooned", "shared", "swapped"};
    static const char *const say[5] = {"committed", "resident", "ballooned away", "shared by KSM",
                                       "swapped"};
    printf("%s", label);
    for (int i = 0; i < 5; i++) {
        json_t *v = json_object_get(m, k[i]);
        char b[16];
        if (!json_is_integer(v))
            continue;
        cli_fmt_bytes(json_integer_value(v), b, sizeof b);
        printf("%s%s %s", i ? ", " : "", say[i], b);
    }
    json_t *run = json_object_get(m, "ksm_run");
    if (json_is_integer(run))
        printf(" (KSM %s)", json_integer_value(run) == 1 ? "on" : "off");
    if (json_is_false(json_object_get(m, "sampled")))
        printf(" (not sampled yet)");
    printf("\n");
}

static int host_info(struct cli *c, const struct cli_args *a)
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
        print_memview(json_object_get(r, "memory"), "vm memory ");
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

static void labels_text(json_t *labels, char *buf, size_t len)
{
    size_t off = 0;
    const char *k;
    json_t *v;
    buf[0] = 0;
    json_object_foreach(labels, k, v)
    {
        int w = snprintf(buf + off, len - off, "%s%s=%s", off ? "," : "", k,
                         json_string_value(v) ? json_string_value(v) : "");
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
}

static int host_list(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/hosts", NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(r);
        json_decref(r);
        return 0;
    }
    printf("%-20s %-12s %5s %9s %5s %6s %-16s %s\n", "NAME", "STATE", "CPUS", "MEMORY", "VMS",
           "LOAD", "ADDRESS", "LABELS");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(r, "hosts"), i, h)
    {
        char mem[16], labels[512];
        cli_fmt_bytes(json_integer_value(json_object_get(h, "memory")), mem, sizeof mem);
        labels_text(json_object_get(h, "labels"), labels, sizeof labels);
        const char *addr = json_string_value(json_object_get(h, "address"));
        printf("%-20s %-12s %5lld %9s %5lld %6.2f %-16s %s\n",
               json_string_value(json_object_get(h, "name")),
               json_string_value(json_object_get(h, "state")),
               (long long)json_integer_value(json_object_get(h, "cpus")), mem,
               (long long)json_integer_value(json_object_get(h, "vms")),
               json_number_value(json_object_get(json_object_get(h, "usage"), "cpu_load")),
               addr && *addr ? addr : "(local)", labels);
    }
    json_decref(r);
    return 0;
}

static void print_host(json_t *h)
{
    char mem[16], used[16], labels[512], lease[32] = "-";
    cli_fmt_bytes(json_integer_value(json_object_get(h, "memory")), mem, sizeof mem);
    json_t *u = json_object_get(h, "usage");
    cli_fmt_bytes(json_integer_value(json_object_get(u, "mem_used")), used, sizeof used);
    labels_text(json_object_get(h, "labels"), labels, sizeof labels);
    long long until = json_integer_value(json_object_get(h, "lease_until"));
    if (until > 0)
        cli_fmt_time(until, lease, sizeof lease);
    printf("name         %s\nid           %s\nstate        %s%s\n",
           json_string_value(json_object_get(h, "name")),
           json_string_value(json_object_get(h, "id")),
           json_string_value(json_object_get(h, "state")),
           json_is_true(json_object_get(h, "maintenance")) ? " (maintenance asked)" : "");
    printf("address      %s\nagent        %s\n", json_string_value(json_object_get(h, "address")),
           json_string_value(json_object_get(h, "agent_url")));
    printf("cpus         %lld (%s)\nmemory       %s\naccel        %s\n",
           (long long)json_integer_value(json_object_get(h, "cpus")),
           json_string_value(json_object_get(h, "cpu_model")), mem,
           json_string_value(json_object_get(h, "accel")));
    printf("labels       %s\nusage        load %.2f, memory %s in use\nlease until  %s\n",
           labels[0] ? labels : "-", json_number_value(json_object_get(u, "cpu_load")), used,
           lease);
    printf("vms          %lld\n", (long long)json_integer_value(json_object_get(h, "vms")));
    print_memview(json_object_get(h, "memory_view"), "vm memory    ");
}

static int host_call(struct cli *c, const char *method, const char *name, const char *suffix,
                     bool show)
{
    char *enc = cli_url_encode(name);
    if (!enc)
        return 1;
    char path[600];
    snprintf(path, sizeof path, "/v1/hosts/%s%s", enc, suffix);
    free(enc);
    int code = 0;
    json_t *r = cli_call(c, method, path, NULL, &code);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else if (show)
        print_host(r);
    else
        printf("host %s: %s\n", name,
               !strcmp(method, "DELETE") ? "removed"
                                         : json_string_value(json_object_get(r, "state")));
    json_decref(r);
    return 0;
}

static int host_show(struct cli *c, const struct cli_args *a)
{
    return host_call(c, "GET", a->argv[0], "", true);
}

static int host_maintenance(struct cli *c, const struct cli_args *a)
{
    return host_call(c, "POST", a->argv[0], "/maintenance", false);
}

static int host_activate(struct cli *c, const struct cli_args *a)
{
    return host_call(c, "POST", a->argv[0], "/activate", false);
}

static int host_remove(struct cli *c, const struct cli_args *a)
{
    return host_call(c, "DELETE", a->argv[0], "", false);
}

/* `yun host drain H [--parallel N] [--strategy S] [--no-wait]`: the
 * host.drain task, followed; then one line per VM (where it went, or why
 * it stayed). */
static int host_drain(struct cli *c, const struct cli_args *a)
{
    const char *name = a->argv[0], *par = cli_val(a, "parallel"), *st = cli_val(a, "strategy");
    json_t *body = json_object();
    if (par) {
        char *end;
        long v = strtol(par, &end, 10);
        if (!*par || *end || v < 1 || v > 16) {
            fprintf(stderr, "yun: --parallel wants 1..16 moves at once, not '%s'\n", par);
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "parallel", json_integer(v));
    }
    if (st)
        json_object_set_new(body, "strategy", json_string(st));
    char *enc = cli_url_encode(name);
    char path[300];
    snprintf(path, sizeof path, "/v1/hosts/%s/drain", enc ? enc : "");
    free(enc);
    int code = 0;
    json_t *r = cli_call(c, "POST", path, body, &code), *res = NULL;
    json_decref(body);
    if (!r)
        return code;
    bool nw = cli_has_opt(a, "no-wait") && cli_flag(a, "no-wait");
    enum cli_task_outcome o = cli_task_follow(c, r, nw, &res, &code);
    json_decref(r);
    if (o != CLI_TASK_DONE)
        return code;
    if (c->json) {
        cli_print_json(res);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(res, "vms"), i, v)
        {
            const char *to = json_string_value(json_object_get(v, "to"));
            const char *why = json_string_value(json_object_get(v, "reason"));
            printf("vm %s: %s%s%s\n", json_string_value(json_object_get(v, "vm")),
                   json_string_value(json_object_get(v, "state")), to ? " to " : "",
                   to    ? to
                   : why ? why
                         : "");
        }
        printf("host %s drained: in maintenance\n", name);
    }
    json_decref(res);
    return 0;
}

static const struct cli_arg host_arg[] = {{"HOST", CLI_K_TEXT, NULL, 0}, {0}};

const struct cli_cmd cmd_host_entries[] = {
    {.words = "host", .summary = "the cluster's hosts; info: this host's capacity"},
    {.words = "host info", .summary = "capacity and allocation of this host", .run = host_info},
    {.words = "host list",
     .alias = "ls",
     .summary = "every host: state, size, VMs, load, address, labels",
     .run = host_list},
    {.words = "host show",
     .summary = "a host's facts, state, lease and usage",
     .args = host_arg,
     .run = host_show},
    {.words = "host maintenance",
     .summary = "put a host in maintenance: it takes no new VMs",
     .args = host_arg,
     .run = host_maintenance},
    {.words = "host activate",
     .summary = "take a host out of maintenance",
     .args = host_arg,
     .run = host_activate},
    {.words = "host drain",
     .summary = "move every running VM off a host live, then keep it in maintenance",
     .args = host_arg,
     .opts =
         (const struct cli_opt[]){
             {"parallel", 0, "N", CLI_K_TEXT, NULL, 0, "moves at once (1..16, default 1)"},
             {"strategy", 0, "S", CLI_K_CHOICE, "least-loaded round-robin random pack spread", 0,
              "how to choose each VM's target"},
             {"no-wait", 0, NULL, CLI_K_TEXT, NULL, 0, "print the task id and return"},
             {0}},
     .run = host_drain,
     .more = "The drain is the task host.drain: the host goes in maintenance first, then each\n"
             "VM moves (a vm.migrate each: a running one live, a stopped one cold). A VM that\n"
             "cannot move is named with its reason and the host is set back up.\n"},
    {.words = "host remove",
     .alias = "rm",
     .summary = "remove a host (refused while VMs are on it)",
     .args = host_arg,
     .run = host_remove},
    {0},
};
