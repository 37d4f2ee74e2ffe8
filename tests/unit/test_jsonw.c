/*
 * test_jsonw.c - the streaming JSON writer produces valid, correctly
 * escaped JSON (checked by parsing it back with jansson).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <string.h>

#include "lib/jsonw.h"

static void test_nesting_and_types(void **state)
{
    struct jw w;
    jw_init(&w);
    jw_obj_open(&w);
    jw_kv_str(&w, "a", "x");
    jw_kv_int(&w, "n", -42);
    jw_key(&w, "list");
    jw_arr_open(&w);
    jw_int(&w, 1);
    jw_obj_open(&w);
    jw_key(&w, "t");
    jw_bool(&w, true);
    jw_obj_close(&w);
    jw_str(&w, NULL);
    jw_arr_close(&w);
    jw_key(&w, "empty");
    jw_arr_open(&w);
    jw_arr_close(&w);
    jw_obj_close(&w);
    assert_string_equal(w.buf,
                        "{\"a\":\"x\",\"n\":-42,\"list\":[1,{\"t\":true},\"\"],\"empty\":[]}");
    jw_free(&w);
}

static void test_escaping(void **state)
{
    struct jw w;
    jw_init(&w);
    /* quote, backslash, control chars, valid UTF-8, and an invalid byte */
    jw_str(&w, "q\"b\\c\n\x01 \xe4\xba\x91 bad\xff end");
    json_error_t je;
    json_t *j = json_loads(w.buf, JSON_DECODE_ANY, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "q\"b\\c\n\x01 \xe4\xba\x91 bad\xef\xbf\xbd end");
    json_decref(j);
    jw_free(&w);
}

static void test_strict_utf8(void **state)
{
    struct jw w;
    jw_init(&w);
    /* a surrogate, an overlong NUL, a value past U+10FFFF, a cut character:
     * none is UTF-8 a client may accept, each byte is replaced */
    jw_str(&w, "s\xed\xa0\x80 o\xc0\x80 m\xf4\x90\x80\x80 c\xe4\xb8");
    json_error_t je;
    json_t *j = json_loads(w.buf, JSON_DECODE_ANY, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(j),
                        "s\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd o\xef\xbf\xbd\xef\xbf\xbd "
                        "m\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                        "c\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
    jw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting_and_types),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_strict_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
