/*
 * failpoint.c - the run-time side of failpoint.h: matching YUN_FAILPOINT
 * against the point reached, and listing the registered points.
 */
#include "lib/failpoint.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef YUN_FAILPOINTS
extern const struct failpoint_def __start_yun_failpoints[];
extern const struct failpoint_def __stop_yun_failpoints[];

/* A harmless entry, so the section exists even in a program with no point. */
static const struct failpoint_def failpoint_none
    __attribute__((used, section("yun_failpoints"), aligned(sizeof(void *)))) = {NULL};

void failpoint_hit(const char *name)
{
    static int loaded;
    static char want[128];
    static long nth = 1, seen;
    if (!loaded) {
        loaded = 1;
        const char *env = getenv("YUN_FAILPOINT");
        if (env && strlen(env) < sizeof(want)) {
            strcpy(want, env);
            char *colon = strchr(want, ':');
            if (colon) {
                *colon = 0;
                nth = strtol(colon + 1, NULL, 10);
                if (nth < 1)
                    nth = 1;
            }
        }
    }
    if (!want[0] || strcmp(want, name))
        return;
    if (++seen < nth)
        return;
    /* Say why on stderr (the log may be buffered), then die like kill -9. */
    static const char msg[] = "yund: failpoint reached, SIGKILL: ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, name, strlen(name));
    (void)!write(2, "\n", 1);
    raise(SIGKILL);
    _exit(137);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int failpoint_list(FILE *out)
{
    size_t n = (size_t)(__stop_yun_failpoints - __start_yun_failpoints), k = 0;
    const char **names = calloc(n + 1, sizeof *names);
    if (!names)
        return -1;
    for (const struct failpoint_def *p = __start_yun_failpoints; p < __stop_yun_failpoints; p++)
        if (p->name)
            names[k++] = p->name;
    qsort(names, k, sizeof *names, cmp_name);
    int uniq = 0;
    for (size_t i = 0; i < k; i++)
        if (i == 0 || strcmp(names[i], names[i - 1])) {
            fprintf(out, "%s\n", names[i]);
            uniq++;
        }
    free(names);
    (void)failpoint_none;
    return uniq;
}
#else
int failpoint_list(FILE *out)
{
    (void)out;
    return 0;
}
#endif
