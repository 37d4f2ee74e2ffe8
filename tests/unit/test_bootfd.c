/* test_bootfd.c - the shared sealed copies of boot files (compute/bootfd.c):
 * the first get makes an empty memfd to fill; once filled and sealed the
 * next get hands out that same copy (no fill); a file changed on disk, or a
 * fill that never sealed, gets a new copy; a missing file is an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute/bootfd.h"

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static ino_t ino_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_ino;
}

static void test_shared_copy(void **st)
{
    (void)st;
    char dir[] = "/tmp/yun-bootfd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/vmlinuz", dir);
    put(path, "kernel one");
    bool fill = false;
    int a = bootfd_get(path, &fill);
    assert_true(a >= 0 && fill);
    /* not filled yet: the next start does not take it */
    int b = bootfd_get(path, &fill);
    assert_true(b >= 0 && fill);
    assert_true(ino_of(a) != ino_of(b));
    assert_int_equal(bootfd_fill(b, path), 0);
    assert_int_equal(write(b, "x", 1), -1); /* sealed */
    int c = bootfd_get(path, &fill);
    assert_true(c >= 0 && !fill);
    assert_true(ino_of(c) == ino_of(b));
    char buf[32] = "";
    assert_int_equal(pread(c, buf, sizeof buf - 1, 0), 10);
    assert_string_equal(buf, "kernel one");
    /* changed on disk: a new copy */
    put(path, "kernel two, longer");
    int d = bootfd_get(path, &fill);
    assert_true(d >= 0 && fill);
    assert_true(ino_of(d) != ino_of(c));
    assert_int_equal(bootfd_fill(d, path), 0);
    int e = bootfd_get(path, &fill);
    assert_true(e >= 0 && !fill && ino_of(e) == ino_of(d));
    unlink(path);
    assert_int_equal(bootfd_get(path, &fill), -1);
    assert_int_equal(bootfd_fill(e, path), -1); /* sealed, and gone */
    for (int fd = 0; fd < 5; fd++)
        close((int[]){a, b, c, d, e}[fd]);
    bootfd_drop_all();
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_shared_copy)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
