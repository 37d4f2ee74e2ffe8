/*
 * jsonw.c - the streaming JSON writer.
 */
#include "lib/jsonw.h"
#include "lib/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(struct jw *w)
{
    memset(w, 0, sizeof(*w));
    w->first[0] = true;
}

void jw_free(struct jw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

static void put(struct jw *w, const char *s, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t nc = w->cap ? w->cap : 4096;
        while (nc < w->len + n + 1)
            nc *= 2;
        char *nb = realloc(w->buf, nc);
        if (!nb) {
            w->oom = true;
            return;
        }
        w->buf = nb;
        w->cap = nc;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

/* Comma before every element but the first of its container. */
static void sep(struct jw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        put(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_c(struct jw *w, const char *c)
{
    sep(w);
    put(w, c, 1);
    if (w->depth + 1 < JW_MAX_DEPTH)
        w->depth++;
    w->first[w->depth] = true;
}

static void close_c(struct jw *w, const char *c)
{
    if (w->depth > 0)
        w->depth--;
    put(w, c, 1);
}

void jw_obj_open(struct jw *w)
{
    open_c(w, "{");
}

void jw_obj_close(struct jw *w)
{
    close_c(w, "}");
}

void jw_arr_open(struct jw *w)
{
    open_c(w, "[");
}

void jw_arr_close(struct jw *w)
{
    close_c(w, "]");
}

static void put_escaped(struct jw *w, const char *s)
{
    put(w, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        /* copy plain ASCII in runs */
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            put(w, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            put(w, e, 2);
            p++;
        } else if (*p < 0x20) {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", *p);
            put(w, e, 6);
            p++;
        } else {
            /* strict (no overlong forms or surrogates): strings from the
             * store may hold any bytes, the output must be valid UTF-8 */
            size_t n = utf8_char_len((const char *)p, strnlen((const char *)p, 4));
            if (n == 0) {
                put(w, "\\ufffd", 6);
                p++;
            } else {
                put(w, (const char *)p, n);
                p += n;
            }
        }
    }
    put(w, "\"", 1);
}

void jw_key(struct jw *w, const char *k)
{
    sep(w);
    put_escaped(w, k);
    put(w, ":", 1);
    w->after_key = true;
}

void jw_str(struct jw *w, const char *s)
{
    sep(w);
    put_escaped(w, s ? s : "");
}

void jw_int(struct jw *w, int64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%lld", (long long)v);
    sep(w);
    put(w, num, (size_t)n);
}

void jw_bool(struct jw *w, bool v)
{
    sep(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_num(struct jw *w, double v)
{
    char num[48];
    int n =
        isfinite(v) ? snprintf(num, sizeof(num), "%.6g", v) : snprintf(num, sizeof(num), "null");
    sep(w);
    put(w, num, (size_t)n);
}

void jw_kv_str(struct jw *w, const char *k, const char *s)
{
    jw_key(w, k);
    jw_str(w, s);
}

void jw_kv_int(struct jw *w, const char *k, int64_t v)
{
    jw_key(w, k);
    jw_int(w, v);
}
