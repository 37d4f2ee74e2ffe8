/*
 * log.c - levelled logging for yund. Lines go to stderr; when stderr is not a
 * tty they carry the "<N>" priority prefix journald understands, instead of a
 * timestamp journald would add anyway.
 */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level max_level = LOG_INFO;
static FILE *log_file;
static char log_path[512];
static unsigned long long log_max;
static int stderr_is_tty;

static void open_file(void)
{
    log_file = fopen(log_path, "a");
    if (log_file)
        setvbuf(log_file, NULL, _IOLBF, 0);
}

void log_init(enum log_level max, const char *file, unsigned long long max_size)
{
    max_level = max;
    stderr_is_tty = isatty(2);
    log_max = max_size;
    if (file && *file) {
        snprintf(log_path, sizeof(log_path), "%s", file);
        open_file();
    }
}

void log_reopen(void)
{
    if (!log_path[0])
        return;
    if (log_file)
        fclose(log_file);
    open_file();
}

/* Keeps one old generation: yund.log -> yund.log.1. */
static void maybe_rotate(void)
{
    if (!log_file || !log_max || (unsigned long long)ftell(log_file) < log_max)
        return;
    char old[600];
    snprintf(old, sizeof(old), "%s.1", log_path);
    fclose(log_file);
    rename(log_path, old);
    open_file();
}

void log_close(void)
{
    if (log_file)
        fclose(log_file);
    log_file = NULL;
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level lvl;
    } names[] = {{"error", LOG_ERR}, {"warn", LOG_WARN}, {"info", LOG_INFO}, {"debug", LOG_DEBUG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].lvl;
            return 0;
        }
    return -1;
}

static const char *level_name(enum log_level l)
{
    switch (l) {
    case LOG_ERR:
        return "error";
    case LOG_WARN:
        return "warn";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if (lvl > max_level)
        return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (stderr_is_tty) {
        char ts[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
        fprintf(stderr, "%s %-5s %s\n", ts, level_name(lvl), line);
    } else {
        fprintf(stderr, "<%d>%s\n", (int)lvl, line);
    }
    if (log_file) {
        char ts[40];
        struct timespec tsp;
        clock_gettime(CLOCK_REALTIME, &tsp);
        struct tm tm;
        gmtime_r(&tsp.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(log_file, "%s %s %s\n", ts, level_name(lvl), line);
        maybe_rotate();
    }
}
