/*
 * qemu_img.h - the qemu-img leaf: asynchronous qemu-img operations on the
 * job facility. Each takes everything it needs as arguments (the qemu-img
 * program, files, formats, sizes, backing) and calls back once with a
 * result (a JSON object) or an error; no store, no engine. A copy reports
 * progress parsed from `qemu-img convert -p` in bytes of total.
 */
#ifndef YUN_QEMU_IMG_H
#define YUN_QEMU_IMG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/yerr.h"

struct event_base;
struct qimg_op;

/* result is borrowed (NULL exactly when err != NULL): {} for most verbs,
 * qemu-img's JSON for info and check. The op is gone after the call. */
typedef void (*qimg_done_fn)(void *ctx, json_t *result, const struct yerr *err);
typedef void (*qimg_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct qimg_ctx {
    struct event_base *base;
    const char *qemu_img; /* the program */
    qimg_done_fn done;
    qimg_progress_fn progress; /* convert and rebase only; NULL: none */
    void *ctx;
    int keep_fd;    /* a descriptor the child inherits (a /dev/fd/N file), -1: none */
    int timeout_ms; /* 0: none */
};

struct qimg_convert {
    const char *src, *src_format;
    const char *dst, *dst_format;
    const char *backing, *backing_format; /* -B/-F: the output sits on backing */
    bool sparse;                          /* -S 4k: zero clusters are dropped */
    uint64_t total;                       /* bytes progress is reported in (virtual size) */
};

/* Each returns the op (for cancel / pid) or NULL with err (nothing runs,
 * done is not called). */
struct qimg_op *qimg_create(const struct qimg_ctx *c, const char *path, const char *format,
                            uint64_t size, const char *backing, const char *backing_format,
                            struct yerr *err);
struct qimg_op *qimg_convert(const struct qimg_ctx *c, const struct qimg_convert *a,
                             struct yerr *err);
/* unsafe: only the header changes (-u); else the data is rebased too.
 * backing may be relative (to path's directory), as qemu-img takes it. */
struct qimg_op *qimg_rebase(const struct qimg_ctx *c, const char *path, const char *format,
                            const char *backing, const char *backing_format, bool unsafe,
                            struct yerr *err);
struct qimg_op *qimg_resize(const struct qimg_ctx *c, const char *path, const char *format,
                            uint64_t size, struct yerr *err);
/* qemu-img info --output=json; backing_chain: the whole chain (an array). */
struct qimg_op *qimg_info(const struct qimg_ctx *c, const char *path, const char *format,
                          bool backing_chain, struct yerr *err);
/* qemu-img check --output=json: result {"check": ..., "clean": bool}. */
struct qimg_op *qimg_check(const struct qimg_ctx *c, const char *path, const char *format,
                           struct yerr *err);

/* Stops it: done then reports YE_CANCELLED (the caller removes partial
 * output). A no-op once done has run (the op is gone: do not call then). */
void qimg_cancel(struct qimg_op *op);
pid_t qimg_pid(const struct qimg_op *op);

/* "(12.50/100%)" -> 1250 (hundredths of a percent); -1 when the line is
 * not a progress line. Pure, for tests. */
int qimg_parse_progress(const char *line);

#endif
