/*
 * qmp.h - talking to QEMU's machine protocol (QMP).
 *
 * Two ways, on two separate monitors of the same QEMU:
 *  - qmp_command(): one short blocking exchange (connect, negotiate, execute,
 *    close) bounded by a timeout; QMP answers in microseconds, so yund's loop
 *    stalls for no longer than a cgroup write.
 *  - struct qmp_watch: a long-lived libevent connection that delivers QMP
 *    events (SHUTDOWN, STOP, RESUME, RESET, GUEST_PANICKED) and EOF, which is
 *    how yund learns at once that a QEMU exited.
 */
#ifndef YUN_QMP_H
#define YUN_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

struct event_base;

/* Pieces shared with the guest-agent client (qga.c). */
int qmp_unix_connect(const char *path, char *err, size_t errlen);
/* A name yund gives QEMU (a node, a job, a device id) as another host or the
 * controller sent it: 1..maxlen of [A-Za-z0-9_-]. */
bool qmp_name_ok(const char *n, size_t maxlen);
/* Line reader over a blocking fd with an absolute deadline (monotonic ms). */
struct liner {
    int fd;
    char *buf;
    size_t len, cap;
    int64_t deadline;
};
/* Next line (malloc'd, without the newline), or NULL with err set. */
char *liner_next(struct liner *l, char *err, size_t errlen);
/* {"execute":command[,"arguments":args][,"id":id]} plus a newline, malloc'd;
 * id < 0 leaves the id out. args is not stolen. */
char *qmp_message(const char *command, json_t *args, long long id);

/* Validates one QMP reply line. On {"return": X} stores X (new ref) in *ret
 * and returns 0; on {"error": {...}} writes "class: desc" to err and returns
 * -1; anything else (event, greeting, garbage) returns 1 (not a reply). */
int qmp_parse_reply(const char *line, json_t **ret, char *err, size_t errlen);

/* Runs command with args (may be NULL; reference not stolen) on the monitor
 * at sock_path. *ret gets the "return" value (new reference) if ret != NULL. */
int qmp_command(const char *sock_path, const char *command, json_t *args, json_t **ret,
                int timeout_ms, char *err, size_t errlen);

/* The same, passing the open file descriptor pass_fd (-1: none) to QEMU
 * with the command (SCM_RIGHTS), for add-fd and getfd. The caller keeps and
 * closes its own copy. */
int qmp_command_fd(const char *sock_path, const char *command, json_t *args, int pass_fd,
                   json_t **ret, int timeout_ms, char *err, size_t errlen);

/* Convenience: query-status -> "running", "paused", "shutdown", ... */
int qmp_query_status(const char *sock_path, char *status, size_t len, char *err, size_t errlen);

typedef void (*qmp_event_cb)(void *ctx, const char *event, json_t *data);
/* Called once when the connection closes (QEMU exited or the socket broke). */
typedef void (*qmp_eof_cb)(void *ctx);

/* Reply to a command sent on the watch connection: ret is the "return"
 * value (borrowed) or NULL with err set. */
typedef void (*qmp_reply_cb)(void *ctx, json_t *ret, const char *err);

struct qmp_watch;
struct qmp_watch *qmp_watch_open(struct event_base *base, const char *sock_path, qmp_event_cb on_ev,
                                 qmp_eof_cb on_eof, void *ctx, char *err, size_t errlen);
void qmp_watch_close(struct qmp_watch *w);
/* Sends a command on the watch connection without blocking (one queued
 * before QEMU's greeting goes out right after qmp_capabilities); cb runs when
 * the reply arrives (never if the connection closes first; ctx must outlive the
 * watch or the reply). Returns 0, or -1 if it could not be queued. */
int qmp_watch_command(struct qmp_watch *w, const char *command, json_t *args, qmp_reply_cb cb,
                      void *ctx);
/* The same, passing the open fd pass_fd (SCM_RIGHTS) with the command
 * (add-fd); the caller keeps and closes its own copy once this returns.
 * -1 also when the connection is not negotiated yet or cannot take the
 * message now. */
int qmp_watch_command_fd(struct qmp_watch *w, const char *command, json_t *args, int pass_fd,
                         qmp_reply_cb cb, void *ctx);
/* How many more commands the connection takes now (replies outstanding
 * count against a fixed limit); 0 for NULL. */
int qmp_watch_room(const struct qmp_watch *w);
/* Replies still to come for ctx are dropped (ctx is going away). */
void qmp_watch_forget(struct qmp_watch *w, void *ctx);

#endif
