/*
 * jsonw.h - a small streaming JSON writer into a growable buffer. Used where
 * yund emits many objects (GET /v1/vms with thousands of VMs): writing text
 * directly is several times cheaper than building a jansson tree and dumping
 * it. Strings are escaped and invalid UTF-8 is replaced, so output is always
 * valid JSON.
 */
#ifndef YUN_JSONW_H
#define YUN_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JW_MAX_DEPTH 16

struct jw {
    char *buf;
    size_t len, cap;
    int depth;
    bool first[JW_MAX_DEPTH]; /* no element written yet at this depth */
    bool after_key;
    bool oom;
};

void jw_init(struct jw *w);
void jw_free(struct jw *w);
void jw_obj_open(struct jw *w);
void jw_obj_close(struct jw *w);
void jw_arr_open(struct jw *w);
void jw_arr_close(struct jw *w);
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s);
void jw_int(struct jw *w, int64_t v);
void jw_bool(struct jw *w, bool v);
/* A double with 6 significant digits; NaN and infinities become null. */
void jw_num(struct jw *w, double v);
void jw_kv_str(struct jw *w, const char *k, const char *s);
void jw_kv_int(struct jw *w, const char *k, int64_t v);

#endif
