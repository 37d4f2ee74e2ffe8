/*
 * base64.c - standard base64 encoding and decoding (see base64.h).
 */
#include "lib/base64.h"

#include <stdlib.h>
#include <string.h>

static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t n)
{
    const unsigned char *in = data;
    char *o = malloc((n + 2) / 3 * 4 + 1), *p = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *p++ = tbl[(v >> 18) & 63];
        *p++ = tbl[(v >> 12) & 63];
        *p++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *p++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *p = 0;
    return o;
}

unsigned char *base64_decode(const char *in, size_t *out_len)
{
    size_t len = strlen(in);
    unsigned char *out = malloc(len / 4 * 3 + 4);
    if (!out)
        return NULL;
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '=')
            break;
        const char *p = strchr(tbl, in[i]);
        if (!p || !in[i])
            continue; /* skip whitespace and anything else */
        v = (v << 6) | (unsigned)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)((v >> bits) & 0xff);
        }
    }
    out[n] = 0;
    *out_len = n;
    return out;
}
