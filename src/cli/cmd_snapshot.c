/*
 * cmd_snapshot.c - `yun snapshot ...`: a VM's disk snapshots.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void snapshot_usage(FILE *f)
{
    fprintf(f, "usage: yun snapshot COMMAND VM [NAME]\n"
               "  create VM NAME     running or stopped; with the guest agent up, the guest's\n"
               "                     file systems are frozen around it (application-consistent)\n"
               "  list VM | show VM NAME\n"
               "  revert VM NAME     the disk goes back to NAME (VM stopped); later changes go\n"
               "  delete VM NAME [--no-wait]\n"
               "                     merges NAME's data into the layers above it\n");
}

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

/* --no-wait: the DELETE's task id, not waited for. */
static int delete_nowait(struct cli *c, const char *path, const char *name)
{
    struct http_resp r;
    char err[300];
    if (cli_http(c, "DELETE", path, NULL, &r, err, sizeof(err)) < 0) {
        fprintf(stderr, "yun: %s\n", err);
        return EXIT_CONN;
    }
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    int status = r.status;
    http_resp_free(&r);
    const char *id = json_string_value(json_object_get(json_object_get(j, "task"), "id"));
    if (status != 202 || !id) {
        const char *msg =
            json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        fprintf(stderr, "yun: %s\n", msg ? msg : "request failed");
        json_decref(j);
        return EXIT_API;
    }
    printf("snapshot %s merging: task %s\n", name, id);
    json_decref(j);
    return 0;
}

int cmd_snapshot(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        snapshot_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    if (argc < 3) {
        fprintf(stderr, "yun: snapshot %s needs a VM\n", sub);
        return EXIT_USAGE;
    }
    const char *vm = argv[2], *name = argc > 3 ? argv[3] : NULL;
    char path[400];
    int code = 0;
    json_t *r, *body;
    if ((!strcmp(sub, "list") || !strcmp(sub, "ls")) && argc == 3) {
        snprintf(path, sizeof(path), "/v1/vms/%s/snapshots", vm);
        if (!(r = cli_call(c, "GET", path, NULL, &code)))
            return code;
        if (c->json) {
            cli_print_json(json_object_get(r, "snapshots"));
        } else {
            printf("%-20s %-9s %-12s %8s %-20s %s\n", "NAME", "STATE", "CONSISTENCY", "SIZE",
                   "CREATED", "CURRENT");
            size_t i;
            json_t *s;
            json_array_foreach(json_object_get(r, "snapshots"), i, s) print_row(s);
        }
        json_decref(r);
        return 0;
    }
    if (!name) {
        fprintf(stderr, "yun: snapshot %s needs a VM and a snapshot NAME\n", sub);
        return EXIT_USAGE;
    }
    if (!strcmp(sub, "create") && argc == 4) {
        snprintf(path, sizeof(path), "/v1/vms/%s/snapshots", vm);
        body = json_pack("{s:s}", "name", name);
        r = cli_call(c, "POST", path, body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "snapshot %s created\n", name) : code;
    }
    snprintf(path, sizeof(path), "/v1/vms/%s/snapshots/%s", vm, name);
    if (!strcmp(sub, "show") && argc == 4) {
        if (!(r = cli_call(c, "GET", path, NULL, &code)))
            return code;
        cli_print_json(r);
        json_decref(r);
        return 0;
    }
    if ((!strcmp(sub, "delete") || !strcmp(sub, "rm")) && argc <= 5) {
        bool nowait = argc == 5 && !strcmp(argv[4], "--no-wait");
        if (argc == 5 && !nowait) {
            fprintf(stderr, "yun: usage: yun snapshot delete VM NAME [--no-wait]\n");
            return EXIT_USAGE;
        }
        if (nowait)
            return delete_nowait(c, path, name);
        /* the reply is the merge's task: cli_call waits for it */
        if (!(r = cli_call(c, "DELETE", path, NULL, &code)))
            return code;
        json_decref(r);
        printf("snapshot %s deleted\n", name);
        return 0;
    }
    if (!strcmp(sub, "revert") && argc == 4) {
        snprintf(path, sizeof(path), "/v1/vms/%s/snapshots/%s/actions/revert", vm, name);
        r = cli_call(c, "POST", path, NULL, &code);
        return r ? cli_done(c, r, "reverted to snapshot %s\n", name) : code;
    }
    fprintf(stderr, "yun: unknown or incomplete snapshot command '%s'\n", sub);
    snapshot_usage(stderr);
    return EXIT_USAGE;
}
