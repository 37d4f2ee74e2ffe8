/*
 * proc.h - running helper programs (qemu-img, qemu, image build scripts)
 * without a shell: argv only, output captured, bounded in time.
 */
#ifndef YUN_PROC_H
#define YUN_PROC_H

#include <stddef.h>

struct proc_result {
    int status; /* exit code, or 128+signal, or -1 if it could not run */
    char *out;  /* captured stdout (NUL-terminated, may be NULL) */
    char *err;  /* captured stderr */
    int timed_out;
};

/* Runs argv[0] (searched in PATH) with argv, waits at most timeout_ms (then
 * SIGKILL), captures up to 1 MiB of each stream. Returns result.status. */
int proc_run(char *const argv[], int timeout_ms, struct proc_result *res);

/* The same, calling pre_exec(arg) in the child just before exec (for
 * example to enter a cgroup while the child is still one small thread).
 * A non-zero return from pre_exec aborts the exec (exit status 126). */
int proc_run_ex(char *const argv[], int timeout_ms, struct proc_result *res,
                int (*pre_exec)(void *arg), void *arg);
void proc_result_free(struct proc_result *res);

/* Last non-empty line of a captured stream, trimmed, into buf (for one-line errors). */
void proc_last_line(const char *text, char *buf, size_t len);

#endif
