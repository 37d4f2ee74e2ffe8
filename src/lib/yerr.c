/*
 * yerr.c - the error code table and filling API errors (messages always
 * valid UTF-8).
 */
#include "lib/yerr.h"
#include "lib/util.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int status;
    const char *name;
} codes[YE__COUNT] = {[YE_NONE] = {500, "internal"},
#define YERR_ROW(c, s, n) [c] = {s, n},
                      YERR_CODES(YERR_ROW)
#undef YERR_ROW
};

int yerr_code_status(enum yerr_code c)
{
    return (unsigned)c < YE__COUNT ? codes[c].status : 500;
}

const char *yerr_code_name(enum yerr_code c)
{
    return (unsigned)c < YE__COUNT ? codes[c].name : "internal";
}

int yerr_code_parse(const char *name, enum yerr_code *out)
{
    for (int c = 1; c < YE__COUNT; c++)
        if (name && !strcmp(codes[c].name, name)) {
            *out = (enum yerr_code)c;
            return 0;
        }
    return -1;
}

/* The message goes out as JSON: it must be valid UTF-8, and a character cut
 * by the fixed-size buffer must not leave half of itself behind. */
static void set_message(struct yerr *e, const char *raw, int n)
{
    bool cut = n < 0 || (size_t)n >= sizeof(e->message);
    utf8_sanitize(e->message, sizeof(e->message), raw, strlen(raw), cut);
}

int yerr_set(struct yerr *e, enum yerr_code code, const char *fmt, ...)
{
    if (!e)
        return -1;
    char raw[sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    e->code = code;
    set_message(e, raw, n);
    return -1;
}

int yerr_db(struct yerr *e, const char *what)
{
    return yerr_set(e, YE_DATABASE, "database: %s", what ? what : "error");
}

int yerr_wrap(struct yerr *e, const char *fmt, ...)
{
    if (!e || e->code == YE_NONE)
        return -1;
    char prefix[sizeof(e->message)], raw[sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    int n = snprintf(raw, sizeof(raw), "%s%s", prefix, e->message);
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
    e->code = full ? YE_NO_SPACE : YE_DISK_ERROR;
    return -1;
}
