/*
 * fuzz.h - what every libFuzzer target in fuzz/ shares: the entry point's
 * prototype and small helpers to turn the fuzzer's bytes into the kinds of
 * input yun's parsers take (a C string, a stdio stream). Header-only, so
 * the Makefile's one pattern rule builds every fuzz/fuzz_*.c.
 */
#ifndef YUN_FUZZ_H
#define YUN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes as a malloc'd NUL-terminated string (an embedded NUL ends it
 * early, as it would for text read from a file into a C string). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* The bytes as a read-only stdio stream (fmemopen refuses size 0). */
static inline FILE *fuzz_stream(const uint8_t *data, size_t size)
{
    static const char empty[1];
    FILE *f = size ? fmemopen((void *)data, size, "r") : fmemopen((void *)empty, 1, "r");
    if (!f)
        abort();
    if (!size)
        fgetc(f); /* at EOF */
    return f;
}

/* Writes all of buf to fd (a file, pipe or socket). 0 or -1. */
static inline int fuzz_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A property the target checks failed: a crash libFuzzer reports. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: FUZZ_ASSERT(%s) failed\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
