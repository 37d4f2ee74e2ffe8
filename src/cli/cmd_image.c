/*
 * cmd_image.c - `yun image ...`: build, import, list, show, delete.
 */
#include "cli/cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void image_usage(FILE *f)
{
    fprintf(f, "usage: yun image COMMAND\n"
               "  build tiny|debian                build an image from Debian packages (debian:\n"
               "                                   debootstrap + cloud-init + guest agent)\n"
               "  import FILE [--name N] [--format qcow2|raw]   copy a disk image in (validated)\n"
               "  list\n"
               "  show NAME\n"
               "  delete NAME                      refused while a VM uses it\n");
}

static void print_image_row(json_t *m)
{
    char vs[16], as[16], mm[16] = "-";
    cli_fmt_bytes(json_integer_value(json_object_get(m, "virtual_size")), vs, sizeof(vs));
    cli_fmt_bytes(json_integer_value(json_object_get(m, "actual_size")), as, sizeof(as));
    /* the least memory it boots with; "-" when the image does not say */
    json_int_t min_mb = json_integer_value(json_object_get(m, "min_memory_mb"));
    if (min_mb > 0)
        cli_fmt_bytes((long long)min_mb << 20, mm, sizeof(mm));
    printf("%-16s %-6s %8s %8s %7s %-8s %s\n", json_string_value(json_object_get(m, "name")),
           json_string_value(json_object_get(m, "format")), vs, as, mm,
           json_string_value(json_object_get(m, "os")),
           json_string_value(json_object_get(m, "kernel"))[0] ? "direct-kernel" : "disk-boot");
}

int cmd_image(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        image_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            image_usage(stdout);
            return 0;
        }
    const char *sub = argv[1];
    int code = 0;
    json_t *r;
    if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
        if (!(r = cli_call(c, "GET", "/v1/images", NULL, &code)))
            return code;
        if (c->json) {
            cli_print_json(json_object_get(r, "images"));
        } else {
            printf("%-16s %-6s %8s %8s %7s %-8s %s\n", "NAME", "FORMAT", "VSIZE", "ONDISK",
                   "MINMEM", "OS", "BOOT");
            size_t i;
            json_t *m;
            json_array_foreach(json_object_get(r, "images"), i, m) print_image_row(m);
        }
        json_decref(r);
        return 0;
    }
    if (!strcmp(sub, "build")) {
        if (argc != 3) {
            fprintf(stderr, "yun: usage: yun image build tiny\n");
            return EXIT_USAGE;
        }
        json_t *body = json_pack("{s:s}", "kind", argv[2]);
        /* slow kinds build in the background (202); ask again until ready */
        bool said = false;
        for (;;) {
            r = cli_call(c, "POST", "/v1/images/build", body, &code);
            if (!r || json_object_get(r, "id"))
                break;
            if (!said && !c->json)
                fprintf(stderr,
                        "building image %s in the background (a few minutes; "
                        "`yun events -f` shows progress)...\n",
                        argv[2]);
            said = true;
            json_decref(r);
            struct timespec ts = {2, 0};
            nanosleep(&ts, NULL);
        }
        json_decref(body);
        return r ? cli_done(c, r, "image %s ready\n", argv[2]) : code;
    }
    if (!strcmp(sub, "import")) {
        const char *file = NULL, *name = NULL, *format = NULL;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--name") && i + 1 < argc)
                name = argv[++i];
            else if (!strcmp(argv[i], "--format") && i + 1 < argc)
                format = argv[++i];
            else if (argv[i][0] == '-' || file) {
                fprintf(stderr, "yun: usage: yun image import FILE [--name N] [--format F]\n");
                return EXIT_USAGE;
            } else
                file = argv[i];
        }
        if (!file) {
            fprintf(stderr, "yun: image import needs a FILE\n");
            return EXIT_USAGE;
        }
        char abs[PATH_MAX];
        if (!realpath(file, abs)) {
            fprintf(stderr, "yun: cannot read %s\n", file);
            return EXIT_USAGE;
        }
        char derived[64];
        if (!name) {
            /* Default name: the file name without directory and extension. */
            const char *base = strrchr(abs, '/') ? strrchr(abs, '/') + 1 : abs;
            snprintf(derived, sizeof(derived), "%s", base);
            char *dot = strchr(derived, '.');
            if (dot && dot != derived)
                *dot = 0;
            name = derived;
        }
        json_t *body = json_pack("{s:s,s:s}", "name", name, "file", abs);
        if (format)
            json_object_set_new(body, "format", json_string(format));
        r = cli_call(c, "POST", "/v1/images/import", body, &code);
        json_decref(body);
        return r ? cli_done(c, r, "image %s imported\n", name) : code;
    }
    if ((!strcmp(sub, "delete") || !strcmp(sub, "rm") || !strcmp(sub, "show")) && argc == 3) {
        char path[300];
        snprintf(path, sizeof(path), "/v1/images/%s", argv[2]);
        bool del = strcmp(sub, "show") != 0;
        if (!(r = cli_call(c, del ? "DELETE" : "GET", path, NULL, &code)))
            return code;
        if (del)
            return cli_done(c, r, "image %s deleted\n", argv[2]);
        cli_print_json(r);
        json_decref(r);
        return 0;
    }
    fprintf(stderr, "yun: unknown or incomplete image command '%s'\n", sub);
    image_usage(stderr);
    return EXIT_USAGE;
}
