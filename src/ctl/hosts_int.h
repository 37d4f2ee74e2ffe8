/*
 * hosts_int.h - what the hosts registry's files share (hosts.c: entries,
 * index, lookups; hosts_join.c: joins and agents' authentication;
 * hosts_lease.c: heartbeats and the lease sweep; hosts_cred.c: the
 * credential's derivation). Not for use outside src/ctl/hosts*.c.
 */
#ifndef YUN_CTL_HOSTS_INT_H
#define YUN_CTL_HOSTS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "store/records.h"

struct event;

/* One host the registry knows. */
struct host_entry {
    struct host_rec rec;      /* the row as last read or written */
    struct ctl_host facts;    /* what ctl_host_facts returns */
    struct agent *agent;      /* its remote agent (controller) or c->agent (all-in-one) */
    bool local;               /* the all-in-one's own */
    struct host_entry *hnext; /* the id index's chain */
};

#define HOSTS_BUCKETS 1024

struct ctl_hosts {
    struct host_entry **v; /* ordered by name */
    size_t n, cap;
    struct host_entry *bucket[HOSTS_BUCKETS];
    struct event *sweep;
    char token[256]; /* the join token (controller) */
    size_t token_len;
    bool closing; /* ctl_hosts_shutdown: freed agents' pending calls are not answered */
};

struct host_entry *hosts_find(struct ctl *c, const char *id);
/* The host's lease lapsed: the calls pending on its agent are answered
 * YE_UNAVAILABLE from the loop (their HTTP requests ended; a verb may go
 * on at the agent), so no reader or task waits out a call deadline on a
 * host that cannot answer. The agent stays for the host's return. */
void hosts_fail_pending(struct ctl *c, struct host_entry *e);
struct host_entry *hosts_find_name(struct ctl *c, const char *name);
/* A new entry for rec (copied; facts from it); NULL when out of memory. */
struct host_entry *hosts_add(struct ctl *c, const struct host_rec *rec);
void hosts_drop(struct ctl *c, struct host_entry *e);
/* The row changed (name may have): copied in, order kept. */
void hosts_update(struct ctl *c, struct host_entry *e, const struct host_rec *rec);
/* A remote agent for e (freeing any older one), the attached hook told. */
void hosts_connect(struct ctl *c, struct host_entry *e);
int hosts_lease_init(struct ctl *c);
/* Placement's model must read the hosts again (ctl/place.h): a host joined, changed
 * state, labels or facts, or was removed. */
void ctl_place_invalidate(struct ctl *c);
void hosts_lease_shutdown(struct ctl *c);

/* hosts_cred.c: credential = hex(HMAC-SHA256(token, host id)); its hash
 * hex(SHA-256(credential)); a constant-time compare of equal-length text. */
int hosts_credential(const char *token, size_t token_len, const char *id, char out[65]);
int hosts_cred_hash(const char *credential, char out[65]);
bool hosts_ct_equal(const char *a, const char *b, size_t n);

#endif
