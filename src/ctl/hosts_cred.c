/*
 * hosts_cred.c - a host's credential, derived by every controller that
 * holds the join token: hex(HMAC-SHA256(token, host id)); the database
 * keeps hex(SHA-256(credential)). Comparisons in constant time.
 */
#include "ctl/hosts_int.h"

#include <string.h>

bool hosts_ct_equal(const char *a, const char *b, size_t n)
{
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* TODO(wire): over lib/sha256.h once it is merged. */
int hosts_credential(const char *token, size_t token_len, const char *id, char out[65])
{
    out[0] = 0;
    return -1;
}

int hosts_cred_hash(const char *credential, char out[65])
{
    out[0] = 0;
    return -1;
}
