/*
 * leader.h - which controller leads (ctl/leader.c over store/store_leader.h).
 * A worker thread with its own PostgreSQL connection tries for leadership
 * about every second (a standby) or renews the lease every lease/3 (the
 * leader) and reports to the event loop through a pipe; nothing blocks the
 * loop. When elected, the loop gives the main store connection the new
 * epoch (store_set_epoch) and calls `elected`; a leader that cannot renew
 * before its lease ends, or finds the row taken, is deposed: `deposed` is
 * called (the default exits with LEADER_EXIT_DEPOSED, so that a supervisor
 * starts it again as a standby).
 *
 * The all-in-one on PostgreSQL leads the same way (waits to be elected
 * before it serves); on SQLite there is no leader object at all.
 */
#ifndef YUN_CTL_LEADER_H
#define YUN_CTL_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;
struct leader;

#define LEADER_EXIT_DEPOSED 75 /* EX_TEMPFAIL */

struct leader_opts {
    const char *store_spec; /* postgres://... */
    const char *url;        /* this controller's URL for clients and agents ("" none) */
    int lease_ms;
    /* On the loop, outside any other callback's state; may be NULL. */
    void (*elected)(void *ctx, int64_t epoch);
    /* NULL: log and _exit(LEADER_EXIT_DEPOSED). Called once. */
    void (*deposed)(void *ctx, const char *why);
    void *ctx;
};

/* Starts trying (the thread). NULL with err filled (not PostgreSQL, no
 * connection, out of memory). */
struct leader *leader_start(struct event_base *base, struct store *st, const struct leader_opts *o,
                            char *err, size_t errlen);
/* Releases leadership if held (standbys take over at once) and stops. */
void leader_stop(struct leader *l);
/* Runs the loop until this controller is elected (1), timeout_ms passed
 * (0; < 0 waits for ever) or the loop was asked to exit (0). Not from a
 * callback of the loop. */
int leader_wait(struct leader *l, int64_t timeout_ms);
/* True while this controller leads and its lease holds on the local
 * clock; a lease found over here deposes it first. */
bool leader_serving(struct leader *l);
/* The leader's URL as last read ("" unknown or none); this controller's
 * own while it leads. */
const char *leader_url(const struct leader *l);
int64_t leader_epoch(const struct leader *l);
/* This controller's holder id (host:pid:random). */
const char *leader_id(const struct leader *l);

#endif
