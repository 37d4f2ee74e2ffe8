/* stats.c - the small statistics kit behind the overload detectors and the
 * maximum-correlation selector: median, MAD, IQR, (robust) local regression and
 * the R^2 of a multiple linear regression. Pure functions, no allocation beyond
 * small stack buffers where the sizes are bounded by SCHED_HIST. */
#include "sched/sched.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sched_median(double *x, int n)
{
    if (n <= 0)
        return NAN;
    qsort(x, (size_t)n, sizeof(double), cmp_double);
    return (n & 1) ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

double sched_mad(const double *x, int n)
{
    if (n <= 0)
        return 0;
    double buf[256], *tmp = n <= 256 ? buf : malloc((size_t)n * sizeof(double));
    if (!tmp)
        return NAN;
    memcpy(tmp, x, (size_t)n * sizeof(double));
    double med = sched_median(tmp, n);
    for (int i = 0; i < n; i++)
        tmp[i] = fabs(x[i] - med);
    double mad = sched_median(tmp, n);
    if (tmp != buf)
        free(tmp);
    return mad;
}

double sched_iqr(double *x, int n)
{
    if (n <= 0)
        return 0;
    qsort(x, (size_t)n, sizeof(double), cmp_double);
    /* quartile positions as Beloglazov's implementation: round(p * (n + 1)) - 1 */
    int q1 = (int)floor(0.25 * (n + 1) + 0.5) - 1;
    int q3 = (int)floor(0.75 * (n + 1) + 0.5) - 1;
    if (q1 < 0)
        q1 = 0;
    if (q3 > n - 1)
        q3 = n - 1;
    return x[q3] - x[q1];
}

/* Weighted least squares for y = a + b x with weights w (1/sigma^2). */
static int wls(const double *x, const double *y, const double *w, int n, double *a, double *b)
{
    double sw = 0, sx = 0, sy = 0;
    for (int i = 0; i < n; i++) {
        sw += w[i];
        sx += w[i] * x[i];
        sy += w[i] * y[i];
    }
    if (!(sw > 0))
        return -1;
    double mx = sx / sw, my = sy / sw, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        sxx += w[i] * (x[i] - mx) * (x[i] - mx);
        sxy += w[i] * (x[i] - mx) * (y[i] - my);
    }
    if (!(sxx > 0))
        return -1;
    *b = sxy / sxx;
    *a = my - *b * mx;
    return 0;
}

/* Tricube "uncertainties" as in the reference implementation: the newest point
 * gets 1, older points grow as 1/tricube; the two oldest copy the third. The
 * regression treats them as standard deviations, i.e. weight = 1/sigma^2. */
static void tricube_sigma(int n, double *sig)
{
    /* the weights depend only on n: remember the last set (read-only after
     * the first call for a given n, so concurrent callers see equal values) */
    static _Thread_local int cached_n;
    static _Thread_local double cached[SCHED_HIST * 4];
    if (cached_n == n) {
        memcpy(sig, cached, (size_t)n * sizeof(double));
        return;
    }
    double top = n - 1;
    for (int i = 2; i < n; i++) {
        double t = (top - i) / top;
        double k = pow(1 - t * t * t, 3);
        sig[i] = k > 0 ? 1 / k : DBL_MAX;
    }
    sig[0] = sig[1] = sig[2];
    memcpy(cached, sig, (size_t)n * sizeof(double));
    cached_n = n;
}

/* For a fixed window and weights the least-squares estimates are linear in y:
 * a = sum ca[i] y[i], b = sum cb[i] y[i]. The detectors call this for every
 * host every interval, so the coefficients are computed once per (n, weighting). */
static int linear_coeffs(int n, bool weighted, const double **ca, const double **cb)
{
    static _Thread_local int cn[2];
    static _Thread_local double A[2][SCHED_HIST * 4], B[2][SCHED_HIST * 4];
    int k = weighted ? 1 : 0;
    if (cn[k] != n) {
        double x[SCHED_HIST * 4], w[SCHED_HIST * 4], sig[SCHED_HIST * 4];
        double sw = 0, sx = 0;
        if (weighted)
            tricube_sigma(n, sig);
        for (int i = 0; i < n; i++) {
            x[i] = i + 1;
            w[i] = weighted ? 1 / (sig[i] * sig[i]) : 1;
            sw += w[i];
            sx += w[i] * x[i];
        }
        double mx = sx / sw, sxx = 0;
        for (int i = 0; i < n; i++)
            sxx += w[i] * (x[i] - mx) * (x[i] - mx);
        if (!(sw > 0) || !(sxx > 0))
            return -1;
        for (int i = 0; i < n; i++) {
            B[k][i] = w[i] * (x[i] - mx) / sxx;
            A[k][i] = w[i] / sw - mx * B[k][i];
        }
        cn[k] = n;
    }
    *ca = A[k];
    *cb = B[k];
    return 0;
}

int sched_loess(const double *y, int n, bool weighted, bool robust, double *a, double *b)
{
    if (n < 3 || n > SCHED_HIST * 4)
        return -1;
    if (!robust) {
        const double *ca, *cb;
        if (linear_coeffs(n, weighted, &ca, &cb))
            return -1;
        double sa = 0, sb = 0;
        for (int i = 0; i < n; i++) {
            sa += ca[i] * y[i];
            sb += cb[i] * y[i];
        }
        *a = sa;
        *b = sb;
        return 0;
    }
    double x[SCHED_HIST * 4], w[SCHED_HIST * 4], sig[SCHED_HIST * 4];
    for (int i = 0; i < n; i++) {
        x[i] = i + 1;
        w[i] = 1;
    }
    if (weighted || robust) {
        tricube_sigma(n, sig);
        for (int i = 0; i < n; i++)
            w[i] = 1 / (sig[i] * sig[i]);
    }
    if (wls(x, y, w, n, a, b))
        return -1;
    if (!robust)
        return 0;
    /* second pass: bisquare down-weighting of large residuals */
    double res[SCHED_HIST * 4], absr[SCHED_HIST * 4];
    for (int i = 0; i < n; i++) {
        res[i] = y[i] - (*a + *b * x[i]);
        absr[i] = fabs(res[i]);
    }
    double s6 = sched_median(absr, n) * 6;
    double sig2[SCHED_HIST * 4];
    for (int i = 2; i < n; i++) {
        double r = res[i] / s6;
        double k = (1 - r * r) * (1 - r * r);
        sig2[i] = k > 0 ? sig[i] / k : DBL_MAX;
    }
    sig2[0] = sig2[1] = sig2[2];
    for (int i = 0; i < n; i++)
        w[i] = 1 / (sig2[i] * sig2[i]);
    double a2, b2;
    if (wls(x, y, w, n, &a2, &b2) == 0 && isfinite(a2) && isfinite(b2)) {
        *a = a2;
        *b = b2;
    }
    return 0;
}

double sched_r2(const double *y, const double *const *x, int k, int m)
{
    if (m <= k + 1)
        return -2; /* no degrees of freedom left */
    int p = k;     /* centred data: the intercept drops out of the normal equations */
    double my = 0;
    for (int t = 0; t < m; t++)
        my += y[t];
    my /= m;
    double *mx = calloc((size_t)(p > 0 ? p : 1), sizeof(double));
    double *A = calloc((size_t)(p * (p + 1) > 0 ? p * (p + 1) : 1), sizeof(double));
    if (!mx || !A) {
        free(mx);
        free(A);
        return NAN;
    }
    for (int j = 0; j < p; j++) {
        for (int t = 0; t < m; t++)
            mx[j] += x[j][t];
        mx[j] /= m;
    }
    /* augmented matrix [X'X | X'y] on centred columns */
    for (int i = 0; i < p; i++) {
        for (int j = 0; j <= p; j++) {
            double s = 0;
            for (int t = 0; t < m; t++) {
                double xi = x[i][t] - mx[i];
                double xj = j < p ? x[j][t] - mx[j] : y[t] - my;
                s += xi * xj;
            }
            A[i * (p + 1) + j] = s;
        }
    }
    double r2 = NAN;
    int ok = 1;
    for (int c = 0; c < p && ok; c++) {
        int piv = c;
        for (int r = c + 1; r < p; r++)
            if (fabs(A[r * (p + 1) + c]) > fabs(A[piv * (p + 1) + c]))
                piv = r;
        if (fabs(A[piv * (p + 1) + c]) < 1e-12) {
            ok = 0;
            break;
        }
        if (piv != c)
            for (int j = 0; j <= p; j++) {
                double t = A[c * (p + 1) + j];
                A[c * (p + 1) + j] = A[piv * (p + 1) + j];
                A[piv * (p + 1) + j] = t;
            }
        for (int r = 0; r < p; r++) {
            if (r == c)
                continue;
            double f = A[r * (p + 1) + c] / A[c * (p + 1) + c];
            for (int j = c; j <= p; j++)
                A[r * (p + 1) + j] -= f * A[c * (p + 1) + j];
        }
    }
    if (ok) {
        double sst = 0, sse = 0;
        for (int t = 0; t < m; t++) {
            double fit = my;
            for (int j = 0; j < p; j++)
                fit += A[j * (p + 1) + p] / A[j * (p + 1) + j] * (x[j][t] - mx[j]);
            sse += (y[t] - fit) * (y[t] - fit);
            sst += (y[t] - my) * (y[t] - my);
        }
        r2 = sst > 0 ? 1 - sse / sst : NAN;
    }
    free(mx);
    free(A);
    return r2;
}
