/* test_qemu_img.c - the qemu-img leaf on a real qemu-img: progress lines
 * parsed, create/info/resize/convert with progress, a failure as a struct
 * yerr, a cancel that kills the copy, bad arguments refused up front. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/qemu_img.h"

struct seen {
    int done;
    enum yerr_code code;
    char msg[512];
    json_t *result;
    int progress;
    uint64_t last_done, last_total;
    struct qimg_op *cancel_me;
};

static void on_done(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->done++;
    s->code = err ? err->code : YE_NONE;
    if (err)
        snprintf(s->msg, sizeof s->msg, "%s", err->message);
    s->result = result ? json_incref(result) : NULL;
    s->cancel_me = NULL;
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct seen *s = ctx;
    s->progress++;
    assert_true(done >= s->last_done && done <= total);
    s->last_done = done;
    s->last_total = total;
    if (s->cancel_me)
        qimg_cancel(s->cancel_me);
}

static void run(struct event_base *b, struct seen *s)
{
    for (int i = 0; i < 3000 && !s->done; i++) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(b, &tv);
        event_base_dispatch(b);
    }
    assert_int_equal(s->done, 1);
}

static void test_parse_progress(void **st)
{
    (void)st;
    assert_int_equal(qimg_parse_progress("    (12.50/100%)"), 1250);
    assert_int_equal(qimg_parse_progress("(0.00/100%)"), 0);
    assert_int_equal(qimg_parse_progress("    (100.00/100%)"), 10000);
    assert_int_equal(qimg_parse_progress("no progress here"), -1);
    assert_int_equal(qimg_parse_progress("(abc/100%)"), -1);
    assert_int_equal(qimg_parse_progress("(101.00/100%)"), -1);
}

static void test_create_info_convert(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-unit-qimg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[128], b[128], c[128];
    snprintf(a, sizeof a, "%s/a.qcow2", dir);
    snprintf(b, sizeof b, "%s/b.raw", dir);
    snprintf(c, sizeof c, "%s/c.qcow2", dir);
    struct event_base *base = event_base_new();
    struct seen s = {0};
    struct qimg_ctx ctx = {
        .base = base, .qemu_img = "qemu-img", .done = on_done, .ctx = &s, .keep_fd = -1};
    struct yerr err = {0};
    assert_non_null(qimg_create(&ctx, a, "qcow2", 64 << 20, NULL, NULL, &err));
    run(base, &s);
    assert_int_equal(s.code, YE_NONE);
    json_decref(s.result);
    memset(&s, 0, sizeof s);
    assert_non_null(qimg_info(&ctx, a, "qcow2", false, &err));
    run(base, &s);
    assert_int_equal(json_integer_value(json_object_get(s.result, "virtual-size")), 64 << 20);
    json_decref(s.result);
    memset(&s, 0, sizeof s);
    assert_non_null(qimg_resize(&ctx, a, "qcow2", 128 << 20, &err));
    run(base, &s);
    assert_int_equal(s.code, YE_NONE);
    json_decref(s.result);
    /* a copy with progress in bytes of the given total */
    memset(&s, 0, sizeof s);
    ctx.progress = on_progress;
    struct qimg_convert cv = {
        .src = a, .src_format = "qcow2", .dst = b, .dst_format = "raw", .total = 128 << 20};
    assert_non_null(qimg_convert(&ctx, &cv, &err));
    run(base, &s);
    assert_int_equal(s.code, YE_NONE);
    assert_true(s.progress >= 1);
    assert_int_equal(s.last_total, 128 << 20);
    assert_true(access(b, F_OK) == 0);
    json_decref(s.result);
    /* a failure is a struct yerr naming the verb and qemu-img's message */
    memset(&s, 0, sizeof s);
    ctx.progress = NULL;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none.qcow2", dir);
    cv = (struct qimg_convert){
        .src = missing, .src_format = "qcow2", .dst = c, .dst_format = "qcow2"};
    assert_non_null(qimg_convert(&ctx, &cv, &err));
    run(base, &s);
    assert_int_equal(s.code, YE_DISK_ERROR);
    assert_non_null(strstr(s.msg, "qemu-img convert failed"));
    /* bad arguments: refused before anything runs */
    assert_null(qimg_create(&ctx, a, "vmdk", 1 << 20, NULL, NULL, &err));
    assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    assert_null(qimg_check(&ctx, b, "raw", &err));
    /* cancel: the done callback says so */
    memset(&s, 0, sizeof s);
    ctx.progress = on_progress;
    cv = (struct qimg_convert){
        .src = a, .src_format = "qcow2", .dst = c, .dst_format = "qcow2", .total = 128 << 20};
    struct qimg_op *op = qimg_convert(&ctx, &cv, &err);
    assert_non_null(op);
    assert_true(qimg_pid(op) > 0);
    qimg_cancel(op);
    run(base, &s);
    assert_int_equal(s.code, YE_CANCELLED);
    event_base_free(base);
    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_progress),
        cmocka_unit_test(test_create_info_convert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
