/*
 * series.h - recent metric samples in memory: one ring per (object, metric),
 * e.g. ("vm/web1", "cpu"), holding the last SERIES_RING samples (an hour at
 * the default 10 s interval). Alert rules aggregate over windows of these
 * rings; the API serves them; older data lives in the store's rollups.
 * Pure data structure, no I/O.
 */
#ifndef YUN_SERIES_H
#define YUN_SERIES_H

#include <stddef.h>
#include <stdint.h>

#define SERIES_RING    360
#define SERIES_BUCKETS 1024

enum agg { AGG_AVG = 0, AGG_MAX, AGG_MIN, AGG_LAST, AGG_COUNT };

struct series {
    struct series *next;
    char object[72];
    char metric[32];
    int64_t ts[SERIES_RING]; /* ms since epoch */
    double v[SERIES_RING];
    int head;  /* index of the next write */
    int count; /* valid samples */
};

struct series_store {
    struct series *buckets[SERIES_BUCKETS];
    size_t nseries;
};

struct point {
    int64_t ts;
    double v;
};

void series_init(struct series_store *s);
void series_free(struct series_store *s);
void series_add(struct series_store *s, const char *object, const char *metric, int64_t ts,
                double v);
struct series *series_get(struct series_store *s, const char *object, const char *metric);
/* Drops every series of an object (a deleted VM). */
void series_drop_object(struct series_store *s, const char *object);

/* Aggregate of the samples with ts in [since, until]. 0, or -1 if none. */
int series_aggregate(const struct series *r, int64_t since, int64_t until, enum agg a, double *out);
/* Newest sample; 0, or -1 if empty. */
int series_last(const struct series *r, int64_t *ts, double *v);
/* Samples since `since`, averaged into buckets of step ms (0 = raw), oldest
 * first; returns how many points were written (at most max). */
size_t series_points(const struct series *r, int64_t since, int64_t step, struct point *out,
                     size_t max);

const char *agg_name(enum agg a);
int agg_parse(const char *s, enum agg *out);

#endif
