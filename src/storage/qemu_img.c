/*
 * qemu_img.c - qemu-img as asynchronous jobs: argv built from arguments,
 * progress lines parsed, the exit turned into a result or a struct yerr.
 */
#include "storage/qemu_img.h"
#include "lib/job.h"
#include "lib/proc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum parse { PARSE_NONE, PARSE_JSON, PARSE_CHECK };

struct qimg_op {
    struct job *job;
    char verb[16];
    qimg_done_fn done;
    qimg_progress_fn progress;
    void *ctx;
    int keep_fd;  /* our copy of the caller's descriptor */
    int child_fd; /* the number it has in the child (what /dev/fd/N names) */
    uint64_t total;
    int last_pct;
    enum parse parse;
    bool cancelled;
};

int qimg_parse_progress(const char *line)
{
    const char *p = strchr(line, '(');
    if (!p)
        return -1;
    unsigned whole = 0, frac = 0;
    int n = 0;
    if (sscanf(p, "(%u.%2u/100%%)%n", &whole, &frac, &n) == 2 && n > 0 && whole <= 100)
        return (int)(whole * 100 + frac);
    return -1;
}

static void on_line(void *ctx, enum job_stream s, const char *line)
{
    struct qimg_op *op = ctx;
    if (s != JOB_STDOUT || !op->progress)
        return;
    int pct = qimg_parse_progress(line);
    if (pct < 0 || pct == op->last_pct)
        return;
    op->last_pct = pct;
    uint64_t total = op->total ? op->total : 10000;
    op->progress(op->ctx, total / 10000 * (uint64_t)pct + total % 10000 * (uint64_t)pct / 10000,
                 total);
}

static void on_done(void *ctx, const struct job_result *r)
{
    struct qimg_op *op = ctx;
    struct yerr err = {0};
    json_t *res = NULL;
    char line[400];
    proc_last_line(r->err, line, sizeof line);
    bool check_ok =
        op->parse == PARSE_CHECK && (r->status == 0 || r->status == 2 || r->status == 3);
    if (op->cancelled) {
        yerr_set(&err, YE_CANCELLED, "qemu-img %s cancelled", op->verb);
    } else if (r->timed_out) {
        yerr_set(&err, YE_TIMEOUT, "qemu-img %s timed out", op->verb);
    } else if (r->status != 0 && !check_ok) {
        if (strstr(line, "No space left"))
            yerr_disk(&err, "qemu-img %s failed: %s", op->verb, line);
        else if (r->signal)
            yerr_set(&err, YE_DISK_ERROR, "qemu-img %s was killed by signal %d", op->verb,
                     r->signal);
        else
            yerr_set(&err, YE_DISK_ERROR, "qemu-img %s failed: %s", op->verb,
                     line[0] ? line : "no message");
    } else if (op->parse != PARSE_NONE) {
        json_error_t je;
        json_t *j = json_loadb(r->out, r->out_len, 0, &je);
        if (!j || r->out_cut) {
            json_decref(j);
            yerr_set(&err, YE_DISK_ERROR, "qemu-img %s: unreadable output: %s", op->verb,
                     r->out_cut ? "too long" : je.text);
        } else if (op->parse == PARSE_CHECK) {
            res = json_pack("{s:o,s:b}", "check", j, "clean", r->status == 0);
        } else {
            res = j;
        }
    } else {
        res = json_object();
    }
    if (op->keep_fd >= 0)
        close(op->keep_fd);
    if (op->done)
        op->done(op->ctx, err.code ? NULL : res, err.code ? &err : NULL);
    json_decref(res);
    free(op);
}

/* Child side: the descriptor at the number the argument names, open
 * across exec. */
static int inherit(void *arg)
{
    const struct qimg_op *op = arg;
    if (op->keep_fd < 0)
        return 0;
    if (op->keep_fd != op->child_fd)
        return dup2(op->keep_fd, op->child_fd) < 0 ? -1 : 0; /* dup2 clears CLOEXEC */
    int fl = fcntl(op->keep_fd, F_GETFD);
    return fl < 0 ? -1 : fcntl(op->keep_fd, F_SETFD, fl & ~FD_CLOEXEC);
}

/* argv: the verb's arguments (NULL-terminated, without the program). */
static struct qimg_op *start(const struct qimg_ctx *c, const char *verb, char *const *args,
                             enum parse parse, uint64_t total, struct yerr *err)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)c->qemu_img;
    for (; *args && n < 39; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    struct qimg_op *op = calloc(1, sizeof *op);
    if (!op) {
        yerr_set(err, YE_INTERNAL, "out of memory");
        return NULL;
    }
    snprintf(op->verb, sizeof op->verb, "%s", verb);
    op->done = c->done;
    op->progress = c->progress;
    op->ctx = c->ctx;
    op->total = total;
    op->last_pct = -1;
    op->parse = parse;
    op->keep_fd = -1;
    op->child_fd = c->keep_fd;
    if (c->keep_fd >= 0) {
        /* a copy of our own: the caller may close theirs at once */
        op->keep_fd = fcntl(c->keep_fd, F_DUPFD_CLOEXEC, 3);
        if (op->keep_fd < 0) {
            free(op);
            yerr_set(err, YE_INTERNAL, "dup: %m");
            return NULL;
        }
    }
    struct job_spec sp = {.argv = argv,
                          .setup = inherit,
                          .setup_arg = op,
                          .timeout_ms = c->timeout_ms,
                          .capture_max = parse != PARSE_NONE ? (4u << 20) : (16u << 10),
                          .capture_tail = parse == PARSE_NONE,
                          .background_nice = 10,
                          .on_line = c->progress ? on_line : NULL,
                          .on_done = on_done,
                          .ctx = op};
    char why[200];
    op->job = job_start(c->base, &sp, why, sizeof why);
    if (!op->job) {
        if (op->keep_fd >= 0)
            close(op->keep_fd);
        free(op);
        yerr_set(err, YE_INTERNAL, "cannot run qemu-img: %s", why);
        return NULL;
    }
    return op;
}

static bool fmt_ok(const char *f)
{
    return f && (!strcmp(f, "qcow2") || !strcmp(f, "raw"));
}

static int bad(struct yerr *err, const char *what)
{
    return yerr_set(err, YE_INVALID_ARGUMENT, "qemu-img: %s", what);
}

struct qimg_op *qimg_create(const struct qimg_ctx *c, const char *path, const char *format,
                            uint64_t size, const char *backing, const char *backing_format,
                            struct yerr *err)
{
    if (!path || !fmt_ok(format) || (backing && !fmt_ok(backing_format))) {
        bad(err, "create needs a path and formats qcow2 or raw");
        return NULL;
    }
    char sz[32];
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    char *a[16];
    int n = 0;
    a[n++] = "create";
    a[n++] = "-q";
    a[n++] = "-f";
    a[n++] = (char *)format;
    if (backing) {
        a[n++] = "-F";
        a[n++] = (char *)backing_format;
        a[n++] = "-b";
        a[n++] = (char *)backing;
    }
    a[n++] = (char *)path;
    if (size)
        a[n++] = sz;
    a[n] = NULL;
    return start(c, "create", a, PARSE_NONE, 0, err);
}

struct qimg_op *qimg_convert(const struct qimg_ctx *c, const struct qimg_convert *x,
                             struct yerr *err)
{
    if (!x->src || !x->dst || !fmt_ok(x->src_format) || !fmt_ok(x->dst_format) ||
        (x->backing && !fmt_ok(x->backing_format))) {
        bad(err, "convert needs files and formats qcow2 or raw");
        return NULL;
    }
    char *a[24];
    int n = 0;
    a[n++] = "convert";
    a[n++] = c->progress ? "-p" : "-q";
    if (x->sparse) {
        a[n++] = "-S";
        a[n++] = "4k";
    }
    a[n++] = "-f";
    a[n++] = (char *)x->src_format;
    a[n++] = "-O";
    a[n++] = (char *)x->dst_format;
    if (x->backing) {
        a[n++] = "-B";
        a[n++] = (char *)x->backing;
        a[n++] = "-F";
        a[n++] = (char *)x->backing_format;
    }
    a[n++] = (char *)x->src;
    a[n++] = (char *)x->dst;
    a[n] = NULL;
    return start(c, "convert", a, PARSE_NONE, x->total, err);
}

struct qimg_op *qimg_rebase(const struct qimg_ctx *c, const char *path, const char *format,
                            const char *backing, const char *backing_format, bool unsafe,
                            struct yerr *err)
{
    if (!path || !fmt_ok(format) || (backing && backing[0] && !fmt_ok(backing_format))) {
        bad(err, "rebase needs a path and formats qcow2 or raw");
        return NULL;
    }
    char *a[16];
    int n = 0;
    a[n++] = "rebase";
    a[n++] = c->progress ? "-p" : "-q";
    if (unsafe)
        a[n++] = "-u";
    a[n++] = "-f";
    a[n++] = (char *)format;
    if (backing && backing[0]) {
        a[n++] = "-F";
        a[n++] = (char *)backing_format;
    }
    a[n++] = "-b";
    a[n++] = (char *)(backing ? backing : "");
    a[n++] = (char *)path;
    a[n] = NULL;
    return start(c, "rebase", a, PARSE_NONE, 0, err);
}

struct qimg_op *qimg_resize(const struct qimg_ctx *c, const char *path, const char *format,
                            uint64_t size, struct yerr *err)
{
    if (!path || !fmt_ok(format) || !size) {
        bad(err, "resize needs a path, a format and a size");
        return NULL;
    }
    char sz[32];
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)size);
    char *a[] = {"resize", "-q", "-f", (char *)format, (char *)path, sz, NULL};
    return start(c, "resize", a, PARSE_NONE, 0, err);
}

struct qimg_op *qimg_info(const struct qimg_ctx *c, const char *path, const char *format,
                          bool backing_chain, struct yerr *err)
{
    if (!path || (format && !fmt_ok(format))) {
        bad(err, "info needs a path");
        return NULL;
    }
    char *a[12];
    int n = 0;
    a[n++] = "info";
    a[n++] = "--output=json";
    if (backing_chain)
        a[n++] = "--backing-chain";
    if (format) {
        a[n++] = "-f";
        a[n++] = (char *)format;
    }
    a[n++] = (char *)path;
    a[n] = NULL;
    return start(c, "info", a, PARSE_JSON, 0, err);
}

struct qimg_op *qimg_check(const struct qimg_ctx *c, const char *path, const char *format,
                           struct yerr *err)
{
    if (!path || !format || strcmp(format, "qcow2")) {
        bad(err, "check needs a qcow2 file");
        return NULL;
    }
    char *a[] = {"check", "--output=json", "-f", "qcow2", (char *)path, NULL};
    return start(c, "check", a, PARSE_CHECK, 0, err);
}

void qimg_cancel(struct qimg_op *op)
{
    if (!op || op->cancelled)
        return;
    op->cancelled = true;
    job_kill(op->job, SIGKILL);
}

pid_t qimg_pid(const struct qimg_op *op)
{
    return op ? job_pid(op->job) : -1;
}
