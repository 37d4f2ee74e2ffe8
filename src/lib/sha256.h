/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), hex helpers
 * and a constant-time comparison, for the cluster's credentials
 * (docs/cluster.md: a host's credential is hex(HMAC-SHA256(join token,
 * host id)); the store keeps its SHA-256).
 */
#ifndef YUN_SHA256_H
#define YUN_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_HEX (2 * SHA256_LEN + 1) /* with the NUL */

struct sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t nbuf;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[SHA256_LEN]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
void hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                 uint8_t out[SHA256_LEN]);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* 0 and out filled when hex is exactly 2n hex digits; -1 otherwise. */
int hex_decode(const char *hex, uint8_t *out, size_t n);
/* Shorthands: the hex of SHA-256(s) / HMAC-SHA256(key, msg) of strings. */
void sha256_hex(const char *s, char out[SHA256_HEX]);
void hmac_sha256_hex(const char *key, const char *msg, char out[SHA256_HEX]);

/* Equal, in time that depends only on the lengths (not on where they
 * differ). */
bool ct_equal(const void *a, size_t alen, const void *b, size_t blen);
/* The same for two strings (either may be NULL: never equal). */
bool ct_streq(const char *a, const char *b);

#endif
