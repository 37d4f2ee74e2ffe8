/*
 * version.c - the version and commit strings (version.h), from the
 * -DYUN_VERSION_STR / -DYUN_COMMIT_STR the Makefile passes.
 */
#include "lib/version.h"

#ifndef YUN_VERSION_STR
#define YUN_VERSION_STR "0.0.0"
#endif
#ifndef YUN_COMMIT_STR
#define YUN_COMMIT_STR "unknown"
#endif

const char *yun_version(void)
{
    return YUN_VERSION_STR;
}

const char *yun_commit(void)
{
    return YUN_COMMIT_STR;
}
