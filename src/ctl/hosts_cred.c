/*
 * hosts_cred.c - a host's credential, derived by every controller that
 * holds the join token: hex(HMAC-SHA256(token, host id)); the database
 * keeps hex(SHA-256(credential)). Comparisons in constant time
 * (lib/sha256.h).
 */
#include "ctl/hosts_int.h"
#include "lib/sha256.h"

#include <string.h>

bool hosts_ct_equal(const char *a, const char *b, size_t n)
{
    return ct_equal(a, n, b, n);
}

int hosts_credential(const char *token, size_t token_len, const char *id, char out[65])
{
    uint8_t mac[SHA256_LEN];
    hmac_sha256(token, token_len, id, strlen(id), mac);
    hex_encode(mac, sizeof mac, out);
    memset(mac, 0, sizeof mac);
    return 0;
}

int hosts_cred_hash(const char *credential, char out[65])
{
    sha256_hex(credential, out);
    return 0;
}
