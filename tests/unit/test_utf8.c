/*
 * test_utf8.c - utf8_char_len and utf8_sanitize (lib/util.c): what is
 * well-formed UTF-8, cutting on character boundaries, escaping the rest; and
 * that yerr_set keeps API messages valid UTF-8 when its buffer cuts them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "lib/util.h"
#include "lib/yerr.h"

#define ZHONG "\xe4\xb8\xad" /* U+4E2D, three bytes */

static size_t len_of(const char *s)
{
    return utf8_char_len(s, strlen(s));
}

static void test_char_len(void **state)
{
    assert_int_equal(len_of("a"), 1);
    assert_int_equal(len_of("\xc3\xa9"), 2);         /* U+00E9 */
    assert_int_equal(len_of(ZHONG), 3);              /* U+4E2D */
    assert_int_equal(len_of("\xf0\x9f\x98\x80"), 4); /* U+1F600 */
    assert_int_equal(len_of("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF, the last */
    /* overlong forms */
    assert_int_equal(len_of("\xc0\x80"), 0);
    assert_int_equal(len_of("\xc1\xbf"), 0);
    assert_int_equal(len_of("\xe0\x80\x80"), 0);
    assert_int_equal(len_of("\xf0\x80\x80\x80"), 0);
    /* surrogates, past U+10FFFF, bytes that never start a character */
    assert_int_equal(len_of("\xed\xa0\x80"), 0);
    assert_int_equal(len_of("\xf4\x90\x80\x80"), 0);
    assert_int_equal(len_of("\xf5\x80\x80\x80"), 0);
    assert_int_equal(len_of("\xff"), 0);
    assert_int_equal(len_of("\x80"), 0);
    /* cut short, by the string or by n */
    assert_int_equal(len_of("\xe4\xb8"), 0);
    assert_int_equal(utf8_char_len(ZHONG, 2), 0);
    assert_int_equal(utf8_char_len("", 0), 0);
}

static void test_sanitize_escapes_invalid_bytes(void **state)
{
    char out[64];
    const char *in = "vm '\xff' and " ZHONG " and \xed\xa0\x80!";
    size_t n = utf8_sanitize(out, sizeof(out), in, strlen(in), false);
    assert_string_equal(out, "vm '\\xff' and " ZHONG " and \\xed\\xa0\\x80!");
    assert_int_equal(n, strlen(out));
    /* an embedded NUL is escaped too, not a silent end */
    utf8_sanitize(out, sizeof(out), "a\0b", 3, false);
    assert_string_equal(out, "a\\x00b");
}

static void test_sanitize_cut_tail(void **state)
{
    char out[64];
    const char *in = "reason " ZHONG "\xe4\xb8"; /* a buffer cut the second character */
    utf8_sanitize(out, sizeof(out), in, strlen(in), true);
    assert_string_equal(out, "reason " ZHONG);
    utf8_sanitize(out, sizeof(out), in, strlen(in), false);
    assert_string_equal(out, "reason " ZHONG "\\xe4\\xb8");
    /* only a real start of a character is dropped; a bad byte stays visible */
    utf8_sanitize(out, sizeof(out), "x\xff", 2, true);
    assert_string_equal(out, "x\\xff");
    utf8_sanitize(out, sizeof(out), "x\xe0\x80", 3, true); /* overlong start */
    assert_string_equal(out, "x\\xe0\\x80");
}

static void test_sanitize_fits_on_boundaries(void **state)
{
    char out[8];
    /* 3 + 3 + 1 > 6 bytes of room: the second character is left out whole */
    assert_int_equal(utf8_sanitize(out, 7, ZHONG ZHONG "z", 7, false), 6);
    assert_string_equal(out, ZHONG ZHONG);
    assert_int_equal(utf8_sanitize(out, 6, ZHONG ZHONG, 6, false), 3);
    assert_string_equal(out, ZHONG);
    /* an escape is never split either */
    assert_int_equal(utf8_sanitize(out, 6, "ab\xff", 3, false), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(utf8_sanitize(out, 1, "abc", 3, false), 0);
    assert_string_equal(out, "");
}

static void test_yerr_message_cut_stays_valid(void **state)
{
    char name[700] = "";
    for (int pad = 0; pad < 3; pad++) {
        memset(name, 'a', (size_t)pad);
        name[pad] = 0;
        for (int i = 0; i < 200; i++)
            strcat(name, ZHONG);
        struct yerr e;
        assert_int_equal(yerr_set(&e, YE_NOT_FOUND, "vm '%s' does not exist", name), -1);
        json_t *j = json_string(e.message);
        assert_non_null(j); /* jansson refuses invalid UTF-8 */
        json_decref(j);
        assert_true(strlen(e.message) >= sizeof(e.message) - 4);
    }
    struct yerr e;
    yerr_set(&e, YE_NOT_FOUND, "vm '%s' does not exist", "\xff");
    assert_string_equal(e.message, "vm '\\xff' does not exist");
    yerr_disk(&e, "write: %s", "\xe4\xb8");
    assert_string_equal(e.message, "write: \\xe4\\xb8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_char_len),
        cmocka_unit_test(test_sanitize_escapes_invalid_bytes),
        cmocka_unit_test(test_sanitize_cut_tail),
        cmocka_unit_test(test_sanitize_fits_on_boundaries),
        cmocka_unit_test(test_yerr_message_cut_stays_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
