/*
 * qga.h - talking to the QEMU guest agent inside a VM (virtio-serial port
 * org.qemu.guest_agent.0, exposed by QEMU as DIR/qga.sock).
 *
 * The agent speaks QMP-like JSON lines but has no greeting, and a previous
 * client may have left a half-read reply in the channel; every connection
 * therefore starts with guest-sync-delimited (the asynchronous client sends
 * a 0xFF byte before it, which resets the agent's JSON parser), whose reply
 * the agent prefixes with 0xFF; everything before the reply carrying our id
 * is stale and skipped. It flushes the channel and proves the agent alive.
 *
 * Two clients:
 *  - struct qga_client: asynchronous, on the libevent loop; what yund uses.
 *    A guest that never answers costs each exchange its timeout, in the
 *    background, never the caller.
 *  - qga_command(): one blocking exchange, for callers that must have the
 *    answer before they go on (snapshots freeze the file systems with it).
 */
#ifndef YUN_QGA_H
#define YUN_QGA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* How an asynchronous exchange ended. */
enum qga_status {
    QGA_OK,        /* ret is the "return" value (borrowed; incref to keep it) */
    QGA_ERROR,     /* the agent answered with an error (err says which) */
    QGA_FAILED,    /* no answer: cannot connect, connection lost, or timed out */
    QGA_CANCELLED, /* the client was freed (VM gone) before the exchange ended */
};

/* Always called from the event loop (or from qga_client_free), never from
 * inside qga_call. ret is NULL unless st == QGA_OK; err is "" on QGA_OK. */
typedef void (*qga_cb)(void *ctx, enum qga_status st, json_t *ret, const char *err);

/* QGA_NO_REPLY: commands like guest-shutdown that answer nothing on
 * success; the exchange is done once the command is written after a
 * successful sync. */
#define QGA_NO_REPLY 1

/* One per VM. Exchanges run one at a time, in the order queued; the agent
 * socket is connected while exchanges are queued and closed when the queue
 * is empty (so a blocking qga_command can have it in between). */
struct qga_client;
struct qga_client *qga_client_new(struct event_base *base, const char *sock_path);
/* Calls every queued exchange's callback with QGA_CANCELLED, then frees.
 * Safe from inside one of the client's own callbacks. NULL is ignored. */
void qga_client_free(struct qga_client *c);
/* Queues command (args may be NULL; not stolen). timeout_ms bounds the whole
 * exchange from now: waiting in the queue, connecting, sync and reply.
 * Returns 0, or -1 (out of memory, bad socket path) without calling cb. */
int qga_call(struct qga_client *c, const char *command, json_t *args, int flags, int timeout_ms,
             qga_cb cb, void *ctx);
/* Forgets every exchange queued with ctx; their callbacks are never called
 * (an exchange already sent still runs, its answer is dropped). */
void qga_cancel(struct qga_client *c, void *ctx);
/* Exchanges queued or in flight. */
int qga_pending(const struct qga_client *c);

/* One blocking command; *ret gets the "return" value (new reference) when
 * ret != NULL. no_reply: as QGA_NO_REPLY. */
int qga_command(const char *sock_path, const char *command, json_t *args, json_t **ret,
                int no_reply, int timeout_ms, char *err, size_t errlen);

#endif
