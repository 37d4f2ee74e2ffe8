/*
 * cmd_place.c - placement in the CLI: `yun group create|list|show|delete`,
 * `yun vm explain NAME`, `yun vm place` (a dry run: POST /v1/placement),
 * and the verdict table `yun vm create --explain` prints
 * (cli_print_placement).
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

void cli_print_placement(json_t *p)
{
    if (!json_is_object(p))
        return;
    json_t *g = json_object_get(p, "group");
    printf("placement of %s: %s policy, %lld vCPUs, %lld MiB%s%s%s%s\n", str(p, "vm"),
           str(p, "policy"), (long long)json_integer_value(json_object_get(p, "cpus")),
           (long long)json_integer_value(json_object_get(p, "memory_mb")),
           json_is_string(g) ? ", group " : "", json_is_string(g) ? json_string_value(g) : "",
           str(p, "requires")[0] ? ", requires " : "", str(p, "requires"));
    printf("%s\n", str(p, "reason"));
    printf("%-24s %-12s %-13s %-19s %s\n", "HOST", "STATE", "VERDICT", "FILTER", "DETAIL");
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(p, "hosts"), i, h)
    {
        printf("%-24s %-12s %-13s %-19s %s\n", str(h, "name"), str(h, "state"), str(h, "verdict"),
               str(h, "filter")[0] ? str(h, "filter") : "-", str(h, "detail"));
    }
    long long total = json_integer_value(json_object_get(p, "hosts_total")),
              listed = json_integer_value(json_object_get(p, "hosts_listed"));
    if (listed < total)
        printf("(%lld of %lld hosts listed)\n", listed, total);
}

/* GET /v1/vms/NAME/placement and print it; the exit code. */
int cli_show_placement(struct cli *c, const char *name)
{
    char *enc = cli_url_encode(name), path[512];
    snprintf(path, sizeof(path), "/v1/vms/%s/placement", enc ? enc : "");
    free(enc);
    int code = 0;
    json_t *r = cli_call(c, "GET", path, NULL, &code);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else
        cli_print_placement(r);
    json_decref(r);
    return 0;
}

static int vm_explain(struct cli *c, const struct cli_args *a)
{
    return cli_show_placement(c, a->argv[0]);
}

/* yun vm place --cpus N --memory SIZE [--image I] [--group G] [--require
 * K=V]... [--host H] [--start] [--explain]: where such a VM would go. */
static int vm_place(struct cli *c, const struct cli_args *a)
{
    json_t *body = json_object();
    if (cli_vm_shape_body(a, body) < 0) {
        json_decref(body);
        return EXIT_USAGE;
    }
    bool explain = cli_flag(a, "explain");
    int code = 0;
    json_t *r =
        cli_call(c, "POST", explain ? "/v1/placement?explain=1" : "/v1/placement", body, &code);
    json_decref(body);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(r);
    } else {
        json_t *h = json_object_get(r, "host");
        printf("would go to %s (%s)%s%s\n", str(h, "name"), str(r, "reason"),
               str(r, "cpu_model")[0] ? ", CPU model " : "", str(r, "cpu_model"));
        if (explain)
            cli_print_placement(json_object_get(r, "placement"));
    }
    json_decref(r);
    return 0;
}

static int group_create(struct cli *c, const struct cli_args *a)
{
    const char *anti = cli_val(a, "anti-affinity"), *aff = cli_val(a, "affinity"),
               *max = cli_val(a, "max-per-host");
    if (!!anti == !!aff) {
        fprintf(stderr, "yun: give one of --anti-affinity hard|soft, --affinity hard|soft\n");
        return EXIT_USAGE;
    }
    const char *mode = anti ? anti : aff;
    json_t *body = json_pack("{s:s,s:s,s:b}", "name", a->argv[0], "policy",
                             anti ? "anti-affinity" : "affinity", "hard", !strcmp(mode, "hard"));
    if (max) {
        uint64_t u;
        if (parse_u64(max, 0, 100000, &u) < 0) {
            fprintf(stderr, "yun: --max-per-host takes a whole number 0..100000, not '%s'\n", max);
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "max_per_host", json_integer((json_int_t)u));
    }
    int code = 0;
    json_t *r = cli_call(c, "POST", "/v1/groups", body, &code);
    json_decref(body);
    if (!r)
        return code;
    return cli_done(c, r, "group %s created\n", a->argv[0]);
}

static void group_row(json_t *g)
{
    long long max = json_integer_value(json_object_get(g, "max_per_host"));
    char maxs[24];
    snprintf(maxs, sizeof(maxs), max ? "%lld" : "-", max);
    printf("%-24s %-14s %-5s %-12s %lld\n", str(g, "name"), str(g, "policy"),
           json_is_true(json_object_get(g, "hard")) ? "hard" : "soft", maxs,
           (long long)json_integer_value(json_object_get(g, "members")));
}

static int group_list(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/groups", NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(json_object_get(r, "groups"));
    } else {
        printf("%-24s %-14s %-5s %-12s %s\n", "NAME", "POLICY", "MODE", "MAX/HOST", "MEMBERS");
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(r, "groups"), i, g) group_row(g);
    }
    json_decref(r);
    return 0;
}

static int group_show_delete(struct cli *c, const struct cli_args *a)
{
    bool del = !strcmp(a->cmd->words, "group delete");
    char *enc = cli_url_encode(a->argv[0]), path[512];
    snprintf(path, sizeof(path), "/v1/groups/%s", enc ? enc : "");
    free(enc);
    int code = 0;
    json_t *r = cli_call(c, del ? "DELETE" : "GET", path, NULL, &code);
    if (!r)
        return code;
    if (del)
        return cli_done(c, r, "group %s deleted\n", a->argv[0]);
    if (c->json) {
        cli_print_json(r);
    } else {
        printf("%-24s %-14s %-5s %-12s %s\n", "NAME", "POLICY", "MODE", "MAX/HOST", "MEMBERS");
        group_row(r);
    }
    json_decref(r);
    return 0;
}

static const struct cli_arg arg_group[] = {{"NAME", CLI_K_TEXT, NULL, 0}, {0}};

const struct cli_cmd cmd_place_entries[] = {
    {.words = "vm place",
     .summary = "where a VM of this size would go (a dry run: nothing is made)",
     .opts =
         (const struct cli_opt[]){
             {"cpus", 'c', "N", CLI_K_TEXT, NULL, 0, "virtual CPUs (default 1)"},
             {"memory", 'm', "SIZE", CLI_K_TEXT, NULL, 0, "memory, e.g. 512M (a bare number: MiB)"},
             {"image", 'i', "IMG", CLI_K_IMAGE, NULL, 0, "check this image too"},
             {"host", 0, "HOST", CLI_K_TEXT, NULL, 0, "only HOST (the filters still apply)"},
             {"group", 0, "GROUP", CLI_K_TEXT, NULL, 0, "a placement group (yun group list)"},
             {"require", 0, "K=V", CLI_K_TEXT, NULL, CLI_OPT_REPEAT,
              "only hosts with this label, e.g. gpu=1"},
             {"cpu-model", 0, "MODEL", CLI_K_TEXT, NULL, 0,
              "only hosts that run this CPU model (default: the baseline)"},
             {"start", 0, NULL, CLI_K_TEXT, NULL, 0,
              "as a create that starts it: count what hosts hold"},
             {"explain", 0, NULL, CLI_K_TEXT, NULL, 0, "print every host's verdict"},
             {0}},
     .run = vm_place},
    {.words = "vm explain",
     .summary = "every host's verdict in the VM's last placement",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_VM, NULL, 0}, {0}},
     .run = vm_explain},
    {.words = "group", .summary = "placement groups (affinity, anti-affinity)"},
    {.words = "group create",
     .summary = "a group: its VMs together (affinity) or apart (anti-affinity)",
     .args = arg_group,
     .opts =
         (const struct cli_opt[]){
             {"anti-affinity", 0, "MODE", CLI_K_CHOICE, "hard soft", 0,
              "apart: hard refuses a host with a member, soft prefers another"},
             {"affinity", 0, "MODE", CLI_K_CHOICE, "hard soft", 0,
              "together: hard refuses a host without the members, soft prefers theirs"},
             {"max-per-host", 0, "N", CLI_K_TEXT, NULL, 0, "at most N members on one host"},
             {0}},
     .run = group_create},
    {.words = "group list", .alias = "ls", .summary = "placement groups", .run = group_list},
    {.words = "group show", .summary = "one group", .args = arg_group, .run = group_show_delete},
    {.words = "group delete",
     .alias = "rm",
     .summary = "remove a group (refused while VMs are in it)",
     .args = arg_group,
     .run = group_show_delete},
    {0},
};
