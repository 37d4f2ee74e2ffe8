/*
 * erlang.c - queueing models of a host's CPUs, for the vCPU wait that
 * contention causes (the host-side view of steal time). Pure arithmetic.
 *
 * Two models of c CPUs serving vCPU threads:
 *  - open M/M/c (Erlang C): bursts of CPU work arrive from an unbounded
 *    population at offered load a Erlangs (CPUs' worth). Defined for a < c
 *    only; it has no steady state at or past saturation.
 *  - closed M/M/c//N (the machine-repairman model): N vCPU threads, each
 *    runnable a fraction of the time it would be alone. It is the finite
 *    form Erlang C is the limit of, and it stays defined when the host is
 *    saturated: N always-busy vCPUs on c CPUs wait 1 - c/N of the time.
 * "Wait ratio" throughout is the share of a runnable vCPU's time spent
 * waiting for a CPU: wait / (wait + run), 0..1.
 */
#include "sched/sched.h"

#include <math.h>

double sched_erlang_c(int c, double a)
{
    if (c < 1 || a >= c)
        return 1.0;
    if (a <= 0)
        return 0.0;
    /* Erlang B by its recurrence, then C from B: no factorials to overflow */
    double b = 1.0;
    for (int k = 1; k <= c; k++)
        b = a * b / (k + a * b);
    return c * b / (c - a * (1.0 - b));
}

double sched_mmc_wait_ratio(int c, double a)
{
    if (c < 1 || a >= c)
        return 1.0;
    if (a <= 0)
        return 0.0;
    /* Wq / S = C / (c - a); the ratio is Wq / (Wq + S) */
    double pc = sched_erlang_c(c, a);
    return pc / (pc + c - a);
}

/* Mean number in the system (L) and waiting (Lq) for N sources, c servers
 * and r = demand rate / service rate; log weights keep a large r finite. */
static void closed_moments(int c, int n, double r, double *l, double *lq)
{
    double lw = 0, top = 0;
    double w[SCHED_ERLANG_MAX_N + 1];
    w[0] = 0;
    for (int k = 1; k <= n; k++) {
        lw += log((double)(n - k + 1)) + log(r) - log((double)(k < c ? k : c));
        w[k] = lw;
        if (lw > top)
            top = lw;
    }
    double z = 0, sl = 0, sq = 0;
    for (int k = 0; k <= n; k++) {
        double p = exp(w[k] - top);
        z += p;
        sl += k * p;
        sq += (k > c ? k - c : 0) * p;
    }
    *l = sl / z;
    *lq = sq / z;
}

double sched_mmcn_wait_ratio(int c, int n, double f)
{
    if (c < 1 || n < 1)
        return 0.0;
    if (n > SCHED_ERLANG_MAX_N)
        n = SCHED_ERLANG_MAX_N;
    if (f <= 0)
        return 0.0;
    if (n <= c)
        return 0.0; /* a CPU for each: nobody waits */
    if (f >= 1.0 - 1e-9)
        return 1.0 - (double)c / n;
    /* find r with L(r) / N = f (L grows with r), then Lq / L */
    double lo = -40, hi = 40, l = 0, lq = 0;
    for (int i = 0; i < 100; i++) {
        double mid = (lo + hi) / 2;
        closed_moments(c, n, exp(mid), &l, &lq);
        if (l / n < f)
            lo = mid;
        else
            hi = mid;
    }
    closed_moments(c, n, exp((lo + hi) / 2), &l, &lq);
    return l > 0 ? lq / l : 0.0;
}
