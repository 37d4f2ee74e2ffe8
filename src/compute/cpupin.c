/*
 * cpupin.c - the pure side of vCPU and emulator pinning (cpupin.h): cpuset
 * syntax into bit masks, "VCPU:CPUS" lists, and the limits a pin must keep
 * (vCPU index below the VM's count, host CPUs that exist, inside the VM's
 * cpuset). The agent applies the masks; the controller and the API refuse a
 * bad pin with these messages before anything is written.
 */
#include "compute/cpupin.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

bool cpumask_has(const struct cpumask *m, int cpu)
{
    return cpu >= 0 && cpu < CPUPIN_MAX_CPUS && (m->w[cpu / 64] >> (cpu % 64)) & 1;
}

bool cpumask_empty(const struct cpumask *m)
{
    for (size_t i = 0; i < sizeof m->w / sizeof m->w[0]; i++)
        if (m->w[i])
            return false;
    return true;
}

bool cpumask_subset(const struct cpumask *a, const struct cpumask *b)
{
    for (size_t i = 0; i < sizeof a->w / sizeof a->w[0]; i++)
        if (a->w[i] & ~b->w[i])
            return false;
    return true;
}

int cpumask_last(const struct cpumask *m)
{
    for (int c = CPUPIN_MAX_CPUS - 1; c >= 0; c--)
        if (cpumask_has(m, c))
            return c;
    return -1;
}

/* A decimal number, capped so a huge one reads as "too big" rather than
 * overflowing; NULL when p is not at a digit. */
static const char *num(const char *p, long *v)
{
    if (!isdigit((unsigned char)*p))
        return NULL;
    long n = 0;
    while (isdigit((unsigned char)*p)) {
        if (n < 1000000)
            n = n * 10 + (*p - '0');
        p++;
    }
    *v = n;
    return p;
}

/* One cpuset list from p up to a character in stop (or the end); *endp is
 * where it stopped. */
static int mask_at(const char *p, const char *stop, const char *what, const char *whole,
                   struct cpumask *m, const char **endp, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    for (;;) {
        long a, b;
        const char *q = num(p, &a);
        if (!q)
            return fail(err, errlen, "%s \"%s\": bad syntax at \"%s\" (want e.g. \"0-1,3\")", what,
                        whole, p);
        b = a;
        if (*q == '-') {
            const char *r = num(q + 1, &b);
            if (!r)
                return fail(err, errlen, "%s \"%s\": bad syntax at \"%s\" (want e.g. \"0-1,3\")",
                            what, whole, q);
            if (b < a)
                return fail(err, errlen, "%s \"%s\": range %ld-%ld is reversed", what, whole, a, b);
            q = r;
        }
        if (b >= CPUPIN_MAX_CPUS)
            return fail(err, errlen, "%s \"%s\": CPU %ld is above the limit of %d CPUs", what,
                        whole, b, CPUPIN_MAX_CPUS);
        for (long c = a; c <= b; c++)
            m->w[c / 64] |= 1ULL << (c % 64);
        if (*q == ',') {
            /* in a pin list (stop set) a ',' before "N:" ends this vCPU's
             * CPUs: "0:0,2,1:1" is vCPU 0 on CPUs 0 and 2, vCPU 1 on 1 */
            long next;
            const char *t = num(q + 1, &next);
            if (!stop || !t || *t != ':') {
                p = q + 1;
                continue;
            }
        }
        *endp = q;
        return 0;
    }
}

int cpumask_parse(const char *s, const char *what, struct cpumask *m, char *err, size_t errlen)
{
    const char *end;
    if (!s || !*s)
        return fail(err, errlen, "%s is empty (want e.g. \"0-1,3\")", what);
    if (mask_at(s, NULL, what, s, m, &end, err, errlen) < 0)
        return -1;
    if (*end)
        return fail(err, errlen, "%s \"%s\": bad syntax at \"%s\" (want e.g. \"0-1,3\")", what, s,
                    end);
    return 0;
}

int cpupin_parse(const char *s, struct cpupin *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (!s || !*s)
        return 0;
    const char *at = s;
    for (;;) {
        long v;
        const char *q = num(at, &v);
        if (!q || *q != ':')
            return fail(
                err, errlen,
                "cpu-pin \"%s\": bad syntax at \"%s\" (want VCPU:HOSTCPUS, e.g. \"0:2,1:3\")", s,
                at);
        if (v >= CPUPIN_MAX_VCPUS)
            return fail(err, errlen, "cpu-pin \"%s\": vCPU %ld is above the limit of %d", s, v,
                        CPUPIN_MAX_VCPUS);
        for (int i = 0; i < p->n; i++)
            if (p->e[i].vcpu == v)
                return fail(err, errlen, "cpu-pin \"%s\": vCPU %ld is pinned twice", s, v);
        const char *end;
        if (mask_at(q + 1, ":", "cpu-pin", s, &p->e[p->n].cpus, &end, err, errlen) < 0)
            return -1;
        p->e[p->n++].vcpu = (int)v;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return fail(
                err, errlen,
                "cpu-pin \"%s\": bad syntax at \"%s\" (want VCPU:HOSTCPUS, e.g. \"0:2,1:3\")", s,
                end);
        at = end + 1;
    }
}

/* m within the host's CPUs and the VM's cpuset. */
static int mask_fits(const struct cpumask *m, const char *what, const char *val, int ncpus,
                     const struct cpumask *set, const char *cpuset, char *err, size_t errlen)
{
    int last = cpumask_last(m);
    if (ncpus > 0 && last >= ncpus)
        return fail(err, errlen, "%s \"%s\": CPU %d does not exist (host has %d CPUs: 0-%d)", what,
                    val, last, ncpus, ncpus - 1);
    if (set && !cpumask_subset(m, set)) {
        int c = 0;
        while (!(cpumask_has(m, c) && !cpumask_has(set, c)))
            c++;
        return fail(err, errlen, "%s \"%s\": CPU %d is outside the VM's cpuset \"%s\"", what, val,
                    c, cpuset);
    }
    return 0;
}

int cpupin_validate(const char *cpu_pin, const char *emulator_pin, int vcpus, const char *cpuset,
                    int ncpus, char *err, size_t errlen)
{
    struct cpupin p;
    struct cpumask set, *setp = NULL;
    if (cpuset && *cpuset) {
        if (cpumask_parse(cpuset, "cpuset", &set, err, errlen) < 0)
            return -1;
        setp = &set;
    }
    if (cpu_pin && *cpu_pin) {
        struct cpupin *pp = &p;
        if (cpupin_parse(cpu_pin, pp, err, errlen) < 0)
            return -1;
        for (int i = 0; i < pp->n; i++) {
            if (pp->e[i].vcpu >= vcpus)
                return fail(err, errlen,
                            "cpu-pin \"%s\": vCPU %d does not exist (the VM has %d vCPUs: 0-%d)",
                            cpu_pin, pp->e[i].vcpu, vcpus, vcpus - 1);
            if (mask_fits(&pp->e[i].cpus, "cpu-pin", cpu_pin, ncpus, setp, cpuset, err, errlen) < 0)
                return -1;
        }
    }
    if (emulator_pin && *emulator_pin) {
        struct cpumask m;
        if (cpumask_parse(emulator_pin, "emulator-pin", &m, err, errlen) < 0 ||
            mask_fits(&m, "emulator-pin", emulator_pin, ncpus, setp, cpuset, err, errlen) < 0)
            return -1;
    }
    return 0;
}
