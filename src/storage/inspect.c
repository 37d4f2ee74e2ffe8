/*
 * inspect.c - validating disk files handed to yun (image and volume import).
 */
#include "storage/inspect.h"
#include "lib/proc.h"
#include "storage/exchange.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The file being inspected: a path, or a descriptor the child inherits. */
struct subject {
    const char *arg;  /* what qemu-img is given: the path or /dev/fd/N */
    const char *name; /* what messages call it */
    int fd;           /* -1 for a path */
};

static int run(char **argv, int timeout_ms, const struct subject *s, struct proc_result *r)
{
    if (s->fd < 0)
        return proc_run(argv, timeout_ms, r);
    return proc_run_ex(argv, timeout_ms, r, exchange_inherit_fd, (void *)&s->fd);
}

static int run_json(char **argv, const struct subject *s, json_t **out, struct yerr *err)
{
    struct proc_result r;
    int st = run(argv, 60000, s, &r);
    if (st != 0) {
        char line[300];
        proc_last_line(r.err, line, sizeof(line));
        proc_result_free(&r);
        return yerr_set(err, YE_INVALID_IMAGE, "not a usable disk image: %s",
                        line[0] ? line : "qemu-img info failed");
    }
    json_error_t je;
    *out = json_loads(r.out ? r.out : "", 0, &je);
    proc_result_free(&r);
    if (!json_is_object(*out)) {
        json_decref(*out);
        return yerr_set(err, YE_INTERNAL, "qemu-img gave no JSON");
    }
    return 0;
}

/* qemu-img check: 0 clean, 3 only leaked clusters (harmless, reclaimable);
 * 2 means corruption, 1 that the image could not even be checked. */
static int check_qcow2(const char *qemu_img, const struct subject *s, struct yerr *err)
{
    char *argv[] = {(char *)qemu_img, "check", "-q", "-f", "qcow2", (char *)s->arg, NULL};
    struct proc_result r;
    int st = run(argv, 600000, s, &r);
    char line[300];
    proc_last_line(r.err, line, sizeof(line));
    if (!line[0])
        proc_last_line(r.out, line, sizeof(line));
    proc_result_free(&r);
    if (st == 0 || st == 3)
        return 0;
    return yerr_set(err, YE_INVALID_IMAGE, "qcow2 metadata is corrupt: %s",
                    line[0] ? line : "qemu-img check failed");
}

int disk_info_judge(json_t *j, const struct stat *st, const char *file, const char *want_format,
                    struct disk_info *out, bool *need_check, struct yerr *err)
{
    memset(out, 0, sizeof(*out));
    *need_check = false;
    if (!S_ISREG(st->st_mode))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s is not a regular file", file);
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *vs = json_object_get(j, "virtual-size");
    const char *backing = json_string_value(json_object_get(j, "full-backing-filename"));
    if (!backing)
        backing = json_string_value(json_object_get(j, "backing-filename"));
    const char *bfmt = json_string_value(json_object_get(j, "backing-filename-format"));
    json_t *fsdata = json_object_get(json_object_get(j, "format-specific"), "data");
    json_t *corrupt = json_object_get(fsdata, "corrupt");
    const char *data_file = json_string_value(json_object_get(fsdata, "data-file"));
    if (!fmt || (strcmp(fmt, "qcow2") && strcmp(fmt, "raw")))
        return yerr_set(err, YE_INVALID_IMAGE, "image format '%s' is not supported (qcow2, raw)",
                        fmt ? fmt : "?");
    if (want_format && want_format[0] && strcmp(fmt, want_format))
        return yerr_set(err, YE_INVALID_IMAGE, "file is %s, not %s", fmt, want_format);
    /* an external data file would make any host file the disk's content */
    if (data_file)
        return yerr_set(err, YE_INVALID_IMAGE,
                        "qcow2 image keeps its data in an external file (%s): not accepted",
                        data_file);
    if (json_is_true(corrupt))
        return yerr_set(err, YE_INVALID_IMAGE, "qcow2 image is marked corrupt");
    if (!json_is_integer(vs) || json_integer_value(vs) <= 0)
        return yerr_set(err, YE_INVALID_IMAGE, "image has no virtual size");
    /* Any file "is" raw to qemu-img (which rounds its size up to a sector);
     * a real raw disk is a whole number of 512-byte sectors. */
    if (!strcmp(fmt, "raw") && (st->st_size == 0 || st->st_size % 512))
        return yerr_set(
            err, YE_INVALID_IMAGE,
            "%s is %lld bytes, not a whole number of 512-byte sectors: not a disk image", file,
            (long long)st->st_size);
    *need_check = !strcmp(fmt, "qcow2");
    snprintf(out->format, sizeof(out->format), "%s", fmt);
    out->virtual_size = (uint64_t)json_integer_value(vs);
    snprintf(out->backing, sizeof(out->backing), "%s", backing ? backing : "");
    snprintf(out->backing_format, sizeof(out->backing_format), "%s", bfmt ? bfmt : "");
    return 0;
}

int disk_check_judge(json_t *check, struct yerr *err)
{
    /* qemu-img check: leaked clusters are harmless (reclaimable);
     * corruptions and check errors are not */
    json_int_t bad = json_integer_value(json_object_get(check, "corruptions")) +
                     json_integer_value(json_object_get(check, "check-errors"));
    if (bad > 0)
        return yerr_set(err, YE_INVALID_IMAGE,
                        "qcow2 metadata is corrupt: %lld corruptions or check errors",
                        (long long)bad);
    return 0;
}

static int inspect(const char *qemu_img, const struct subject *s, const char *want_format,
                   struct disk_info *out, struct yerr *err)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    const char *file = s->name;
    if (s->fd < 0 && (!file || file[0] != '/'))
        return yerr_set(err, YE_INVALID_ARGUMENT, "file must be an absolute path");
    if ((s->fd < 0 ? stat(file, &st) : fstat(s->fd, &st)) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT, "cannot read %s: %s", file, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s is not a regular file", file);
    char *argv[] = {(char *)qemu_img, "info", "--output=json", (char *)s->arg, NULL};
    json_t *j = NULL;
    if (run_json(argv, s, &j, err) < 0)
        return -1;
    bool check = false;
    int rc = disk_info_judge(j, &st, file, want_format, out, &check, err);
    json_decref(j);
    if (rc == 0 && check && check_qcow2(qemu_img, s, err) < 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return rc;
}

int disk_inspect(const char *qemu_img, const char *file, const char *want_format,
                 struct disk_info *out, struct yerr *err)
{
    struct subject s = {file, file, -1};
    return inspect(qemu_img, &s, want_format, out, err);
}

int disk_inspect_fd(const char *qemu_img, int fd, const char *name, const char *want_format,
                    struct disk_info *out, struct yerr *err)
{
    char arg[32];
    snprintf(arg, sizeof(arg), "/dev/fd/%d", fd);
    struct subject s = {arg, name, fd};
    return inspect(qemu_img, &s, want_format, out, err);
}
