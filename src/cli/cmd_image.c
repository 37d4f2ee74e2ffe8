/*
 * cmd_image.c - `yun image ...`: build, import, list, show, delete (their
 * rows of the command table and their handlers).
 */
#include "cli/cli.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int image_list(struct cli *c, const struct cli_args *a)
{
    int code = 0;
    json_t *r = cli_call(c, "GET", "/v1/images", NULL, &code);
    if (!r)
        return code;
    if (c->json) {
        cli_print_json(json_object_get(r, "images"));
    } else {
        printf("%-16s %-6s %8s %8s %7s %-8s %s\n", "NAME", "FORMAT", "VSIZE", "ONDISK", "MINMEM",
               "OS", "BOOT");
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(r, "images"), i, m) print_image_row(m);
    }
    json_decref(r);
    return 0;
}

static int image_build(struct cli *c, const struct cli_args *a)
{
    const char *kind = a->argv[0];
    int code = 0;
    json_t *body = json_pack("{s:s}", "kind", kind), *r, *res = NULL;
    /* before tasks, slow kinds build in the background (202): ask again
     * until the image is there */
    bool said = false;
    for (;;) {
        r = cli_call(c, "POST", "/v1/images/build", body, &code);
        if (!r || json_object_get(r, "id"))
            break;
        enum cli_task_outcome t = cli_task_follow(c, r, cli_flag(a, "no-wait"), &res, &code);
        if (t != CLI_NO_TASK) {
            json_decref(r);
            json_decref(body);
            if (t == CLI_TASK_EXIT)
                return code;
            return cli_done(c, res ? res : json_object(), "image %s ready\n", kind);
        }
        if (!said && !c->json)
            fprintf(stderr,
                    "building image %s in the background (a few minutes; "
                    "`yun events -f` shows progress)...\n",
                    kind);
        said = true;
        json_decref(r);
        struct timespec ts = {2, 0};
        nanosleep(&ts, NULL);
    }
    json_decref(body);
    return r ? cli_done(c, r, "image %s ready\n", kind) : code;
}

static int image_import(struct cli *c, const struct cli_args *a)
{
    const char *file = a->argv[0], *name = cli_val(a, "name"), *format = cli_val(a, "format");
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
    return cli_post_task(c, a, "/v1/images/import", body, "image %s imported\n", name);
}

static int image_get(struct cli *c, const struct cli_args *a, bool del)
{
    char path[600], *enc = cli_url_encode(a->argv[0]);
    snprintf(path, sizeof(path), "/v1/images/%s", enc ? enc : "");
    free(enc);
    int code = 0;
    json_t *r = cli_call(c, del ? "DELETE" : "GET", path, NULL, &code);
    if (!r)
        return code;
    if (del)
        return cli_done(c, r, "image %s deleted\n", a->argv[0]);
    cli_print_json(r);
    json_decref(r);
    return 0;
}

static int image_show(struct cli *c, const struct cli_args *a)
{
    return image_get(c, a, false);
}

static int image_delete(struct cli *c, const struct cli_args *a)
{
    return image_get(c, a, true);
}

static const struct cli_arg arg_image[] = {{"NAME", CLI_K_IMAGE, NULL, 0}, {0}};

const struct cli_cmd cmd_image_entries[] = {
    {.words = "image", .summary = "boot images"},
    {.words = "image build",
     .summary = "build an image from Debian packages (debian: debootstrap, cloud-init, agent)",
     .args = (const struct cli_arg[]){{"KIND", CLI_K_CHOICE, "tiny debian", 0}, {0}},
     .opts = (const struct cli_opt[]){{"no-wait", 0, NULL, CLI_K_TEXT, NULL, 0,
                                       "print the task id and return at once"},
                                      {0}},
     .run = image_build},
    {.words = "image import",
     .summary = "copy a disk image in (validated)",
     .args = (const struct cli_arg[]){{"FILE", CLI_K_FILE, NULL, 0}, {0}},
     .opts = (const struct cli_opt[]){{"name", 0, "N", CLI_K_TEXT, NULL, 0,
                                       "its name (default: the file name without extension)"},
                                      {"format", 0, "FORMAT", CLI_K_CHOICE, "qcow2 raw", 0,
                                       "the file's format (default: detected)"},
                                      {"no-wait", 0, NULL, CLI_K_TEXT, NULL, 0,
                                       "print the task id and return at once"},
                                      {0}},
     .run = image_import},
    {.words = "image list", .alias = "ls", .summary = "all images", .run = image_list},
    {.words = "image show", .summary = "one image (JSON)", .args = arg_image, .run = image_show},
    {.words = "image delete",
     .alias = "rm",
     .summary = "remove it (refused while a VM uses it)",
     .args = arg_image,
     .run = image_delete},
    {0},
};
