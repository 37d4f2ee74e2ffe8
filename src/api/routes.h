/*
 * routes.h - the one route table of yund's API. Every route is a row
 * (method, pattern, handler, flags, summary, optional pure body check);
 * each routes_<x>.c exports its rows, route_table.c concatenates them once,
 * checks that no two collide, matches a request to a row and fills the
 * path parameters. docs/api.yaml describes the same rows (the e2e test
 * compares them through `yund --routes`).
 */
#ifndef YUN_API_ROUTES_H
#define YUN_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/yerr.h"

struct route_ctx;

typedef void (*route_fn)(struct route_ctx *c);
enum route_flags {
    ROUTE_BODY = 1u << 0,     /* takes a JSON object body */
    ROUTE_ASYNC = 1u << 1,    /* answers 202 with a task */
    ROUTE_LONGPOLL = 1u << 2, /* may hold the request (events, task wait) */
    ROUTE_ADMIN = 1u << 3,    /* changes host-wide settings (for the coming roles) */
    ROUTE_PUBLIC = 1u << 4,   /* no token needed on TCP (/healthz) */
    ROUTE_STANDBY = 1u << 5,  /* answered by a standby controller too (else 503 not_leader) */
};
struct route {
    int method;          /* EVHTTP_REQ_GET, ... as http.c uses today */
    const char *pattern; /* "/v1/vms/{name}/snapshots/{snapshot}": literal segments and {params} */
    route_fn fn;
    unsigned flags;
    const char *summary; /* one line, the same words as docs/api.yaml's summary */
    /* Pure check of the body (no I/O, no store): 0, or -1 with err (400). NULL: none. */
    int (*check_body)(json_t *body, struct yerr *err);
};

/* Each routes_<x>.c exports its rows: */
extern const struct route routes_vms[];
extern const size_t routes_vms_count;
extern const struct route routes_snapshots[];
extern const size_t routes_snapshots_count;
extern const struct route routes_guest[];
extern const size_t routes_guest_count;
extern const struct route routes_storage[];
extern const size_t routes_storage_count;
extern const struct route routes_misc[];
extern const size_t routes_misc_count;
extern const struct route routes_monitor[];
extern const size_t routes_monitor_count;
extern const struct route routes_tasks[];
extern const size_t routes_tasks_count;
extern const struct route routes_hosts[];
extern const size_t routes_hosts_count;
/* A host's "memory" object (routes_hosts.c): committed, resident, ballooned,
 * shared (by KSM), swapped in bytes, "ksm_run" and "sampled" (false: not
 * sampled yet, and only committed is known). committed: the VMs' memory
 * with a QEMU, used when the monitor has no sample. host_id "" = local. */
struct api;
json_t *host_memory_json(struct api *api, const char *host_id, unsigned long long committed);
extern const struct route routes_cluster[];
extern const size_t routes_cluster_count;
extern const struct route routes_leader[];
extern const size_t routes_leader_count;
extern const struct route routes_place[];
extern const size_t routes_place_count;
extern const struct route routes_migrate[];
extern const size_t routes_migrate_count;

/* A handler reads path parameters by name: */
const char *route_param(const struct route_ctx *c, const char *name);

#define ROUTE_MAX_SEGS 10 /* path segments, /v1 included */

/* A request path split into segments (decoded), and what matched. */
struct route_match {
    const struct route *route; /* NULL: no row for this method */
    unsigned allow;            /* methods of the rows whose pattern matched */
    int nparams;
    const char *param_name[ROUTE_MAX_SEGS]; /* into the pattern, not terminated */
    size_t param_len[ROUTE_MAX_SEGS];
    const char *param_val[ROUTE_MAX_SEGS]; /* into the split path */
};

/* The concatenated table (built on first use; never freed). NULL with
 * err when two rows collide or a pattern is malformed. */
const struct route *route_table(size_t *n, char *err, size_t errlen);
/* Checks a table: every pattern well formed, no two rows with the same
 * method and an equivalent pattern. 0, or -1 with err. */
int route_table_check(const struct route *t, size_t n, char *err, size_t errlen);
/* Splits a decoded path in place ("/v1/vms/x" -> "v1","vms","x"; empty
 * segments are skipped). -1 when it has more than ROUTE_MAX_SEGS. */
int route_split(char *path, const char **segs, int max);
/* Matches method + segments against t: literal segments win over {params}.
 * Returns true when some pattern matched the path (m->route is then the
 * row for the method, or NULL: 405 with m->allow). HEAD matches GET rows. */
bool route_match(const struct route *t, size_t n, int method, const char *const *segs, int nsegs,
                 struct route_match *m);
/* "GET", "POST", ... ("?" for others). */
const char *route_method_name(int method);
/* "GET, HEAD, POST" for a set of methods. */
void route_allow_header(unsigned methods, char *buf, size_t len);
/* One line per route: METHOD PATTERN FLAGS SUMMARY (json: a JSON array). */
int route_table_print(FILE *f, bool json);

#endif
