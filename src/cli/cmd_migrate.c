/*
 * cmd_migrate.c - `yun vm migrate NAME [--to HOST] [...]`: a running VM's
 * live move to another host (POST /v1/vms/NAME/migrate, the vm.migrate
 * task, followed with its phase and figures unless --no-wait), and
 * `--dry-run`: the planner's target and prediction (POST
 * /v1/vms/NAME/migrate/plan), nothing moved.
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_plan(json_t *plan)
{
    json_t *t = json_object_get(plan, "target");
    const char *name = json_string_value(json_object_get(t, "name"));
    printf("target: %s\n", name ? name : "(none)");
    const char *st = json_string_value(json_object_get(plan, "strategy"));
    if (st)
        printf("strategy: %s\n", st);
    json_t *l = json_object_get(plan, "link");
    const char *src = json_string_value(json_object_get(l, "source"));
    json_t *mj = json_object_get(l, "measured_bps");
    const char *why = json_string_value(json_object_get(l, "why"));
    if (src) {
        printf("link: %.1f MiB/s (%s",
               (double)json_integer_value(json_object_get(l, "bandwidth_bps")) / 1048576.0, src);
        if (json_is_integer(mj))
            printf("; measured %.1f MiB/s %.0f s ago", (double)json_integer_value(mj) / 1048576.0,
                   (double)json_integer_value(json_object_get(l, "age_ms")) / 1000.0);
        if (why)
            printf("; not measured: %s", why);
        printf(")\n");
    }
    if (json_is_true(json_object_get(plan, "cold")))
        printf("cold: the vm is stopped; its files are copied, nothing to predict\n");
    json_t *p = json_object_get(plan, "prediction");
    if (p && !json_is_null(p)) {
        char *s = json_dumps(p, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("prediction: %s\n", s ? s : "?");
        free(s);
    }
}

static int dry_run(struct cli *c, const char *path, json_t *body)
{
    char err[300];
    struct http_resp hr;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int rc = cli_http(c, "POST", path, text, &hr, err, sizeof err);
    free(text);
    if (rc < 0) {
        fprintf(stderr, "yun: %s\n", err);
        return EXIT_CONN;
    }
    json_t *r = json_loads(hr.body ? hr.body : "", 0, NULL);
    int status = hr.status;
    http_resp_free(&hr);
    if (status == 200) {
        if (c->json)
            cli_print_json(r);
        else
            print_plan(r);
        json_decref(r);
        return 0;
    }
    const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
    fprintf(stderr, "yun: %s\n", msg ? msg : "the dry run failed");
    if (json_object_get(r, "plan") && !c->json)
        print_plan(json_object_get(r, "plan"));
    json_decref(r);
    return EXIT_API;
}

static int vm_migrate(struct cli *c, const struct cli_args *a)
{
    const char *name = a->argv[0], *to = cli_val(a, "to"), *bw = cli_val(a, "max-bandwidth"),
               *dt = cli_val(a, "max-downtime"), *st = cli_val(a, "strategy");
    json_t *body = json_object();
    if (to)
        json_object_set_new(body, "to", json_string(to));
    if (st)
        json_object_set_new(body, "strategy", json_string(st));
    if (bw) {
        uint64_t v;
        if (parse_size(bw, &v) < 0) {
            fprintf(stderr, "yun: --max-bandwidth wants bytes per second (e.g. 50M), not '%s'\n",
                    bw);
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "max_bandwidth", json_integer((json_int_t)v));
    }
    if (dt) {
        char *end;
        long v = strtol(dt, &end, 10);
        if (!*dt || *end || v < 0 || v > 3600000) {
            fprintf(stderr, "yun: --max-downtime wants milliseconds (0..3600000), not '%s'\n", dt);
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "max_downtime_ms", json_integer(v));
    }
    if (cli_flag(a, "auto-converge"))
        json_object_set_new(body, "auto_converge", json_true());
    if (cli_flag(a, "postcopy"))
        json_object_set_new(body, "postcopy", json_true());
    char *enc = cli_url_encode(name);
    char path[400];
    snprintf(path, sizeof path, "/v1/vms/%s/migrate%s", enc ? enc : "",
             cli_flag(a, "dry-run") ? "/plan" : "");
    free(enc);
    if (cli_flag(a, "dry-run"))
        return dry_run(c, path, body);
    return cli_post_task(c, a, path, body, "vm %s migrated\n", name);
}

const struct cli_cmd cmd_migrate_entries[] = {
    {.words = "vm migrate",
     .summary = "move a VM to another host: live while it runs, cold when stopped",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_VM, NULL, 0}, {0}},
     .opts =
         (const struct cli_opt[]){
             {"to", 0, "HOST", CLI_K_TEXT, NULL, 0, "the target host (name or id)"},
             {"strategy", 0, "S", CLI_K_CHOICE, "least-loaded round-robin random pack spread", 0,
              "how to choose the target without --to"},
             {"max-bandwidth", 0, "RATE", CLI_K_TEXT, NULL, 0,
              "bytes per second for memory and disk (e.g. 50M; default unlimited)"},
             {"max-downtime", 0, "MS", CLI_K_TEXT, NULL, 0,
              "the longest pause allowed at switchover (default QEMU's, 300 ms)"},
             {"auto-converge", 0, NULL, CLI_K_TEXT, NULL, 0,
              "throttle a guest that dirties memory faster than the link"},
             {"postcopy", 0, NULL, CLI_K_TEXT, NULL, 0, "post-copy (not supported yet)"},
             {"dry-run", 0, NULL, CLI_K_TEXT, NULL, 0, "print the target and the prediction only"},
             {"no-wait", 0, NULL, CLI_K_TEXT, NULL, 0, "print the task id and return"},
             {0}},
     .run = vm_migrate,
     .more = "The move is the task vm.migrate: `yun task cancel ID` rolls it back (the VM keeps\n"
             "running where it was). Attached volumes move with it. A stopped VM moves cold:\n"
             "its disk and volumes are copied to the target. Refused: a VM with snapshots, a\n"
             "linked-clone volume.\n"},
    {0},
};
