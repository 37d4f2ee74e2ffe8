/*
 * cmd_snapshot.c - `yun snapshot ...`: a VM's disk snapshots (their rows of
 * the command table and their handlers).
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_row(json_t *s)
{
    char size[16], when[32];
    cli_fmt_bytes(json_integer_value(json_object_get(s, "size")), size, sizeof(size));
    cli_fmt_time(json_integer_value(json_object_get(s, "created_at")), when, sizeof(when));
    printf("%-20s %-9s %-12s %8s %-20s %s\n", json_string_value(json_object_get(s, "name")),
           json_string_value(json_object_get(s, "state")),
           json_string_value(json_object_get(s, "consistency")), size, when,
           json_is_true(json_object_get(s, "current")) ? "*" : "");
}

/* A merge into a running VM's disk runs as a QEMU job: wait for the
 * snapshot to disappear (done) or to leave "deleting" (failed). */
static int wait_gone(struct cli *c, const char *path)
{
    for (int i = 0; i < 3000; i++) {
        struct http_resp r;
        char err[300];
        if (cli_http(c, "GET", path, NULL, &r, err, sizeof(err)) < 0) {
            fprintf(stderr, "yun: %s\n", err);
            return EXIT_CONN;
        }
        if (r.status == 404) {
            http_resp_free(&r);
            return 0;
        }
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        http_resp_free(&r);
        const char *st = json_string_value(json_object_get(j, "state"));
        bool deleting = st && !strcmp(st, "deleting");
        json_decref(j);
        if (!deleting) {
            fprintf(stderr, "yun: the merge failed (see yun events)\n");
            return EXIT_API;
        }
        cli_sleep_ms(100);
    }
    fprintf(stderr, "yun: still merging after 5 minutes\n");
    return EXIT_API;
}

/* "/v1/vms/VM/snapshots[/NAME]" + suffix */
static void snap_path(char *buf, size_t len, const char *vm, const char *name, const char *suffix)
{
    char *ev = cli_url_encode(vm), *en = name ? cli_url_encode(name) : NULL;
    snprintf(buf, len, "/v1/vms/%s/snapshots%s%s%s", ev ? ev : "", name ? "/" : "", en ? en : "",
             suffix);
    free(ev);
    free(en);
}

static int snapshot_list(struct cli *c, const struct cli_args *a)
{
    char path[800];
    int code = 0;
    snap_path(path, sizeof(path), a->argv[0], NULL, "");
    json_t *r = cli_call(c, "GET", path, NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(json_object_get(r, "snapshots"));
    } else {
        printf("%-20s %-9s %-12s %8s %-20s %s\n", "NAME", "STATE", "CONSISTENCY", "SIZE", "CREATED",
               "CURRENT");
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(r, "snapshots"), i, s) print_row(s);
    }
    json_decref(r);
    return 0;
}

static int snapshot_create(struct cli *c, const struct cli_args *a)
{
    char path[800];
    snap_path(path, sizeof(path), a->argv[0], NULL, "");
    return cli_post_task(c, a, path, json_pack("{s:s}", "name", a->argv[1]),
                         "snapshot %s created\n", a->argv[1]);
}

static int snapshot_show(struct cli *c, const struct cli_args *a)
{
    char path[800];
    int code = 0;
    snap_path(path, sizeof(path), a->argv[0], a->argv[1], "");
    json_t *r = cli_call(c, "GET", path, NULL, &code);
    if (!r)
        return code;
    cli_print_json(r);
    json_decref(r);
    return 0;
}

static int snapshot_delete(struct cli *c, const struct cli_args *a)
{
    char path[800];
    const char *name = a->argv[1];
    bool nowait = cli_flag(a, "no-wait");
    int code = 0;
    json_t *r, *res = NULL;
    snap_path(path, sizeof(path), a->argv[0], name, "");
    if (!(r = cli_call(c, "DELETE", path, NULL, &code)))
        return code;
    enum cli_task_outcome t = cli_task_follow(c, r, nowait, &res, &code);
    if (t != CLI_NO_TASK) {
        json_decref(r);
        json_decref(res);
        if (t == CLI_TASK_DONE)
            printf("snapshot %s deleted\n", name);
        return t == CLI_TASK_EXIT ? code : 0;
    }
    /* before tasks: a merge into a running VM's disk answers {"deleting"} */
    bool merging = json_object_get(r, "deleting") != NULL;
    json_decref(r);
    if (merging && !nowait && (code = wait_gone(c, path)) != 0)
        return code;
    printf(merging && nowait ? "snapshot %s merging\n" : "snapshot %s deleted\n", name);
    return 0;
}

static int snapshot_revert(struct cli *c, const struct cli_args *a)
{
    char path[800];
    snap_path(path, sizeof(path), a->argv[0], a->argv[1], "/actions/revert");
    return cli_post_task(c, a, path, NULL, "reverted to snapshot %s\n", a->argv[1]);
}

static const struct cli_arg arg_vm_snap[] = {
    {"VM", CLI_K_VM, NULL, 0}, {"NAME", CLI_K_SNAPSHOT, NULL, 0}, {0}};

const struct cli_cmd cmd_snapshot_entries[] = {
    {.words = "snapshot", .summary = "a VM's disk snapshots"},
    {.words = "snapshot create",
     .summary = "snapshot the disk, running or stopped (the agent freezes the guest's file "
                "systems around it)",
     .args =
         (const struct cli_arg[]){{"VM", CLI_K_VM, NULL, 0}, {"NAME", CLI_K_TEXT, NULL, 0}, {0}},
     .run = snapshot_create},
    {.words = "snapshot list",
     .alias = "ls",
     .summary = "a VM's snapshots; * marks the one its disk sits on",
     .args = (const struct cli_arg[]){{"VM", CLI_K_VM, NULL, 0}, {0}},
     .run = snapshot_list},
    {.words = "snapshot show",
     .summary = "one snapshot (JSON)",
     .args = arg_vm_snap,
     .run = snapshot_show},
    {.words = "snapshot revert",
     .summary = "the disk goes back to NAME (VM stopped); later changes are lost",
     .args = arg_vm_snap,
     .run = snapshot_revert},
    {.words = "snapshot delete",
     .alias = "rm",
     .summary = "merge NAME's data into the layers above it, then drop it",
     .args = arg_vm_snap,
     .opts = (const struct cli_opt[]){{"no-wait", 0, NULL, CLI_K_TEXT, NULL, 0,
                                       "return while the merge runs (prints the task id)"},
                                      {0}},
     .run = snapshot_delete},
    {0},
};
