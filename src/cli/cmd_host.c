/*
 * cmd_host.c - `yun host ...`: the cluster's hosts (list, show,
 * maintenance, activate, remove) and `yun host info`, the capacity and
 * allocation the answering yund reports for its own host: their rows of
 * the command table and their handlers.
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    {.words = "host remove",
     .alias = "rm",
     .summary = "remove a host (refused while VMs are on it)",
     .args = host_arg,
     .run = host_remove},
    {0},
};
