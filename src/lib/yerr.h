/*
 * yerr.h - an error as the API reports it: a code from one enum (which
 * fixes the stable machine name, "not_found", and the HTTP status, in one
 * table below) and a one-line message a person can act on. Engine calls fill
 * one instead of logging and guessing; a caller passing it up may add
 * context in front of the message with yerr_wrap().
 */
#ifndef YUN_YERR_H
#define YUN_YERR_H

/* code, HTTP status, machine name. The only place a status is chosen. */
#define YERR_CODES(X)                                                                              \
    X(YE_INVALID_ARGUMENT, 400, "invalid_argument")                                                \
    X(YE_INVALID_IMAGE, 400, "invalid_image")                                                      \
    X(YE_INVALID_JSON, 400, "invalid_json")                                                        \
    X(YE_BAD_REQUEST, 400, "bad_request")                                                          \
    X(YE_UNAUTHORIZED, 401, "unauthorized")                                                        \
    X(YE_NOT_FOUND, 404, "not_found")                                                              \
    X(YE_METHOD_NOT_ALLOWED, 405, "method_not_allowed")                                            \
    X(YE_CONFLICT, 409, "conflict")                                                                \
    X(YE_INSUFFICIENT_CAPACITY, 409, "insufficient_capacity")                                      \
    X(YE_NO_GUEST_AGENT, 409, "no_guest_agent")                                                    \
    X(YE_CANCELLED, 409, "cancelled")                                                              \
    X(YE_TOO_LARGE, 413, "too_large")                                                              \
    X(YE_HEADERS_TOO_LARGE, 431, "headers_too_large")                                              \
    X(YE_INTERNAL, 500, "internal")                                                                \
    X(YE_DATABASE, 500, "database_error")                                                          \
    X(YE_BUILD_FAILED, 500, "build_failed")                                                        \
    X(YE_CGROUP_ERROR, 500, "cgroup_error")                                                        \
    X(YE_CONFINE_ERROR, 500, "confine_error")                                                      \
    X(YE_QEMU_ERROR, 500, "qemu_error")                                                            \
    X(YE_SEED_ERROR, 500, "seed_error")                                                            \
    X(YE_DISK_ERROR, 500, "disk_error")                                                            \
    X(YE_NOT_IMPLEMENTED, 501, "not_implemented")                                                  \
    X(YE_GUEST_AGENT, 502, "guest_agent")                                                          \
    X(YE_AGENT_UNREACHABLE, 502, "agent_unreachable")                                              \
    X(YE_BAD_GATEWAY, 502, "bad_gateway")                                                          \
    X(YE_UNAVAILABLE, 503, "unavailable")                                                          \
    X(YE_NO_UID, 503, "no_uid")                                                                    \
    X(YE_TIMEOUT, 504, "timeout")                                                                  \
    X(YE_HTTP_VERSION, 505, "http_version")                                                        \
    X(YE_NO_SPACE, 507, "no_space")

enum yerr_code {
    YE_NONE = 0, /* no error (a zeroed struct yerr) */
#define YERR_ENUM(c, s, n) c,
    YERR_CODES(YERR_ENUM)
#undef YERR_ENUM
        YE__COUNT
};

struct yerr {
    enum yerr_code code;
    char message[512];
};

/* The HTTP status of a code (500 for YE_NONE or out of range). */
int yerr_code_status(enum yerr_code c);
/* "not_found"; "internal" for YE_NONE or out of range. */
const char *yerr_code_name(enum yerr_code c);
/* The code named name; -1 when no code has that name. */
int yerr_code_parse(const char *name, enum yerr_code *out);
static inline int yerr_status(const struct yerr *e)
{
    return yerr_code_status(e->code);
}
static inline const char *yerr_name(const struct yerr *e)
{
    return yerr_code_name(e->code);
}

/* Fills e and returns -1, so callers can `return yerr_set(...)`. */
int yerr_set(struct yerr *e, enum yerr_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A failed database call: YE_DATABASE, "database: <what>". Returns -1. */
int yerr_db(struct yerr *e, const char *what);

/* Puts context in front of e's message ("snapshot s1: " + message), keeping
 * the code; a no-op on an unset error. Returns -1. */
int yerr_wrap(struct yerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failed disk operation: YE_NO_SPACE when the message says the file
 * system is full (so a client can tell "free some space" from a bug), else
 * YE_DISK_ERROR. Returns -1. */
int yerr_disk(struct yerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
