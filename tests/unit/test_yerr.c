/* test_yerr.c - the error table: every code has a name and a status, names
 * parse back, the database helper and context wrapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/yerr.h"

static void test_table(void **s)
{
    (void)s;
    for (int c = 1; c < YE__COUNT; c++) {
        const char *n = yerr_code_name((enum yerr_code)c);
        int st = yerr_code_status((enum yerr_code)c);
        assert_true(st >= 400 && st <= 599);
        enum yerr_code back;
        assert_int_equal(yerr_code_parse(n, &back), 0);
        assert_int_equal(back, c);
        for (int d = 1; d < c; d++) /* names are unique */
            assert_string_not_equal(n, yerr_code_name((enum yerr_code)d));
    }
    enum yerr_code x;
    assert_int_equal(yerr_code_parse("no_such_code", &x), -1);
    assert_int_equal(yerr_code_status(YE_NOT_FOUND), 404);
    assert_int_equal(yerr_code_status(YE_CONFLICT), 409);
    assert_int_equal(yerr_code_status(YE_NO_SPACE), 507);
    assert_int_equal(yerr_code_status(YE_NONE), 500);
    assert_int_equal(yerr_code_status((enum yerr_code)9999), 500);
}

static void test_set_db_wrap(void **s)
{
    (void)s;
    struct yerr e = {0};
    assert_int_equal(yerr_wrap(&e, "ctx: "), -1); /* unset: stays unset */
    assert_int_equal(e.code, YE_NONE);
    assert_int_equal(yerr_set(&e, YE_CONFLICT, "vm '%s' busy", "a"), -1);
    assert_string_equal(yerr_name(&e), "conflict");
    assert_int_equal(yerr_status(&e), 409);
    yerr_wrap(&e, "snapshot %s: ", "s1");
    assert_string_equal(e.message, "snapshot s1: vm 'a' busy");
    assert_int_equal(e.code, YE_CONFLICT);
    yerr_db(&e, "disk I/O error");
    assert_int_equal(yerr_status(&e), 500);
    assert_string_equal(yerr_name(&e), "database_error");
    assert_string_equal(e.message, "database: disk I/O error");
    yerr_disk(&e, "write: %s", "No space left on device");
    assert_int_equal(e.code, YE_NO_SPACE);
    yerr_disk(&e, "write: %s", "Input/output error");
    assert_int_equal(e.code, YE_DISK_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table),
                                       cmocka_unit_test(test_set_db_wrap)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
