/* test_sched_detect.c - the statistics and the overload detectors (THR, IQR,
 * MAD, LR) against values worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "sched/sched.h"

#define NEAR(a, b, eps) assert_true(fabs((a) - (b)) <= (eps))

static void test_median_mad_iqr(void **state)
{
    (void)state;
    double a[] = {3, 1, 2}, b[] = {4, 1, 3, 2};
    NEAR(sched_median(a, 3), 2, 0);
    NEAR(sched_median(b, 4), 2.5, 0);
    /* 0.05 .. 0.60: quartile positions round(3.25)-1 = 2 and round(9.75)-1 = 9 */
    double x[12], y[12];
    for (int i = 0; i < 12; i++)
        x[i] = y[i] = 0.05 * (12 - i);
    NEAR(sched_iqr(x, 12), 0.50 - 0.15, 1e-12);
    /* median 0.325; deviations 0.025, 0.025, 0.075, 0.075, 0.125, 0.125, 0.175,
     * 0.175, ...: the middle pair is 0.125 and 0.175, MAD 0.15 */
    NEAR(sched_mad(y, 12), 0.15, 1e-12);
}

static void test_loess(void **state)
{
    (void)state;
    double y[10], a, b;
    for (int i = 0; i < 10; i++)
        y[i] = 0.1 + 0.05 * (i + 1); /* exactly linear: every weighting agrees */
    assert_int_equal(sched_loess(y, 10, false, false, &a, &b), 0);
    NEAR(a, 0.1, 1e-12);
    NEAR(b, 0.05, 1e-12);
    assert_int_equal(sched_loess(y, 10, true, false, &a, &b), 0);
    NEAR(a, 0.1, 1e-12);
    NEAR(b, 0.05, 1e-12);
    assert_int_equal(sched_loess(y, 10, true, true, &a, &b), 0);
    NEAR(b, 0.05, 1e-9);
    /* OLS on 0,0,...,0,1 (n = 4): x = 1..4, mean 2.5; b = 1.5/5 = 0.3, a = 0.25 - 0.75 */
    double z[4] = {0, 0, 0, 1};
    assert_int_equal(sched_loess(z, 4, false, false, &a, &b), 0);
    NEAR(b, 0.3, 1e-12);
    NEAR(a, -0.5, 1e-12);
    /* tricube weighting favours the newest point: the slope is steeper than OLS */
    assert_int_equal(sched_loess(z, 4, true, false, &a, &b), 0);
    assert_true(b > 0.3);
}

static void test_r2(void **state)
{
    (void)state;
    double x1[6] = {1, 2, 3, 4, 5, 7}, y[6], n[6] = {2, -1, 3, 0, 1, -2};
    for (int i = 0; i < 6; i++)
        y[i] = 2 * x1[i] + 1;
    const double *cols[1] = {x1};
    NEAR(sched_r2(y, cols, 1, 6), 1.0, 1e-12);
    /* y = x1 + n with n orthogonal-ish: R^2 strictly between 0 and 1 */
    for (int i = 0; i < 6; i++)
        y[i] = x1[i] + n[i];
    double r = sched_r2(y, cols, 1, 6);
    assert_true(r > 0 && r < 1);
    /* 2 regressors + intercept need more than 3 observations */
    const double *two[2] = {x1, n};
    NEAR(sched_r2(y, two, 2, 3), -2, 0);
}

/* one host (1 core x 1000 MIPS, 1000 Mbit/s) holding one VM of 1000 MIPS whose
 * history is hist (oldest first) and current demand req (fraction) */
static void one_vm_host(sched_model *m, const double *hist, int n, double req)
{
    sched_model_init(m);
    sched_host h;
    sched_host_defaults(&h);
    h.cores = 1;
    h.core_mips = 1000;
    h.bw_mbps = 1000;
    sched_model_add_host(m, &h);
    sched_vm v;
    sched_vm_defaults(&v);
    v.mips = 1000;
    v.ram_mb = 1000;
    int k = sched_model_add_vm(m, &v);
    for (int i = 0; i < n; i++)
        sched_vm_push_hist(&m->vms[k], hist[i]);
    m->vms[k].req_mips = req * 1000;
    sched_model_attach(m, k, 0);
}

static bool over(sched_model *m, sched_detector d, double param)
{
    sched_consol_opts o;
    sched_consol_defaults(&o);
    o.det = d;
    o.param = param;
    return sched_host_overloaded(m, 0, &o);
}

static void test_thr(void **state)
{
    (void)state;
    sched_model m;
    one_vm_host(&m, NULL, 0, 0.81);
    assert_true(over(&m, SCHED_DET_THR, 0.8));
    m.vms[0].req_mips = 800; /* exactly at the threshold is not over it */
    assert_false(over(&m, SCHED_DET_THR, 0.8));
    sched_model_free(&m);
}

static void test_iqr_mad(void **state)
{
    (void)state;
    double h[12];
    for (int i = 0; i < 12; i++)
        h[i] = 0.05 * (i + 1);
    sched_model m;
    /* IQR 0.35 -> threshold 1 - 1.5 x 0.35 = 0.475 */
    one_vm_host(&m, h, 12, 0.48);
    assert_true(over(&m, SCHED_DET_IQR, 1.5));
    m.vms[0].req_mips = 470;
    assert_false(over(&m, SCHED_DET_IQR, 1.5));
    /* MAD 0.15 -> threshold 1 - 2.5 x 0.15 = 0.625 */
    m.vms[0].req_mips = 630;
    assert_true(over(&m, SCHED_DET_MAD, 2.5));
    m.vms[0].req_mips = 620;
    assert_false(over(&m, SCHED_DET_MAD, 2.5));
    sched_model_free(&m);
    /* 11 samples are too few: the 0.7 static fallback decides */
    one_vm_host(&m, h, 11, 0.69);
    assert_false(over(&m, SCHED_DET_IQR, 1.5));
    m.vms[0].req_mips = 710;
    assert_true(over(&m, SCHED_DET_MAD, 2.5));
    sched_model_free(&m);
}

static void test_lr(void **state)
{
    (void)state;
    double h[10];
    sched_model m;
    /* slope 0.05 from 0.05: forecast at 10 + ceil(16 s / 300 s) = 11 is 0.55,
     * x 1.2 = 0.66 < 1 */
    for (int i = 0; i < 10; i++)
        h[i] = 0.05 * (i + 1);
    one_vm_host(&m, h, 10, 0.5);
    assert_false(over(&m, SCHED_DET_LR, 1.2));
    sched_model_free(&m);
    /* slope 0.08: 0.88 x 1.2 = 1.056 >= 1 */
    for (int i = 0; i < 10; i++)
        h[i] = 0.08 * (i + 1);
    one_vm_host(&m, h, 10, 0.8);
    assert_true(over(&m, SCHED_DET_LR, 1.2));
    assert_false(over(&m, SCHED_DET_LR, 1.1)); /* 0.968 */
    sched_model_free(&m);
    /* 9 samples: fallback threshold 0.7 on current demand */
    one_vm_host(&m, h, 9, 0.75);
    assert_true(over(&m, SCHED_DET_LR, 1.2));
    sched_model_free(&m);
}

static void test_history_window(void **state)
{
    (void)state;
    sched_vm v;
    sched_vm_defaults(&v);
    for (int i = 0; i < SCHED_HIST + 5; i++)
        sched_vm_push_hist(&v, i == 0 ? 0.5 : 0.0);
    /* the only non-zero sample fell off the window */
    assert_int_equal(v.hist_len, SCHED_HIST);
    assert_int_equal(v.hist_nz, 0);
    sched_vm_push_hist(&v, 0.2);
    sched_vm_push_hist(&v, 0);
    assert_int_equal(v.hist_nz, 2);
    NEAR(v.hist[1], 0.2, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_median_mad_iqr),
        cmocka_unit_test(test_loess),
        cmocka_unit_test(test_r2),
        cmocka_unit_test(test_thr),
        cmocka_unit_test(test_iqr_mad),
        cmocka_unit_test(test_lr),
        cmocka_unit_test(test_history_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
