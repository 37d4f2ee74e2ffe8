/*
 * base64.h - standard base64 (RFC 4648, with padding): the encoding guest
 * agent exchanges and agent verb results use for raw bytes in JSON.
 */
#ifndef YUN_BASE64_H
#define YUN_BASE64_H

#include <stddef.h>

/* n bytes of in as a malloc'd, NUL-terminated base64 string; NULL when out
 * of memory. */
char *base64_encode(const void *in, size_t n);
/* Decodes in (whitespace and other stray characters skipped, stops at '=');
 * returns malloc'd bytes (NUL-terminated past *out_len), NULL when out of
 * memory. */
unsigned char *base64_decode(const char *in, size_t *out_len);

#endif
