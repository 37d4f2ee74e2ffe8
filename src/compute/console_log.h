/*
 * console_log.h - keeping a VM's console.log bounded while QEMU appends to
 * it, and reading it by positions that stay valid across cuts.
 *
 * QEMU holds console.log open with O_APPEND and writes whatever the guest
 * prints, even while yund is down. Past a cap, yund keeps the newest half in
 * place, moves the part before it to console.log.1 (replacing the previous
 * one), and adds the bytes it removed to console.log.base. An offset is a
 * position in everything the guest ever printed: console.log starts at the
 * base, console.log.1 ends there.
 */
#ifndef YUN_CONSOLE_LOG_H
#define YUN_CONSOLE_LOG_H

#include <stddef.h>
#include <stdint.h>

#define CONSOLE_LOG_OLD  ".1"    /* suffix: the part cut off last time */
#define CONSOLE_LOG_BASE ".base" /* suffix: offset of console.log's first byte */

/* When the log at path is larger than max bytes, cuts it back to its newest
 * max/2 bytes, and console.log.1 becomes (at most max/2 of) the part before.
 * Returns 1 when it cut, 0 when there was nothing to do (max 0, no file, or
 * within max), -1 with err. */
int console_log_cap(const char *path, uint64_t max, char *err, size_t errlen);

struct console_chunk {
    char *data; /* malloc'd, NULL when len is 0 */
    size_t len;
    uint64_t offset; /* where data starts (after clamping) */
    uint64_t next;   /* where to read on: offset + len */
    uint64_t start;  /* the oldest offset still kept */
    uint64_t end;    /* everything printed so far */
};

/* Up to limit bytes from offset. An offset before the oldest kept byte is
 * moved up to it; one past the end, down to the end. 0, or -1 (out of
 * memory or a read error, with errno). */
int console_log_read(const char *path, uint64_t offset, uint64_t limit, struct console_chunk *out);

#endif
