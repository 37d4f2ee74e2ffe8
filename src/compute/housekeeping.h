/*
 * housekeeping.h - the engine's limits on what guests and time pile up: the
 * event log's retention and each VM's console.log cap (console_log.c).
 */
#ifndef YUN_HOUSEKEEPING_H
#define YUN_HOUSEKEEPING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct engine;
struct vm_rt;
struct vm_rec;

/* The periodic pass (reconcile): console logs cut back to their cap,
 * summaries of held-back events, old events pruned. */
void engine_housekeeping(struct engine *e, const struct vm_rec *vms, size_t n);

/* Drops events beyond the retention settings, at most `batches` bounded
 * DELETEs. Called every so many inserts and from the periodic pass. */
void engine_events_prune(struct engine *e, int batches);

#endif
