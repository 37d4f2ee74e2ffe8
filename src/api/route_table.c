/*
 * route_table.c - the concatenated route table: built once from every
 * routes_<x>.c's rows, checked for malformed patterns and collisions,
 * matched against a request path (literal segments before {params}), and
 * printed for `yund --routes`. No I/O except the printing.
 */
#include "api/routes.h"

#include <event2/http.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct part {
    const struct route *rows;
    const size_t *count;
};

/* Every file's rows; a new routes_<x>.c adds its line here. */
static const struct part parts[] = {
    {routes_misc, &routes_misc_count},           {routes_vms, &routes_vms_count},
    {routes_snapshots, &routes_snapshots_count}, {routes_guest, &routes_guest_count},
    {routes_storage, &routes_storage_count},     {routes_tasks, &routes_tasks_count},
    {routes_monitor, &routes_monitor_count},     {routes_hosts, &routes_hosts_count},
    {routes_cluster, &routes_cluster_count},     {routes_leader, &routes_leader_count},
    {routes_place, &routes_place_count},         {routes_migrate, &routes_migrate_count},
};

static const struct {
    int method;
    const char *name;
} methods[] = {
    {EVHTTP_REQ_GET, "GET"}, {EVHTTP_REQ_HEAD, "HEAD"},   {EVHTTP_REQ_POST, "POST"},
    {EVHTTP_REQ_PUT, "PUT"}, {EVHTTP_REQ_PATCH, "PATCH"}, {EVHTTP_REQ_DELETE, "DELETE"},
};

static const struct {
    unsigned flag;
    const char *name;
} flag_names[] = {
    {ROUTE_BODY, "body"},   {ROUTE_ASYNC, "async"},   {ROUTE_LONGPOLL, "longpoll"},
    {ROUTE_ADMIN, "admin"}, {ROUTE_PUBLIC, "public"}, {ROUTE_STANDBY, "standby"},
};

const char *route_method_name(int method)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].method == method)
            return methods[i].name;
    return "?";
}

void route_allow_header(unsigned set, char *buf, size_t len)
{
    size_t off = 0;
    if (set & EVHTTP_REQ_GET)
        set |= EVHTTP_REQ_HEAD;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (!(set & (unsigned)methods[i].method))
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", methods[i].name);
        if (w < 0 || (size_t)w >= len - off)
            return;
        off += (size_t)w;
    }
}

/* The next segment of a pattern at *p: sets *seg and *len, advances *p. */
static bool next_seg(const char **p, const char **seg, size_t *len)
{
    while (**p == '/')
        (*p)++;
    if (!**p)
        return false;
    *seg = *p;
    while (**p && **p != '/')
        (*p)++;
    *len = (size_t)(*p - *seg);
    return true;
}

static bool is_param(const char *seg, size_t len)
{
    return len >= 2 && seg[0] == '{' && seg[len - 1] == '}';
}

/* Segment count, or -1 when the pattern is malformed. */
static int pattern_segs(const char *pat)
{
    if (!pat || pat[0] != '/')
        return -1;
    const char *p = pat, *s;
    size_t len;
    int n = 0;
    while (next_seg(&p, &s, &len)) {
        if (++n > ROUTE_MAX_SEGS)
            return -1;
        bool brace = memchr(s, '{', len) || memchr(s, '}', len);
        if (brace && (!is_param(s, len) || len == 2 || memchr(s + 1, '{', len - 2) ||
                      memchr(s + 1, '}', len - 2)))
            return -1;
    }
    return n;
}

/* Same method and the same shape: the same literals where both have one. */
static bool equivalent(const char *a, const char *b)
{
    const char *sa, *sb;
    size_t la, lb;
    for (;;) {
        bool ha = next_seg(&a, &sa, &la), hb = next_seg(&b, &sb, &lb);
        if (ha != hb)
            return false;
        if (!ha)
            return true;
        bool pa = is_param(sa, la), pb = is_param(sb, lb);
        if (pa != pb || (!pa && (la != lb || memcmp(sa, sb, la))))
            return false;
    }
}

int route_table_check(const struct route *t, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (pattern_segs(t[i].pattern) < 0 || !t[i].fn || !t[i].summary || !t[i].summary[0] ||
            !strcmp(route_method_name(t[i].method), "?")) {
            snprintf(err, errlen, "route %zu (%s) is malformed", i,
                     t[i].pattern ? t[i].pattern : "?");
            return -1;
        }
        if ((t[i].check_body != NULL) && !(t[i].flags & ROUTE_BODY)) {
            snprintf(err, errlen, "route %s %s checks a body it does not take",
                     route_method_name(t[i].method), t[i].pattern);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (t[j].method == t[i].method && equivalent(t[i].pattern, t[j].pattern)) {
                snprintf(err, errlen, "routes %s %s and %s collide", route_method_name(t[i].method),
                         t[j].pattern, t[i].pattern);
                return -1;
            }
    }
    return 0;
}

const struct route *route_table(size_t *n, char *err, size_t errlen)
{
    static struct route *table;
    static size_t count;
    static bool bad;
    if (!table && !bad) {
        size_t total = 0, k = 0;
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
            total += *parts[i].count;
        struct route *t = calloc(total ? total : 1, sizeof(*t));
        if (!t) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
            for (size_t j = 0; j < *parts[i].count; j++)
                t[k++] = parts[i].rows[j];
        if (route_table_check(t, total, err, errlen) < 0) {
            free(t);
            bad = true;
            return NULL;
        }
        table = t;
        count = total;
    } else if (bad) {
        snprintf(err, errlen, "the route table is malformed");
        return NULL;
    }
    *n = count;
    return table;
}

int route_split(char *path, const char **segs, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == max)
            return -1;
        segs[n++] = s;
    }
    return n;
}

/* Does pattern match the segments? Fills the literal mask (bit per
 * segment, first segment highest) and the parameters. */
static bool match_one(const char *pat, const char *const *segs, int nsegs, uint32_t *mask,
                      struct route_match *m)
{
    const char *s;
    size_t len;
    int i = 0, np = 0;
    uint32_t lit = 0;
    while (next_seg(&pat, &s, &len)) {
        if (i == nsegs)
            return false;
        if (is_param(s, len)) {
            m->param_name[np] = s + 1;
            m->param_len[np] = len - 2;
            m->param_val[np++] = segs[i];
        } else if (strlen(segs[i]) != len || memcmp(segs[i], s, len)) {
            return false;
        } else {
            lit |= 1u << (ROUTE_MAX_SEGS - 1 - i);
        }
        i++;
    }
    if (i != nsegs)
        return false;
    m->nparams = np;
    *mask = lit;
    return true;
}

bool route_match(const struct route *t, size_t n, int method, const char *const *segs, int nsegs,
                 struct route_match *m)
{
    int want = method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : method;
    uint32_t best = 0;
    bool any = false;
    memset(m, 0, sizeof(*m));
    for (size_t i = 0; i < n; i++) {
        struct route_match cand;
        uint32_t mask;
        if (!match_one(t[i].pattern, segs, nsegs, &mask, &cand))
            continue;
        any = true;
        m->allow |= (unsigned)t[i].method;
        /* the most literal row for the method wins (rows never tie: two
         * matching rows with one mask would be equivalent) */
        if (t[i].method == want && (!m->route || mask > best)) {
            unsigned allow = m->allow;
            *m = cand;
            m->allow = allow;
            m->route = &t[i];
            best = mask;
        }
    }
    return any;
}

static void flags_text(unsigned flags, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++) {
        if (!(flags & flag_names[i].flag))
            continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? "," : "", flag_names[i].name);
        if (w < 0 || (size_t)w >= len - off)
            return;
        off += (size_t)w;
    }
    if (!off)
        snprintf(buf, len, "-");
}

int route_table_print(FILE *f, bool json)
{
    char err[256], flags[64];
    size_t n;
    const struct route *t = route_table(&n, err, sizeof(err));
    if (!t) {
        fprintf(stderr, "yund: %s\n", err);
        return -1;
    }
    json_t *arr = json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        flags_text(t[i].flags, flags, sizeof(flags));
        if (!json) {
            fprintf(f, "%-6s %-52s %-14s %s\n", route_method_name(t[i].method), t[i].pattern, flags,
                    t[i].summary);
            continue;
        }
        json_t *fl = json_array();
        for (size_t k = 0; k < sizeof(flag_names) / sizeof(flag_names[0]); k++)
            if (t[i].flags & flag_names[k].flag)
                json_array_append_new(fl, json_string(flag_names[k].name));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:o,s:s,s:b}", "method",
                                             route_method_name(t[i].method), "pattern",
                                             t[i].pattern, "flags", fl, "summary", t[i].summary,
                                             "check_body", t[i].check_body != NULL));
    }
    if (json) {
        int rc = json_dumpf(arr, f, JSON_INDENT(1)) < 0 ? -1 : 0;
        fputc('\n', f);
        json_decref(arr);
        return rc;
    }
    return 0;
}
