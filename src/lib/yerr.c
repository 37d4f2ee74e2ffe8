/*
 * yerr.c - filling API errors.
 */
#include "lib/yerr.h"

#include <stdarg.h>
#include <stdio.h>

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
