/*
 * yerr.c - filling API errors.
 */
#include "lib/yerr.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int yerr_set(struct yerr *e, int status, const char *code, const char *fmt, ...)
{
    if (!e)
        return -1;
    e->status = status;
    snprintf(e->code, sizeof(e->code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
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
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(e->message, msg, sizeof(msg));
    bool full = strstr(e->message, "No space left on device") != NULL ||
                strstr(e->message, "Disk quota exceeded") != NULL;
    e->status = full ? 507 : 500;
    snprintf(e->code, sizeof(e->code), "%s", full ? "no_space" : "disk_error");
    return -1;
}
