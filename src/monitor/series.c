/*
 * series.c - fixed-size rings of samples in a chained hash table.
 */
#include "monitor/series.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned hash(const char *a, const char *b)
{
    unsigned h = 2166136261u;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ '/') * 16777619u;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h % SERIES_BUCKETS;
}

void series_init(struct series_store *s)
{
    memset(s, 0, sizeof(*s));
}

void series_free(struct series_store *s)
{
    for (int i = 0; i < SERIES_BUCKETS; i++) {
        struct series *r = s->buckets[i], *n;
        for (; r; r = n) {
            n = r->next;
            free(r);
        }
        s->buckets[i] = NULL;
    }
    s->nseries = 0;
}

struct series *series_get(struct series_store *s, const char *object, const char *metric)
{
    for (struct series *r = s->buckets[hash(object, metric)]; r; r = r->next)
        if (!strcmp(r->object, object) && !strcmp(r->metric, metric))
            return r;
    return NULL;
}

void series_add(struct series_store *s, const char *object, const char *metric, int64_t ts,
                double v)
{
    struct series *r = series_get(s, object, metric);
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return;
        snprintf(r->object, sizeof(r->object), "%s", object);
        snprintf(r->metric, sizeof(r->metric), "%s", metric);
        unsigned h = hash(object, metric);
        r->next = s->buckets[h];
        s->buckets[h] = r;
        s->nseries++;
    }
    r->ts[r->head] = ts;
    r->v[r->head] = v;
    r->head = (r->head + 1) % SERIES_RING;
    if (r->count < SERIES_RING)
        r->count++;
}

void series_drop_object(struct series_store *s, const char *object)
{
    for (int i = 0; i < SERIES_BUCKETS; i++) {
        struct series **pp = &s->buckets[i];
        while (*pp) {
            if (!strcmp((*pp)->object, object)) {
                struct series *dead = *pp;
                *pp = dead->next;
                free(dead);
                s->nseries--;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

/* i-th oldest sample */
static int idx(const struct series *r, int i)
{
    return (r->head - r->count + i + SERIES_RING) % SERIES_RING;
}

int series_aggregate(const struct series *r, int64_t since, int64_t until, enum agg a, double *out)
{
    if (!r)
        return -1;
    int n = 0;
    double acc = 0;
    for (int i = 0; i < r->count; i++) {
        int k = idx(r, i);
        if (r->ts[k] < since || r->ts[k] > until)
            continue;
        double v = r->v[k];
        if (n == 0)
            acc = v;
        else if (a == AGG_AVG)
            acc += v;
        else if (a == AGG_MAX && v > acc)
            acc = v;
        else if (a == AGG_MIN && v < acc)
            acc = v;
        else if (a == AGG_LAST)
            acc = v;
        n++;
    }
    if (n == 0)
        return -1;
    *out = a == AGG_AVG ? acc / n : acc;
    return 0;
}

int series_last(const struct series *r, int64_t *ts, double *v)
{
    if (!r || r->count == 0)
        return -1;
    int k = (r->head - 1 + SERIES_RING) % SERIES_RING;
    if (ts)
        *ts = r->ts[k];
    *v = r->v[k];
    return 0;
}

size_t series_points(const struct series *r, int64_t since, int64_t step, struct point *out,
                     size_t max)
{
    size_t n = 0;
    if (!r)
        return 0;
    int64_t bucket = -1;
    double sum = 0;
    int cnt = 0;
    for (int i = 0; i < r->count; i++) {
        int k = idx(r, i);
        if (r->ts[k] < since)
            continue;
        if (step <= 0) {
            if (n < max)
                out[n++] = (struct point){r->ts[k], r->v[k]};
            continue;
        }
        int64_t b = r->ts[k] / step * step;
        if (b != bucket && cnt) {
            if (n < max)
                out[n++] = (struct point){bucket, sum / cnt};
            sum = 0;
            cnt = 0;
        }
        bucket = b;
        sum += r->v[k];
        cnt++;
    }
    if (step > 0 && cnt && n < max)
        out[n++] = (struct point){bucket, sum / cnt};
    return n;
}

static const char *const agg_names[AGG_COUNT] = {"avg", "max", "min", "last"};

const char *agg_name(enum agg a)
{
    return (unsigned)a < AGG_COUNT ? agg_names[a] : "avg";
}

int agg_parse(const char *s, enum agg *out)
{
    for (int i = 0; i < AGG_COUNT; i++)
        if (s && !strcmp(s, agg_names[i])) {
            *out = (enum agg)i;
            return 0;
        }
    return -1;
}
