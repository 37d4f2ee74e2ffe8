/*
 * job.h - child processes on the event loop (tmux's job.c is the model).
 *
 * job_start() forks and execs argv (no shell), reads the child's stdout and
 * stderr with bufferevents (a line callback for progress, a bounded capture
 * of each stream for the result), reaps it on SIGCHLD with
 * waitpid(pid, WNOHANG) for its own pid only (other code may wait for its
 * own children: they are never stolen), and calls done once with the exit
 * status and the captured output. An optional timeout sends SIGTERM to the
 * child's process group, then SIGKILL after a grace period.
 *
 * The child gets /dev/null as stdin, a process group of its own (so a kill
 * reaches what it spawned), default signal dispositions and an empty signal
 * mask; setup (when given) runs in the child between fork and exec (join a
 * cgroup, keep a descriptor open across exec, drop privileges): a non-zero
 * return aborts the exec with status 126.
 *
 * done runs when the child has been reaped: what it wrote before exiting is
 * read then, so nothing is lost; a grandchild still holding the pipes does
 * not hold the job up.
 */
#ifndef YUN_JOB_H
#define YUN_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct job;

enum job_stream { JOB_STDOUT = 1, JOB_STDERR = 2 };

struct job_result {
    int status;      /* exit code, 128+signal, or -1 when it never ran */
    int exit_code;   /* -1 when killed by a signal */
    int signal;      /* the signal that ended it, 0 when it exited */
    bool timed_out;  /* the timeout ended it */
    const char *out; /* captured stdout, NUL-terminated (never NULL) */
    size_t out_len;  /* bytes captured */
    const char *err; /* captured stderr, NUL-terminated (never NULL) */
    size_t err_len;
    bool out_cut; /* more was written than capture_max */
    bool err_cut;
};

/* A line of output (without its "\n" or "\r": progress bars end lines with
 * "\r"), NUL-terminated; lines longer than 4 KiB come in pieces. */
typedef void (*job_line_fn)(void *ctx, enum job_stream s, const char *line);
/* r and its buffers are valid during the call only; the job is freed after. */
typedef void (*job_done_fn)(void *ctx, const struct job_result *r);

struct job_spec {
    char *const *argv;       /* argv[0] is searched in PATH */
    const char *cwd;         /* NULL: yund's */
    int (*setup)(void *arg); /* child side, before exec; NULL: none */
    void *setup_arg;
    int timeout_ms;     /* 0: none */
    int kill_grace_ms;  /* SIGTERM -> SIGKILL after a timeout or job_stop; 0: 2000 */
    size_t capture_max; /* bytes kept of each stream; 0: 64 KiB */
    bool capture_tail;  /* keep the last capture_max bytes instead of the first */
    bool new_session;   /* setsid() instead of only a new process group */
    /* > 0: the child runs at this nice value and the lowest best-effort I/O
     * priority, so bulk work (a 20 GiB copy) yields the CPU and the disk to
     * the daemon's loop and the guests */
    int background_nice;
    job_line_fn on_line; /* NULL: none */
    job_done_fn on_done; /* NULL: none */
    void *ctx;
};

/* Starts the child. NULL with err when the pipes or fork fail (an exec that
 * fails is reported through done, status 127, the reason on stderr). */
struct job *job_start(struct event_base *base, const struct job_spec *spec, char *err,
                      size_t errlen);
pid_t job_pid(const struct job *j);
/* Sends sig to the child's process group (and the child); a no-op once it
 * has been reaped, so a recycled pid is never hit. */
void job_kill(struct job *j, int sig);
/* SIGTERM now, SIGKILL after the grace period if it is still there. */
void job_stop(struct job *j);
/* No callback of j runs again; the child is still reaped (and then freed)
 * quietly. With kill, it is sent SIGKILL first. */
void job_detach(struct job *j, bool kill);
/* Jobs running (not yet reaped) in this process. */
int job_count(void);
/* At shutdown: every job not detached is sent SIGKILL; their done
 * callbacks run as they are reaped (the caller runs the loop a little). */
void job_kill_all(void);
/* At shutdown: every job is SIGKILLed, reaped and freed; no callback runs. */
void job_shutdown_all(void);

/* The start time of pid (field 22 of /proc/PID/stat, clock ticks since
 * boot), to tell a process from a later one that got its pid: 0 or -1. */
int job_proc_start_time(pid_t pid, uint64_t *out);

#endif
