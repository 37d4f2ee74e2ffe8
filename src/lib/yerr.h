/*
 * yerr.h - an error as the API reports it: HTTP status, a stable machine code
 * ("not_found", "conflict", "invalid_argument", ...) and a one-line message a
 * person can act on. Engine calls fill one instead of logging and guessing.
 */
#ifndef YUN_YERR_H
#define YUN_YERR_H

struct yerr {
    int status;
    char code[32];
    char message[512];
};

/* Fills e and returns -1, so callers can `return yerr_set(...)`. */
int yerr_set(struct yerr *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A failed disk operation: 507 "no_space" when the message says the file
 * system is full (so a client can tell "free some space" from a bug), else
 * 500 "disk_error". Returns -1. */
int yerr_disk(struct yerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
