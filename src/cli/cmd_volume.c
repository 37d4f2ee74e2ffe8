/*
 * cmd_volume.c - `yun pool list` and `yun volume ...`: create, import,
 * list, show, clone (linked or --full), resize, compact, export, attach,
 * detach, delete (their rows of the command table and their handlers).
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_volume(json_t *v)
{
    char vs[16], as[16];
    cli_fmt_bytes(json_integer_value(json_object_get(v, "virtual_size")), vs, sizeof(vs));
    cli_fmt_bytes(json_integer_value(json_object_get(v, "actual_size")), as, sizeof(as));
    printf("%-20s %-6s %8s %8s %-10s %-16s %s\n", json_string_value(json_object_get(v, "name")),
           json_string_value(json_object_get(v, "format")), vs, as,
           json_string_value(json_object_get(v, "state")),
           json_string_value(json_object_get(v, "vm")),
           json_string_value(json_object_get(v, "backing")));
}

static int pool_list(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/pools", NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(json_object_get(r, "pools"));
    } else {
        printf("%-10s %-5s %9s %9s %9s %7s %s\n", "NAME", "TYPE", "CAPACITY", "AVAILABLE",
               "ALLOCATED", "VOLUMES", "PATH");
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(r, "pools"), i, p)
        {
            char cap[16], av[16], al[16];
            cli_fmt_bytes(json_integer_value(json_object_get(p, "capacity")), cap, sizeof(cap));
            cli_fmt_bytes(json_integer_value(json_object_get(p, "available")), av, sizeof(av));
            cli_fmt_bytes(json_integer_value(json_object_get(p, "allocation")), al, sizeof(al));
            printf("%-10s %-5s %9s %9s %9s %7lld %s\n",
                   json_string_value(json_object_get(p, "name")),
                   json_string_value(json_object_get(p, "type")), cap, av, al,
                   (long long)json_integer_value(json_object_get(p, "volumes")),
                   json_string_value(json_object_get(p, "path")));
        }
    }
    json_decref(r);
    return 0;
}

static int pool_create(struct cli *c, const struct cli_args *a)
{
    json_t *body = json_pack("{s:s,s:s,s:b}", "name", a->argv[0], "path", cli_val(a, "path"),
                             "shared", cli_flag(a, "shared"));
    int code = 0;
    json_t *r = cli_call(c, "POST", "/v1/pools", body, &code);
    json_decref(body);
    if (!r)
        return code;
    if (c->json)
        cli_print_json(r);
    else
        printf("pool %s at %s%s\n", json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "path")),
               json_is_true(json_object_get(r, "shared")) ? " (shared)" : "");
    json_decref(r);
    return 0;
}

static int pool_delete(struct cli *c, const struct cli_args *a)
{
    char path[200];
    char *enc = cli_url_encode(a->argv[0]);
    snprintf(path, sizeof path, "/v1/pools/%s", enc ? enc : "");
    free(enc);
    int code = 0;
    json_t *r = cli_call(c, "DELETE", path, NULL, &code);
    if (!r)
        return code;
    if (!c->json)
        printf("pool %s deleted\n", a->argv[0]);
    else
        cli_print_json(r);
    json_decref(r);
    return 0;
}

/* "/v1/volumes/NAME" + suffix */
static void vol_path(char *buf, size_t len, const char *name, const char *suffix)
{
    char *enc = cli_url_encode(name);
    snprintf(buf, len, "/v1/volumes/%s%s", enc ? enc : "", suffix);
    free(enc);
}

static int size_arg(const char *v, uint64_t *sz)
{
    if (parse_size(v, sz) < 0) {
        fprintf(stderr, "yun: --size takes a size such as 4G, not '%s'\n", v);
        return -1;
    }
    return 0;
}

static int volume_list(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/volumes", NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(json_object_get(r, "volumes"));
    } else {
        printf("%-20s %-6s %8s %8s %-10s %-16s %s\n", "NAME", "FORMAT", "VSIZE", "ONDISK", "STATE",
               "VM", "BACKING");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(r, "volumes"), i, v) print_volume(v);
    }
    json_decref(r);
    return 0;
}

static int volume_create(struct cli *c, const struct cli_args *a)
{
    uint64_t sz;
    const char *name = a->argv[0], *size = cli_val(a, "size"), *fmt = cli_val(a, "format");
    if (size_arg(size, &sz) < 0)
        return EXIT_USAGE;
    json_t *body = json_pack("{s:s,s:s}", "name", name, "size", size);
    if (fmt)
        json_object_set_new(body, "format", json_string(fmt));
    const char *host = cli_val(a, "host");
    if (host)
        json_object_set_new(body, "host", json_string(host));
    return cli_post_task(c, a, "/v1/volumes", body, "volume %s created\n", name);
}

static int volume_import(struct cli *c, const struct cli_args *a)
{
    const char *name = a->argv[0], *fmt = cli_val(a, "format");
    json_t *body = json_pack("{s:s,s:s}", "name", name, "source", a->argv[1]);
    if (fmt)
        json_object_set_new(body, "format", json_string(fmt));
    return cli_post_task(c, a, "/v1/volumes", body, "volume %s imported\n", name);
}

static int volume_export(struct cli *c, const struct cli_args *a)
{
    char path[600];
    const char *name = a->argv[0], *fmt = cli_val(a, "format");
    vol_path(path, sizeof(path), name, "/actions/export");
    json_t *body = json_pack("{s:s}", "path", a->argv[1]);
    if (fmt)
        json_object_set_new(body, "format", json_string(fmt));
    return cli_post_task(c, a, path, body, "volume %s exported\n", name);
}

static int volume_attach(struct cli *c, const struct cli_args *a)
{
    char path[600];
    vol_path(path, sizeof(path), a->argv[0], "/actions/attach");
    return cli_post_task(c, a, path, json_pack("{s:s}", "vm", a->argv[1]), "volume %s attached\n",
                         a->argv[0]);
}

/* 200 when no QEMU held it; else a task (volume.detach) until the guest
 * has released the device: waited for unless --no-wait. */
static int volume_detach(struct cli *c, const struct cli_args *a)
{
    char path[600];
    vol_path(path, sizeof(path), a->argv[0], "/actions/detach");
    return cli_post_task(c, a, path, NULL, "volume %s detached\n", a->argv[0]);
}

static int volume_show(struct cli *c, const struct cli_args *a)
{
    char path[600];
    int code = 0;
    vol_path(path, sizeof(path), a->argv[0], "");
    json_t *r = cli_call(c, "GET", path, NULL, &code);
    if (!r)
        return code;
    cli_print_json(r);
    json_decref(r);
    return 0;
}

static int volume_delete(struct cli *c, const struct cli_args *a)
{
    char path[600];
    int code = 0;
    vol_path(path, sizeof(path), a->argv[0], "");
    json_t *r = cli_call(c, "DELETE", path, NULL, &code);
    return r ? cli_done(c, r, "volume %s deleted\n", a->argv[0]) : code;
}

static int volume_clone(struct cli *c, const struct cli_args *a)
{
    char path[600];
    vol_path(path, sizeof(path), a->argv[0], "/actions/clone");
    json_t *body = json_pack("{s:s,s:b}", "name", a->argv[1], "full", cli_flag(a, "full"));
    return cli_post_task(c, a, path, body, "volume %s cloned\n", a->argv[1]);
}

static int volume_resize(struct cli *c, const struct cli_args *a)
{
    char path[600];
    uint64_t sz;
    const char *size = cli_val(a, "size");
    if (size_arg(size, &sz) < 0)
        return EXIT_USAGE;
    vol_path(path, sizeof(path), a->argv[0], "/actions/resize");
    return cli_post_task(c, a, path, json_pack("{s:s}", "size", size), "volume %s resized\n",
                         a->argv[0]);
}

static int volume_compact(struct cli *c, const struct cli_args *a)
{
    char path[600];
    const char *name = a->argv[0];
    int code = 0;
    json_t *r, *res = NULL;
    vol_path(path, sizeof(path), name, "/actions/compact");
    if (!(r = cli_call(c, "POST", path, NULL, &code)))
        return code;
    switch (cli_task_follow(c, r, cli_flag(a, "no-wait"), &res, &code)) {
    case CLI_TASK_EXIT:
        json_decref(r);
        return code;
    case CLI_TASK_DONE:
        json_decref(r);
        r = res ? res : json_object();
        break;
    case CLI_NO_TASK:
        break;
    }
    if (c->json) {
        cli_print_json(r);
    } else if (!json_object_get(r, "reclaimed_bytes")) {
        printf("volume %s compacted\n", name);
    } else {
        char b[16], af[16], rec[16];
        cli_fmt_bytes(json_integer_value(json_object_get(r, "before_bytes")), b, sizeof(b));
        cli_fmt_bytes(json_integer_value(json_object_get(r, "after_bytes")), af, sizeof(af));
        cli_fmt_bytes(json_integer_value(json_object_get(r, "reclaimed_bytes")), rec, sizeof(rec));
        printf("volume %s compacted: %s -> %s on disk (%s reclaimed)\n", name, b, af, rec);
    }
    json_decref(r);
    return 0;
}

static const struct cli_arg arg_vol[] = {{"NAME", CLI_K_VOLUME, NULL, 0}, {0}};
#define OPT_NO_WAIT                                                                                \
    {                                                                                              \
        "no-wait", 0, NULL, CLI_K_TEXT, NULL, 0, "print the task id and return at once"            \
    }
#define OPT_FORMAT(help)                                                                           \
    {                                                                                              \
        "format", 0, "FORMAT", CLI_K_CHOICE, "qcow2 raw", 0, help                                  \
    }

const struct cli_cmd cmd_volume_entries[] = {
    {.words = "volume", .summary = "data volumes in storage pools"},
    {.words = "volume create",
     .summary = "a new empty volume",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_TEXT, NULL, 0}, {0}},
     .opts = (const struct cli_opt[]){{"size", 0, "SIZE", CLI_K_TEXT, NULL, CLI_OPT_REQUIRED,
                                       "its virtual size, e.g. 20G"},
                                      OPT_FORMAT("qcow2 (thin, default) or raw"),
                                      {"host", 0, "HOST", CLI_K_TEXT, NULL, 0,
                                       "the host whose pool holds it (default: the local host)"},
                                      {0}},
     .run = volume_create},
    {.words = "volume import",
     .summary = "a validated copy of a file into the pool",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_TEXT, NULL, 0},
                                      {"FILE", CLI_K_FILE, NULL, 0},
                                      {0}},
     .opts = (const struct cli_opt[]){OPT_FORMAT("the file's format (default: detected)"),
                                      OPT_NO_WAIT,
                                      {0}},
     .run = volume_import},
    {.words = "volume list", .alias = "ls", .summary = "all volumes", .run = volume_list},
    {.words = "volume show", .summary = "one volume (JSON)", .args = arg_vol, .run = volume_show},
    {.words = "volume clone",
     .summary = "linked clone (a qcow2 on SRC), or a full copy",
     .args = (const struct cli_arg[]){{"SRC", CLI_K_VOLUME, NULL, 0},
                                      {"NEW", CLI_K_TEXT, NULL, 0},
                                      {0}},
     .opts = (const struct cli_opt[]){{"full", 0, NULL, CLI_K_TEXT, NULL, 0,
                                       "copy the data: no link to SRC"},
                                      OPT_NO_WAIT,
                                      {0}},
     .run = volume_clone},
    {.words = "volume resize",
     .summary = "grow (online when attached to a running vm)",
     .args = arg_vol,
     .opts =
         (const struct cli_opt[]){
             {"size", 0, "SIZE", CLI_K_TEXT, NULL, CLI_OPT_REQUIRED, "the new virtual size"}, {0}},
     .run = volume_resize},
    {.words = "volume compact",
     .summary = "rewrite, dropping unused clusters; prints bytes reclaimed",
     .args = arg_vol,
     .opts = (const struct cli_opt[]){OPT_NO_WAIT, {0}},
     .run = volume_compact},
    {.words = "volume export",
     .summary = "a standalone copy to FILE (which must not exist)",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_VOLUME, NULL, 0},
                                      {"FILE", CLI_K_FILE, NULL, 0},
                                      {0}},
     .opts = (const struct cli_opt[]){OPT_FORMAT("qcow2 or raw (default: the volume's)"),
                                      OPT_NO_WAIT,
                                      {0}},
     .run = volume_export},
    {.words = "volume attach",
     .summary = "give it to a VM: hot-plugged when it runs, kept across restarts",
     .args =
         (const struct cli_arg[]){{"NAME", CLI_K_VOLUME, NULL, 0}, {"VM", CLI_K_VM, NULL, 0}, {0}},
     .run = volume_attach},
    {.words = "volume detach",
     .summary = "take it from its VM (a running guest must release the device first)",
     .args = arg_vol,
     .opts = (const struct cli_opt[]){OPT_NO_WAIT, {0}},
     .run = volume_detach},
    {.words = "volume delete",
     .alias = "rm",
     .summary = "remove it (refused while attached or backing a clone)",
     .args = arg_vol,
     .run = volume_delete},
    {.words = "pool", .summary = "storage pools"},
    {.words = "pool list",
     .alias = "ls",
     .summary = "pools with capacity and allocation",
     .run = pool_list},
    {.words = "pool create",
     .summary = "declare a pool: a directory for VM disks (--shared: the same path on every host)",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_TEXT, NULL, 0}, {0}},
     .opts = (const struct cli_opt[]){{"path", 0, "PATH", CLI_K_FILE, NULL, CLI_OPT_REQUIRED,
                                       "its absolute directory"},
                                      {"shared", 0, NULL, CLI_K_TEXT, NULL, 0,
                                       "every host mounts it at PATH (NFS, CephFS): disks "
                                       "are not copied by a move, and its VMs may be --ha"},
                                      {0}},
     .run = pool_create},
    {.words = "pool delete",
     .alias = "rm",
     .summary = "forget a pool declared by name (refused while a VM's disk is in it)",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_TEXT, NULL, 0}, {0}},
     .run = pool_delete},
    {0},
};
