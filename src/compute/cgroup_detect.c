/*
 * cgroup_detect.c - the pure half of cgroup.h: finding the cgroup
 * hierarchies (v2, v1, or the v1/v2 "hybrid" layout systemd uses) from
 * /proc/self/mountinfo, and validating per-VM limits (ranges, cpuset syntax,
 * CPUs that exist). Nothing here writes to a cgroup tree.
 */
#include "compute/cgroup.h"
#include "compute/cgroup_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- detection ---------------------------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *d = s;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *d++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else {
            *d++ = *s++;
        }
    }
    *d = '\0';
}

static void copy_field(char *dst, size_t dstlen, const char *src)
{
    if (dst[0] != '\0') /* first mount of a controller wins */
        return;
    if (strlen(src) >= dstlen)
        return;
    strcpy(dst, src);
}

/* Comma-separated option membership, e.g. "rw,cpu,cpuacct". */
static bool has_opt(const char *opts, const char *opt)
{
    size_t ol = strlen(opt);
    const char *p = opts;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == ol && strncmp(p, opt, ol) == 0)
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

void cg_mountinfo_scan(FILE *f, struct cg_layout *out, char *unified, size_t unified_len)
{
    memset(out, 0, sizeof(*out));
    out->mode = CG_NONE;
    unified[0] = '\0';
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) != -1) {
        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *save = NULL;
        char *fields[6] = {0};
        int nf = 0;
        /* Exactly six tokens: calling strtok_r once more would eat the "-"
         * separator of mounts that have no optional fields. */
        for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
            fields[nf++] = t;
            if (nf == 6)
                break;
        }
        if (nf < 6)
            continue;
        char *mnt = fields[4];
        char *t;
        while ((t = strtok_r(NULL, " \n", &save)) != NULL && strcmp(t, "-") != 0)
            ; /* skip optional fields (shared:N, master:N ...) */
        if (t == NULL)
            continue;
        char *fstype = strtok_r(NULL, " \n", &save);
        char *source = strtok_r(NULL, " \n", &save);
        char *super = strtok_r(NULL, " \n", &save);
        if (fstype == NULL || source == NULL || super == NULL)
            continue;
        unescape(mnt);
        if (strcmp(fstype, "cgroup2") == 0) {
            copy_field(unified, unified_len, mnt);
        } else if (strcmp(fstype, "cgroup") == 0) {
            if (has_opt(super, "cpu"))
                copy_field(out->cpu, sizeof(out->cpu), mnt);
            if (has_opt(super, "cpuacct"))
                copy_field(out->cpuacct, sizeof(out->cpuacct), mnt);
            if (has_opt(super, "cpuset"))
                copy_field(out->cpuset, sizeof(out->cpuset), mnt);
            if (has_opt(super, "memory"))
                copy_field(out->memory, sizeof(out->memory), mnt);
        }
    }
    free(line);
}

int cg_detect_at(const char *mountinfo_path, struct cg_layout *out)
{
    memset(out, 0, sizeof(*out));
    out->mode = CG_NONE;
    FILE *f = fopen(mountinfo_path, "re");
    if (f == NULL)
        return -1;
    char unified[256];
    cg_mountinfo_scan(f, out, unified, sizeof(unified));
    fclose(f);

    /* v2 only counts if cpu and memory are actually available there: in the
     * hybrid layout the unified tree is mounted but every controller is bound
     * to a v1 hierarchy, so its cgroup.controllers is (nearly) empty. */
    if (unified[0] != '\0') {
        char path[CG_PATH_MAX], ctl[512];
        if (cg_join(path, sizeof(path), unified, "cgroup.controllers", NULL, 0) == 0 &&
            cg_read_file(path, ctl, sizeof(ctl)) >= 0 && cg_has_word(ctl, "cpu") &&
            cg_has_word(ctl, "memory")) {
            char keep[256];
            memcpy(keep, unified, sizeof(keep));
            memset(out, 0, sizeof(*out));
            out->mode = CG_V2;
            memcpy(out->root, keep, sizeof(out->root));
            return 0;
        }
    }

    return cg_layout_v1(out);
}

int cg_layout_v1(struct cg_layout *out)
{
    if (out->cpu[0] || out->memory[0] || out->cpuset[0] || out->cpuacct[0]) {
        out->mode = CG_V1;
        /* root: the directory the v1 hierarchies are mounted in, for display. */
        const char *any = out->cpu[0]      ? out->cpu
                          : out->memory[0] ? out->memory
                          : out->cpuset[0] ? out->cpuset
                                           : out->cpuacct;
        const char *slash = strrchr(any, '/');
        size_t n = slash ? (size_t)(slash - any) : 0;
        if (n == 0)
            n = slash ? 1 : 0;
        memcpy(out->root, any, n);
        out->root[n] = '\0';
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -1;
}

int cg_detect(struct cg_layout *out)
{
    return cg_detect_at("/proc/self/mountinfo", out);
}

/* ---- validation --------------------------------------------------------- */

/* Parses a decimal CPU number; stops at the first non-digit. Values are capped
 * so a huge number reports "does not exist" instead of overflowing. */
static const char *parse_cpu(const char *p, long *v)
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

static int bad_syntax(const char *s, const char *at, char *err, size_t errlen)
{
    if (*at == '\0')
        cg_set_err(err, errlen, "cpuset \"%s\": unexpected end (want e.g. \"0-1,3\")", s);
    else
        cg_set_err(err, errlen, "cpuset \"%s\": bad syntax at \"%s\" (want e.g. \"0-1,3\")", s, at);
    return -1;
}

static int cpuset_validate(const char *s, int ncpus, char *err, size_t errlen)
{
    const char *p = s;
    for (;;) {
        long a, b;
        const char *q = parse_cpu(p, &a);
        if (q == NULL)
            return bad_syntax(s, p, err, errlen);
        b = a;
        if (*q == '-') {
            const char *r = parse_cpu(q + 1, &b);
            if (r == NULL)
                return bad_syntax(s, q, err, errlen);
            if (b < a) {
                cg_set_err(err, errlen, "cpuset \"%s\": range %ld-%ld is reversed", s, a, b);
                return -1;
            }
            q = r;
        }
        if (ncpus > 0 && b >= ncpus) {
            cg_set_err(err, errlen,
                       "cpuset \"%s\": CPU %ld does not exist (host has %d CPUs: 0-%d)", s, b,
                       ncpus, ncpus - 1);
            return -1;
        }
        if (*q == '\0')
            return 0;
        if (*q != ',')
            return bad_syntax(s, q, err, errlen);
        p = q + 1;
    }
}

int cg_limits_validate(const struct cg_limits *l, int ncpus, enum cg_swap_acct swap_acct, char *err,
                       size_t errlen)
{
    if (l == NULL) {
        cg_set_err(err, errlen, "no limits given");
        return -1;
    }
    if (l->cpu_weight > 10000) {
        cg_set_err(err, errlen, "cpu-weight %u out of range 1..10000", l->cpu_weight);
        return -1;
    }
    if (l->cpu_quota_us != 0 && l->cpu_quota_us < 1000) {
        cg_set_err(err, errlen, "cpu-quota %" PRIu64 "us below minimum 1000us", l->cpu_quota_us);
        return -1;
    }
    if (l->cpu_period_us != 0 && (l->cpu_period_us < 1000 || l->cpu_period_us > 1000000)) {
        cg_set_err(err, errlen, "cpu-period %" PRIu64 "us out of range 1000..1000000",
                   l->cpu_period_us);
        return -1;
    }
    if (memchr(l->cpuset, '\0', sizeof(l->cpuset)) == NULL) {
        cg_set_err(err, errlen, "cpuset longer than %zu characters", sizeof(l->cpuset) - 1);
        return -1;
    }
    if (l->cpuset[0] != '\0' && cpuset_validate(l->cpuset, ncpus, err, errlen) < 0)
        return -1;
    return cg_memory_validate(l, swap_acct, err, errlen);
}
