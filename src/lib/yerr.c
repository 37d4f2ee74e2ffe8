/*
 * yerr.c - filling API errors (messages always valid UTF-8).
 */
#include "lib/yerr.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The message goes out as JSON: it must be valid UTF-8, and a character cut
 * by the fixed-size buffer must not leave half of itself behind. */
static void set_message(struct yerr *e, const char *raw, int n)
{
    bool cut = n < 0 || (size_t)n >= sizeof(e->message);
    utf8_sanitize(e->message, sizeof(e->message), raw, strlen(raw), cut);
}

int yerr_set(struct yerr *e, int status, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->status = status;
    snprintf(e->code, sizeof(e->code), "%s", code);
    char raw[sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    set_message(e, raw, n);
    return -1;
}

int yerr_disk(struct yerr *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    /* format first: the arguments may be e->message itself (re-classing
     * an error that came from elsewhere) */
    char msg[sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    set_message(e, msg, n);
    bool full = strstr(e->message, "No space left on device") != NULL ||
                strstr(e->message, "Disk quota exceeded") != NULL;
    e->status = full ? 507 : 500;
    snprintf(e->code, sizeof(e->code), "%s", full ? "no_space" : "disk_error");
    return -1;
}
