/*
 * store_leader.h - the controllers' leadership in PostgreSQL, on a
 * connection of its own (store_leader.c): a session advisory lock plus the
 * one-row `leader` table (holder, URL, epoch, lease on the database clock,
 * backend pids). Every call is synchronous (blocking): ctl/leader.c makes
 * them from its worker thread, never from the event loop. The epoch the
 * election returns is what store_set_epoch gives the main store connection,
 * so that its writes pass the fence (schema 9).
 */
#ifndef YUN_STORE_LEADER_H
#define YUN_STORE_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_leader;

/* What the leader row says. */
struct leader_row {
    char holder[128];
    char url[256];
    int64_t epoch;
    int64_t lease_until; /* ms, the database clock */
    int64_t db_now;      /* ms, the database clock when it was read */
    int pid, store_pid;  /* backend pids of the holder's lock and store connections */
};

/* A connection for leadership. PostgreSQL only: a SQLite spec is an error
 * (one host, no standby). 0, or -1 with err filled. */
int store_leader_open(const char *spec, int lease_ms, struct store_leader **out, char *err,
                      size_t errlen);
void store_leader_close(struct store_leader *sl);

/* One try to become leader: takes the advisory lock if it is free, or, when
 * the row's lease has lapsed while the lock is still held (the holder hangs
 * or its network is cut: its session lingers), ends the holder's sessions
 * (pg_terminate_backend) and takes it then. Holding the lock, it increments
 * the epoch and writes holder, url, lease and pid. 1 elected (*epoch set),
 * 0 someone else leads (*row says who), -1 error (err). The row is filled
 * in every case it could be read. */
int store_leader_try(struct store_leader *sl, const char *holder, const char *url, int64_t *epoch,
                     struct leader_row *row, char *err, size_t errlen);
/* The leader renews its lease (now() + lease_ms). 0 renewed, 1 lost (the
 * row has another epoch, or the lock's session is gone), -1 error (err; the
 * lease may still hold: try again before it ends). */
int store_leader_renew(struct store_leader *sl, int64_t epoch, char *err, size_t errlen);
/* Gives leadership up (lease ended, lock released): standbys take over at
 * once. Best effort. */
void store_leader_release(struct store_leader *sl, int64_t epoch);
/* The row as it is. 0, or -1 (err). */
int store_leader_read(struct store_leader *sl, struct leader_row *row, char *err, size_t errlen);

/* The main store connection writes as the leader of epoch (its writes pass
 * the fence; kept across a reconnect) and records its backend pid in the
 * row. SQLite: nothing. 0, or -1 (store_errmsg). */
int store_set_epoch(struct store *st, int64_t epoch);

#endif
