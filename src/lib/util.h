/*
 * util.h - small helpers shared by yund and yun: size and name parsing, time,
 * files and directories, ids. Nothing here knows about VMs.
 */
#ifndef YUN_UTIL_H
#define YUN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define YUN_NAME_MAX 63

/* "512M", "4G", "1024" (bytes), "2T", "64k"; binary units. Returns 0 or -1. */
int parse_size(const char *s, uint64_t *out);
/* Formats bytes as "512M", "1.5G". */
void format_size(uint64_t bytes, char *buf, size_t len);
/* Strict base-10 unsigned parse of the whole string into [min,max]. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* The same, signed: an optional sign, then digits; out-of-int64 text fails too. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Names of VMs and images: [A-Za-z0-9][A-Za-z0-9_.-]{0,62}. Sets why on failure. */
bool name_valid(const char *s, char *why, size_t whylen);

int64_t now_ms(void); /* CLOCK_REALTIME in ms */
int64_t monotonic_ms(void);
int64_t monotonic_us(void); /* CLOCK_MONOTONIC in us */

/* mkdir -p with mode for created components. */
int mkdir_p(const char *path, mode_t mode);
/* rm -rf; refuses paths shorter than 8 characters as a guard. */
int remove_tree(const char *path);
/* Reads a whole small regular file (<= max bytes) into a NUL-terminated
 * malloc'd buffer; anything else (a FIFO, a device) fails with EINVAL
 * without blocking. */
char *read_file(const char *path, size_t max, size_t *len_out);
/* Writes data to path via a temp file, fsync and rename. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
bool path_exists(const char *path);
uint64_t file_size_on_disk(const char *path); /* st_blocks*512, 0 on error */

/* Random UUID v4 in canonical 36-char form. */
void uuid_generate_str(char out[37]);

/* What /proc says of a pid. PID_UNKNOWN: /proc could not be read (no free
 * descriptor, no memory): that is "cannot tell", never "dead". */
enum pid_state { PID_GONE = 0, PID_LIVE, PID_UNKNOWN };
enum pid_state pid_state(pid_t pid); /* a zombie is gone */
/* Pure: does this /proc/PID/stat text say zombie (or dead)? */
bool proc_stat_zombie(const char *stat);
/* PID_LIVE only when pid runs and its command line contains needle (a pid
 * recycled by another program counts as gone). */
enum pid_state pid_state_of(pid_t pid, const char *needle);

/* Sends all of buf on a socket (MSG_NOSIGNAL), retrying on EINTR. 0 or -1. */
int send_all(int fd, const void *buf, size_t len);

/* If absolute path lies at or below absolute dir, compared by whole
 * components (repeated slashes ignored), the rest of path after dir ("" when
 * it is dir itself); otherwise NULL. Purely textual: no file is looked at. */
const char *path_beneath(const char *dir, const char *path);
/* Has path a "." or ".." component? */
bool path_has_dot_component(const char *path);

/* snprintf that reports truncation as -1. */
int snprintf_checked(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Length of the well-formed UTF-8 character (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF) that starts s (n bytes available), or 0
 * when s does not start one. */
size_t utf8_char_len(const char *s, size_t n);
/* Copies n bytes of src into dst (cap > 0 bytes, always NUL-terminated;
 * must not overlap src) as valid UTF-8, so JSON encoders accept it: each byte
 * that is not part of a well-formed character becomes the visible escape
 * "\xNN", and when the result does not fit it is cut on a character
 * boundary, never inside a character or an escape. With drop_cut_tail, an
 * incomplete character at the very end of src (what a fixed-size buffer
 * leaves when it cut one) is dropped instead of escaped. Returns the length
 * written. */
size_t utf8_sanitize(char *dst, size_t cap, const char *src, size_t n, bool drop_cut_tail);

#endif
