/*
 * test_console_log.c - unit tests for console_log.c: the cap keeps the tail,
 * the cut-off part goes to console.log.1, a writer holding the file open
 * with O_APPEND (as QEMU does) goes on at the new end, and reads by offset
 * return exactly the bytes the writer wrote there, across cuts. Run on the
 * file system of /tmp (COLLAPSE_RANGE on ext4/xfs) and on /dev/shm (tmpfs:
 * the copy-and-truncate fallback).
 */
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

#include "compute/console_log.h"
#include "lib/util.h"

struct fixture {
    char dir[64], path[96];
    int wfd;           /* the "QEMU" writer, O_APPEND */
    char *all;         /* everything written, to compare with */
    size_t len, lines; /* bytes and lines written */
};

static int setup_in(void **state, const char *parent)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/yun-unit-conlog-%d", parent, (int)getpid());
    remove_tree(f->dir);
    if (mkdir(f->dir, 0700) < 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/console.log", f->dir);
    f->wfd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    *state = f;
    return f->wfd < 0 ? -1 : 0;
}

static int setup_disk(void **state)
{
    return setup_in(state, "/tmp");
}

static int setup_tmpfs(void **state)
{
    return setup_in(state, "/dev/shm");
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    close(f->wfd);
    remove_tree(f->dir);
    free(f->all);
    free(f);
    return 0;
}

/* The guest prints n numbered lines. */
static void print_lines(struct fixture *f, int n)
{
    for (int i = 0; i < n; i++) {
        char line[64];
        int k = snprintf(line, sizeof(line), "yun-spam %zu\n", ++f->lines);
        assert_int_equal(write(f->wfd, line, (size_t)k), k);
        f->all = realloc(f->all, f->len + (size_t)k);
        memcpy(f->all + f->len, line, (size_t)k);
        f->len += (size_t)k;
    }
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Reading on from `offset` like `yun vm logs -f` gives exactly the bytes
 * written there, up to the end. Returns where it started. */
static uint64_t check_read_from(struct fixture *f, uint64_t offset, size_t limit)
{
    struct console_chunk ch;
    uint64_t first = UINT64_MAX, pos = offset;
    for (;;) {
        assert_int_equal(console_log_read(f->path, pos, limit, &ch), 0);
        if (first == UINT64_MAX)
            first = ch.offset;
        else
            assert_true(ch.offset == pos); /* no jump once reading */
        assert_true(ch.end == f->len);
        if (!ch.len)
            break;
        assert_true(ch.offset + ch.len <= f->len);
        assert_memory_equal(ch.data, f->all + ch.offset, ch.len);
        assert_true(ch.next == ch.offset + ch.len);
        pos = ch.next;
        free(ch.data);
    }
    assert_true(pos == f->len);
    return first;
}

static void test_cap_keeps_tail(void **state)
{
    struct fixture *f = *state;
    char err[256];
    const uint64_t max = 32 << 10;
    assert_int_equal(console_log_cap(f->path, 0, err, sizeof(err)), 0); /* 0: never */
    print_lines(f, 100);
    assert_int_equal(console_log_cap(f->path, max, err, sizeof(err)), 0); /* within the cap */
    char old[128];
    snprintf(old, sizeof(old), "%s" CONSOLE_LOG_OLD, f->path);
    assert_false(path_exists(old));
    check_read_from(f, 0, 1 << 20);

    print_lines(f, 10000);              /* ~150K */
    uint64_t follower = f->len - 20000; /* a `vm logs -f` reader somewhat behind */
    assert_int_equal(console_log_cap(f->path, max, err, sizeof(err)), 1);
    uint64_t kept = file_size(f->path);
    assert_true(kept >= max / 2 && kept <= max / 2 + 4096);
    assert_true(file_size(old) <= max / 2 && file_size(old) > 0);
    /* the file holds the newest bytes */
    char *tail = read_file(f->path, 1 << 20, NULL);
    assert_non_null(tail);
    assert_memory_equal(tail, f->all + f->len - kept, kept);
    free(tail);
    /* from 0: the oldest kept byte (the start of console.log.1), then on */
    uint64_t start = check_read_from(f, 0, 1 << 20);
    assert_true(start == f->len - kept - file_size(old));
    /* the follower goes on where it was, without a gap or a repeat */
    assert_true(check_read_from(f, follower, 1000) == follower);
    /* past the end: clamped to the end */
    struct console_chunk ch;
    assert_int_equal(console_log_read(f->path, f->len + 12345, 100, &ch), 0);
    assert_true(ch.len == 0 && ch.offset == f->len && ch.next == f->len && ch.data == NULL);

    /* the writer goes on at the new end; later cuts add up */
    for (int round = 0; round < 5; round++) {
        print_lines(f, 3000);
        uint64_t before = f->len - 100;
        assert_int_equal(console_log_cap(f->path, max, err, sizeof(err)), 1);
        assert_true(file_size(f->path) <= max / 2 + 4096);
        assert_true(check_read_from(f, before, 7) == before);
        assert_true(check_read_from(f, 0, 1 << 20) == f->len - file_size(f->path) - file_size(old));
    }
    print_lines(f, 1);
    check_read_from(f, 0, 1 << 20);
}

static void test_no_file(void **state)
{
    struct fixture *f = *state;
    char err[256];
    unlink(f->path);
    assert_int_equal(console_log_cap(f->path, 64 << 10, err, sizeof(err)), 0);
    struct console_chunk ch;
    assert_int_equal(console_log_read(f->path, 10, 100, &ch), 0);
    assert_true(ch.len == 0 && ch.end == 0 && ch.next == 0);
    /* a symlink is never followed */
    char target[128];
    snprintf(target, sizeof(target), "%s/elsewhere", f->dir);
    assert_int_equal(write_file_atomic(target, "secret", 6, 0600), 0);
    assert_int_equal(symlink(target, f->path), 0);
    assert_int_equal(console_log_cap(f->path, 16 << 10, err, sizeof(err)), -1);
    assert_int_equal(console_log_read(f->path, 0, 100, &ch), 0);
    assert_true(ch.len == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cap_keeps_tail, setup_disk, teardown),
        cmocka_unit_test_setup_teardown(test_cap_keeps_tail, setup_tmpfs, teardown),
        cmocka_unit_test_setup_teardown(test_no_file, setup_disk, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
