/*
 * failpoint.h - named crash points for testing crash safety.
 *
 * FAILPOINT("snapshot.after_switch") marks a step of a multi-step operation.
 * In a build with YUN_FAILPOINTS (the sanitizer build, make SAN=1) yund kills
 * itself with SIGKILL at that point when the environment variable
 * YUN_FAILPOINT names it ("NAME", or "NAME:N" for the N-th time the point is
 * reached), which is exactly what `kill -9` at that instant would do: no
 * atexit, no flush, no cleanup. In other builds the macro is empty.
 *
 * Every point is also registered in the linker section "yun_failpoints", so
 * `yund --failpoints` lists each point compiled in, and a test can walk all
 * of them. Names are "OPERATION.step"; the operation prefix is what the
 * walking test (tests/e2e/test_failpoints.py) uses to know how to reach it.
 */
#ifndef YUN_FAILPOINT_H
#define YUN_FAILPOINT_H

#ifdef YUN_FAILPOINTS
struct failpoint_def {
    const char *name;
};
void failpoint_hit(const char *name);
#define FAILPOINT_CAT2(a, b) a##b
#define FAILPOINT_CAT(a, b)  FAILPOINT_CAT2(a, b)
#define FAILPOINT(nm)                                                                              \
    do {                                                                                           \
        static const struct failpoint_def FAILPOINT_CAT(failpoint_, __LINE__)                      \
            __attribute__((used, section("yun_failpoints"), aligned(sizeof(void *)))) = {nm};      \
        failpoint_hit(nm);                                                                         \
    } while (0)
#else
#define FAILPOINT(nm) ((void)0)
#endif

#include <stdio.h>
/* Prints every compiled-in point, one per line, sorted; returns how many
 * (0 in a build without YUN_FAILPOINTS). */
int failpoint_list(FILE *out);

#endif
