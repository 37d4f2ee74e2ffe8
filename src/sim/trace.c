/* trace.c - workload traces for the simulator: PlanetLab directories (one file
 * per VM, one integer CPU% per line), a long CSV format (vm,timestamp,cpu%) and
 * a seeded synthetic generator. Every parse error names the file and line. */
#include "sim/sim.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void sim_trace_free(sim_trace *t)
{
    if (t->names)
        for (int i = 0; i < t->nvms; i++)
            free(t->names[i]);
    free(t->names);
    free(t->u);
    memset(t, 0, sizeof(*t));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* case-insensitive by upper-casing, the collation of NTFS / HFS+ directory
 * listings (where '_' sorts after letters) */
static int cmp_upper(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a,
                        *y = *(const unsigned char *const *)b;
    for (;; x++, y++) {
        int cx = (*x >= 'a' && *x <= 'z') ? *x - 32 : *x;
        int cy = (*y >= 'a' && *y <= 'z') ? *y - 32 : *y;
        if (cx != cy || !cx)
            return cx - cy;
    }
}

/* reads one PlanetLab file into out (capacity max); returns samples read or -1 */
static int read_pl_file(const char *path, uint16_t *out, int max, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* whole file at once: traces are small and line-by-line stdio is the
     * dominant cost of loading a thousand of them */
    char stackbuf[8192], *buf = stackbuf;
    size_t cap = sizeof(stackbuf) - 1, len = 0, got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            size_t nc = cap * 2 + 1;
            char *nb = buf == stackbuf ? malloc(nc + 1) : realloc(buf, nc + 1);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                if (buf != stackbuf)
                    free(buf);
                fclose(f);
                return -1;
            }
            if (buf == stackbuf)
                memcpy(nb, stackbuf, len);
            buf = nb;
            cap = nc;
        }
    }
    fclose(f);
    buf[len] = 0;
    int n = sim_trace_parse_planetlab(path, buf, out, max, err, errlen);
    if (buf != stackbuf)
        free(buf);
    return n;
}

int sim_trace_parse_planetlab(const char *path, char *buf, uint16_t *out, int max, char *err,
                              size_t errlen)
{
    int n = 0, lineno = 0, rc = 0;
    for (char *p = buf; *p && rc == 0;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = 0;
        lineno++;
        char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q && *q != '\r') { /* blank lines (e.g. a trailing one) are tolerated */
            long v = 0;
            char *d = q;
            while (*d >= '0' && *d <= '9' && v <= 1000)
                v = v * 10 + (*d++ - '0');
            while (*d == ' ' || *d == '\t' || *d == '\r')
                d++;
            if (d == q || *d || v > 100) {
                snprintf(err, errlen, "%s:%d: expected an integer CPU%% in 0..100, got '%.40s'",
                         path, lineno, q);
                rc = -1;
            } else if (n >= max) {
                snprintf(err, errlen, "%s:%d: more than %d samples", path, lineno, max);
                rc = -1;
            } else
                out[n++] = (uint16_t)(v * 100);
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return rc ? -1 : n;
}

int sim_trace_load_planetlab(const char *dir, sim_trace *t, char *err, size_t errlen)
{
    return sim_trace_load_planetlab_order(dir, SIM_ORDER_NAME, t, err, errlen);
}

int sim_trace_load_planetlab_order(const char *dir, sim_order order, sim_trace *t, char *err,
                                   size_t errlen)
{
    memset(t, 0, sizeof(*t));
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **p = realloc(names, (size_t)cap * sizeof(char *));
            if (!p)
                break;
            names = p;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n == 0) {
        snprintf(err, errlen, "%s: no trace files", dir);
        free(names);
        return -1;
    }
    /* sorted by name: raw directory order is file-system dependent */
    if (order != SIM_ORDER_DIR)
        qsort(names, (size_t)n, sizeof(char *), order == SIM_ORDER_UPPER ? cmp_upper : cmp_str);
    const int max = 100000;
    uint16_t *buf = malloc((size_t)max * sizeof(uint16_t));
    char path[4096];
    int rc = -1, steps = -1;
    if (!buf)
        goto out;
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        int got = read_pl_file(path, buf, max, err, errlen);
        if (got < 0)
            goto out;
        if (steps < 0) {
            steps = got;
            if (steps == 0) {
                snprintf(err, errlen, "%s: empty trace file", path);
                goto out;
            }
            t->u = malloc((size_t)n * (size_t)steps * sizeof(uint16_t));
            if (!t->u) {
                snprintf(err, errlen, "out of memory for %d x %d samples", n, steps);
                goto out;
            }
        } else if (got != steps) {
            snprintf(err, errlen, "%s: %d samples, but %s has %d", path, got, names[0], steps);
            goto out;
        }
        memcpy(t->u + (size_t)i * (size_t)steps, buf, (size_t)steps * sizeof(uint16_t));
    }
    t->nvms = n;
    t->nsteps = steps;
    t->interval = 300;
    t->names = names;
    names = NULL;
    rc = 0;
out:
    free(buf);
    if (names) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    if (rc)
        sim_trace_free(t);
    return rc;
}

typedef struct rec {
    int vm;
    double ts, cpu;
} rec;

int sim_trace_load_csv(const char *path, double interval, sim_trace *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (!(interval > 0) || !isfinite(interval)) {
        snprintf(err, errlen, "%s: the sample interval must be a positive number of seconds", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = sim_trace_read_csv(f, path, interval, t, err, errlen);
    fclose(f);
    return rc;
}

int sim_trace_read_csv(FILE *f, const char *path, double interval, sim_trace *t, char *err,
                       size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (!(interval > 0) || !isfinite(interval)) {
        snprintf(err, errlen, "%s: the sample interval must be a positive number of seconds", path);
        return -1;
    }
    rec *rs = NULL;
    size_t nr = 0, cr = 0;
    char **ids = NULL;
    int nid = 0, cid = 0, rc = -1;
    char line[1024];
    int lineno = 0;
    double t0 = INFINITY, t1 = -INFINITY;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c1 || !c2) {
            snprintf(err, errlen, "%s:%d: expected 'vm,timestamp,cpu%%'", path, lineno);
            goto out;
        }
        *c1 = *c2 = 0;
        char *e1, *e2;
        double ts = strtod(c1 + 1, &e1), cpu = strtod(c2 + 1, &e2);
        if (e1 == c1 + 1 || e2 == c2 + 1 || *e1 || (*e2 && *e2 != ' ')) {
            if (lineno == 1)
                continue; /* header */
            snprintf(err, errlen, "%s:%d: bad number in '%s,%s,%s'", path, lineno, line, c1 + 1,
                     c2 + 1);
            goto out;
        }
        if (!(cpu >= 0 && cpu <= 100) || !isfinite(ts)) {
            snprintf(err, errlen, "%s:%d: cpu%% %g outside 0..100", path, lineno, cpu);
            goto out;
        }
        /* VM ids keep first-appearance order; linear lookup from the end is fast
         * for the usual grouped layout */
        int id = -1;
        for (int i = nid - 1; i >= 0 && i >= nid - 4; i--)
            if (strcmp(ids[i], line) == 0)
                id = i;
        if (id < 0)
            for (int i = 0; i < nid; i++)
                if (strcmp(ids[i], line) == 0) {
                    id = i;
                    break;
                }
        if (id < 0) {
            if (nid == cid) {
                cid = cid ? cid * 2 : 256;
                char **p = realloc(ids, (size_t)cid * sizeof(char *));
                if (!p)
                    goto out;
                ids = p;
            }
            ids[nid] = strdup(line);
            id = nid++;
        }
        if (nr == cr) {
            cr = cr ? cr * 2 : 4096;
            rec *p = realloc(rs, cr * sizeof(rec));
            if (!p)
                goto out;
            rs = p;
        }
        rs[nr++] = (rec){id, ts, cpu};
        if (ts < t0)
            t0 = ts;
        if (ts > t1)
            t1 = ts;
    }
    if (nr == 0) {
        snprintf(err, errlen, "%s: no samples", path);
        goto out;
    }
    /* the span decides the allocation: bound it while it is still a double,
     * since converting an out-of-range double to int is undefined */
    double span = floor((t1 - t0) / interval + 0.5);
    if (!(span < SIM_TRACE_MAX_STEPS)) {
        snprintf(err, errlen,
                 "%s: timestamps %g..%g at an interval of %g s make more than %d samples per VM",
                 path, t0, t1, interval, SIM_TRACE_MAX_STEPS);
        goto out;
    }
    int steps = (int)span + 1;
    if ((long long)nid * steps > SIM_TRACE_MAX_CELLS) {
        snprintf(err, errlen, "%s: %d VMs x %d samples is more than %lld samples", path, nid, steps,
                 (long long)SIM_TRACE_MAX_CELLS);
        goto out;
    }
    t->u = calloc((size_t)nid * (size_t)steps, sizeof(uint16_t));
    unsigned char *seen = calloc((size_t)nid * (size_t)steps, 1);
    if (!t->u || !seen) {
        free(seen);
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < nr; i++) {
        int s = (int)floor((rs[i].ts - t0) / interval + 0.5);
        size_t k = (size_t)rs[i].vm * (size_t)steps + (size_t)s;
        t->u[k] = (uint16_t)floor(rs[i].cpu * 100 + 0.5);
        seen[k] = 1;
    }
    /* a missing sample repeats the previous one */
    for (int v = 0; v < nid; v++)
        for (int s = 1; s < steps; s++) {
            size_t k = (size_t)v * (size_t)steps + (size_t)s;
            if (!seen[k])
                t->u[k] = t->u[k - 1];
        }
    free(seen);
    t->nvms = nid;
    t->nsteps = steps;
    t->interval = interval;
    t->names = ids;
    ids = NULL;
    rc = 0;
out:
    free(rs);
    if (ids) {
        for (int i = 0; i < nid; i++)
            free(ids[i]);
        free(ids);
    }
    if (rc)
        sim_trace_free(t);
    return rc;
}

/* Synthetic PlanetLab-like load: a per-VM base level (skewed low, as real
 * fleets), a daily sine with random phase, noise, and rare bursts. */
int sim_trace_synth(int nvms, int nsteps, double interval, uint64_t seed, sim_trace *t)
{
    memset(t, 0, sizeof(*t));
    if (nvms < 1 || nsteps < 1 || nsteps > SIM_TRACE_MAX_STEPS ||
        (long long)nvms * nsteps > SIM_TRACE_MAX_CELLS)
        return -1;
    t->u = malloc((size_t)nvms * (size_t)nsteps * sizeof(uint16_t));
    if (!t->u)
        return -1;
    sched_rng r;
    sched_rng_seed(&r, seed);
    double day = 86400.0 / interval;
    for (int v = 0; v < nvms; v++) {
        double x = sched_rng_unit(&r);
        double base = 3 + 40 * x * x * x; /* most VMs idle-ish, a few busy */
        double amp = base * (0.2 + 0.6 * sched_rng_unit(&r));
        double phase = 2 * M_PI * sched_rng_unit(&r);
        double level = base;
        for (int s = 0; s < nsteps; s++) {
            /* AR(1) noise around the daily curve keeps consecutive samples correlated */
            double target = base + amp * sin(2 * M_PI * s / day + phase);
            level = 0.7 * level + 0.3 * target + (sched_rng_unit(&r) - 0.5) * base * 0.4;
            double val = level;
            if (sched_rng_unit(&r) < 0.01)
                val += 30 + 50 * sched_rng_unit(&r);
            int p = (int)floor(val + 0.5);
            if (p < 0)
                p = 0;
            if (p > 100)
                p = 100;
            t->u[(size_t)v * (size_t)nsteps + (size_t)s] = (uint16_t)(p * 100);
        }
    }
    t->nvms = nvms;
    t->nsteps = nsteps;
    t->interval = interval;
    return 0;
}
