/* test_sha256.c - SHA-256 against FIPS 180-2's examples, HMAC-SHA256 against
 * RFC 4231's test cases, hex round trips and the constant-time compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sha256.h"

static void hex_of(const void *d, size_t n, char *out)
{
    hex_encode(d, n, out);
}

static void test_fips(void **s)
{
    (void)s;
    uint8_t d[SHA256_LEN];
    char h[SHA256_HEX];
    sha256("abc", 3, d);
    hex_of(d, sizeof d, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256(two, strlen(two), d);
    hex_of(d, sizeof d, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* one million 'a', fed in uneven pieces */
    struct sha256 c;
    sha256_init(&c);
    char a[1000];
    memset(a, 'a', sizeof a);
    size_t left = 1000000;
    for (size_t step = 1; left; step = step % 991 + 7) {
        size_t n = step < left ? step : left;
        sha256_update(&c, a, n);
        left -= n;
    }
    sha256_final(&c, d);
    hex_of(d, sizeof d, h);
    assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    sha256_hex("", h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_rfc4231(void **s)
{
    (void)s;
    uint8_t d[SHA256_LEN], key[131];
    char h[SHA256_HEX];
    /* case 1 */
    memset(key, 0x0b, 20);
    hmac_sha256(key, 20, "Hi There", 8, d);
    hex_of(d, sizeof d, h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* case 2 */
    hmac_sha256_hex("Jefe", "what do ya want for nothing?", h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* case 3 */
    uint8_t msg[50];
    memset(key, 0xaa, 20);
    memset(msg, 0xdd, 50);
    hmac_sha256(key, 20, msg, 50, d);
    hex_of(d, sizeof d, h);
    assert_string_equal(h, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    /* case 6: a key longer than the block */
    memset(key, 0xaa, 131);
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_sha256(key, 131, m6, strlen(m6), d);
    hex_of(d, sizeof d, h);
    assert_string_equal(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    /* case 7 */
    const char *m7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the "
                     "HMAC algorithm.";
    hmac_sha256(key, 131, m7, strlen(m7), d);
    hex_of(d, sizeof d, h);
    assert_string_equal(h, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

static void test_hex_ct(void **s)
{
    (void)s;
    uint8_t b[4] = {0, 0x7f, 0xa5, 0xff}, back[4];
    char h[9];
    hex_encode(b, 4, h);
    assert_string_equal(h, "007fa5ff");
    assert_int_equal(hex_decode(h, back, 4), 0);
    assert_memory_equal(b, back, 4);
    assert_int_equal(hex_decode("007FA5FF", back, 4), 0);
    assert_int_equal(hex_decode("007fa5f", back, 4), -1);
    assert_int_equal(hex_decode("007fa5fg", back, 4), -1);
    assert_int_equal(hex_decode(NULL, back, 4), -1);
    assert_true(ct_streq("secret", "secret"));
    assert_false(ct_streq("secret", "secreT"));
    assert_false(ct_streq("secret", "secret2"));
    assert_false(ct_streq("", "x"));
    assert_true(ct_streq("", ""));
    assert_false(ct_streq(NULL, "x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips),
        cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_hex_ct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
