/*
 * cmd_volume.c - `yun pool list` and `yun volume ...`: create, import,
 * list, show, clone (linked or --full), resize, compact, export, attach,
 * detach, delete.
 */
#include "cli/cli.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void volume_usage(FILE *f)
{
    fprintf(f,
            "usage: yun volume COMMAND\n"
            "  create NAME --size SIZE [--format qcow2|raw]\n"
            "  import NAME FILE [--format qcow2|raw]   validated copy of a file into the pool\n"
            "  list | show NAME\n"
            "  clone SRC NEW [--full]   linked clone (qcow2 on SRC), or a full copy\n"
            "  resize NAME --size SIZE  grow (online when attached to a running vm)\n"
            "  compact NAME             rewrite, dropping unused clusters; prints bytes reclaimed\n"
            "  export NAME FILE [--format qcow2|raw]   standalone copy to FILE (must not exist)\n"
            "  attach NAME VM           hot-plugged when VM runs; kept across restarts\n"
            "  detach NAME [--no-wait]  a running guest must release the device first\n"
            "  delete NAME              refused while attached or backing a clone\n"
            "yun pool list              pools with capacity and allocation\n");
}

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

int cmd_pool(struct cli *c, int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "list") && strcmp(argv[1], "ls"))) {
        fprintf(stderr, "yun: usage: yun pool list\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : EXIT_USAGE;
    }
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

/* The value after `flag` in argv[from..], or NULL. */
static const char *flag_value(int argc, char **argv, int from, const char *flag)
{
    for (int i = from; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag))
            return argv[i + 1];
    return NULL;
}

int cmd_volume(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        volume_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    int code = 0;
    json_t *r, *body;
    char path[300];
    uint64_t sz;
    if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
        if (!(r = cli_call(c, "GET", "/v1/volumes", NULL, &code)))
            return code;
        if (c->json) {
            cli_print_json(json_object_get(r, "volumes"));
        } else {
            printf("%-20s %-6s %8s %8s %-10s %-16s %s\n", "NAME", "FORMAT", "VSIZE", "ONDISK",
                   "STATE", "VM", "BACKING");
            size_t i;
            json_t *v;
            json_array_foreach(json_object_get(r, "volumes"), i, v) print_volume(v);
        }
        json_decref(r);
        return 0;
    }
    if (argc < 3) {
        fprintf(stderr, "yun: volume %s needs a NAME\n", sub);
        return EXIT_USAGE;
    }
    const char *name = argv[2], *size = flag_value(argc, argv, 3, "--size");
    if (size && parse_size(size, &sz) < 0) {
        fprintf(stderr, "yun: --size takes a size such as 4G, not '%s'\n", size);
        return EXIT_USAGE;
    }
    if (!strcmp(sub, "create")) {
        if (!size) {
            fprintf(stderr, "yun: volume create needs --size\n");
            return EXIT_USAGE;
        }
        body = json_pack("{s:s,s:s}", "name", name, "size", size);
        for (int i = 3; i + 1 < argc; i++)
            if (!strcmp(argv[i], "--format"))
                json_object_set_new(body, "format", json_string(argv[i + 1]));
        r = cli_call(c, "POST", "/v1/volumes", body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "volume %s created\n", name) : code;
    }
    const char *fmt = flag_value(argc, argv, 3, "--format");
    if (!strcmp(sub, "import") && argc >= 4) {
        body = json_pack("{s:s,s:s}", "name", name, "source", argv[3]);
        if (fmt)
            json_object_set_new(body, "format", json_string(fmt));
        r = cli_call(c, "POST", "/v1/volumes", body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "volume %s imported\n", name) : code;
    }
    snprintf(path, sizeof(path), "/v1/volumes/%s", name);
    if (!strcmp(sub, "export") && argc >= 4) {
        snprintf(path, sizeof(path), "/v1/volumes/%s/actions/export", name);
        body = json_pack("{s:s}", "path", argv[3]);
        if (fmt)
            json_object_set_new(body, "format", json_string(fmt));
        r = cli_call(c, "POST", path, body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "volume %s exported\n", name) : code;
    }
    if (!strcmp(sub, "attach") && argc == 4) {
        snprintf(path, sizeof(path), "/v1/volumes/%s/actions/attach", name);
        body = json_pack("{s:s}", "vm", argv[3]);
        r = cli_call(c, "POST", path, body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "volume %s attached\n", name) : code;
    }
    if (!strcmp(sub, "detach") && argc >= 3) {
        bool nowait = argc == 4 && !strcmp(argv[3], "--no-wait");
        if (argc > 4 || (argc == 4 && !nowait)) {
            fprintf(stderr, "yun: usage: yun volume detach NAME [--no-wait]\n");
            return EXIT_USAGE;
        }
        snprintf(path, sizeof(path), "/v1/volumes/%s/actions/detach", name);
        if (!(r = cli_call(c, "POST", path, NULL, &code)))
            return code;
        const char *st = json_string_value(json_object_get(r, "state"));
        bool pending = st && !strcmp(st, "detaching");
        json_decref(r);
        snprintf(path, sizeof(path), "/v1/volumes/%s", name);
        /* the guest releases the device in its own time: wait up to a minute */
        for (int i = 0; pending && !nowait && i < 600; i++) {
            cli_sleep_ms(100);
            if (!(r = cli_call(c, "GET", path, NULL, &code)))
                return code;
            st = json_string_value(json_object_get(r, "state"));
            pending = st && !strcmp(st, "detaching");
            json_decref(r);
        }
        if (pending && !nowait) {
            fprintf(stderr,
                    "yun: volume %s: the guest has not released the device yet "
                    "(still detaching)\n",
                    name);
            return EXIT_FAIL;
        }
        printf(pending ? "volume %s detaching\n" : "volume %s detached\n", name);
        return 0;
    }
    if (!strcmp(sub, "show") && argc == 3) {
        if (!(r = cli_call(c, "GET", path, NULL, &code)))
            return code;
        cli_print_json(r);
        json_decref(r);
        return 0;
    }
    if ((!strcmp(sub, "delete") || !strcmp(sub, "rm")) && argc == 3) {
        r = cli_call(c, "DELETE", path, NULL, &code);
        return r ? cli_done(c, r, "volume %s deleted\n", name) : code;
    }
    if (!strcmp(sub, "clone") && argc >= 4) {
        bool full = argc == 5 && !strcmp(argv[4], "--full");
        if (argc > 5 || (argc == 5 && !full)) {
            fprintf(stderr, "yun: usage: yun volume clone SRC NEW [--full]\n");
            return EXIT_USAGE;
        }
        snprintf(path, sizeof(path), "/v1/volumes/%s/actions/clone", name);
        body = json_pack("{s:s,s:b}", "name", argv[3], "full", full);
        r = cli_call(c, "POST", path, body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "volume %s cloned\n", argv[3]) : code;
    }
    if (!strcmp(sub, "resize")) {
        if (!size) {
            fprintf(stderr, "yun: volume resize needs --size\n");
            return EXIT_USAGE;
        }
        snprintf(path, sizeof(path), "/v1/volumes/%s/actions/resize", name);
        body = json_pack("{s:s}", "size", size);
        r = cli_call(c, "POST", path, body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "volume %s resized\n", name) : code;
    }
    if (!strcmp(sub, "compact") && argc == 3) {
        snprintf(path, sizeof(path), "/v1/volumes/%s/actions/compact", name);
        if (!(r = cli_call(c, "POST", path, NULL, &code)))
            return code;
        if (c->json) {
            cli_print_json(r);
        } else {
            char b[16], a[16], rec[16];
            cli_fmt_bytes(json_integer_value(json_object_get(r, "before_bytes")), b, sizeof(b));
            cli_fmt_bytes(json_integer_value(json_object_get(r, "after_bytes")), a, sizeof(a));
            cli_fmt_bytes(json_integer_value(json_object_get(r, "reclaimed_bytes")), rec,
                          sizeof(rec));
            printf("volume %s compacted: %s -> %s on disk (%s reclaimed)\n", name, b, a, rec);
        }
        json_decref(r);
        return 0;
    }
    fprintf(stderr, "yun: unknown or incomplete volume command '%s'\n", sub);
    volume_usage(stderr);
    return EXIT_USAGE;
}
