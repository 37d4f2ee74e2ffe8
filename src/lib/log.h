/*
 * log.h - yund's own log: levelled lines on stderr (with sd-daemon "<N>"
 * priority prefixes when stderr is not a terminal, so journald files them at
 * the right level) and optionally appended to a file.
 */
#ifndef YUN_LOG_H
#define YUN_LOG_H

enum log_level { LOG_ERR = 3, LOG_WARN = 4, LOG_INFO = 6, LOG_DEBUG = 7 };

/* file: optional log file; max_size: rotate it (to file.1) once it grows past
 * this many bytes, 0 = never. */
void log_init(enum log_level max, const char *file, unsigned long long max_size);
/* Closes and reopens the log file (after an outside rotation, on SIGHUP). */
void log_reopen(void);
void log_close(void);
int log_level_parse(const char *s, enum log_level *out);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
