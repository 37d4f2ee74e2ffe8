/*
 * housekeeping.h - the engine's limits on what guests pile up: the rate
 * limit on repeated QMP events and the end of a reset loop (the event
 * log's retention: ctl_events_prune; the console.log cap: the agent's
 * host.housekeep). The decisions are pure (vm_guard.c); these are the
 * engine's hooks into them.
 */
#ifndef YUN_HOUSEKEEPING_H
#define YUN_HOUSEKEEPING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct engine;
struct vm_rt;
struct vm_rec;

/* Records a QMP event as `action` ("qmp:reset") with `result` and
 * `reason`, unless the rate limit holds it back. A reset loop the guest is
 * in is noticed here: QEMU is ended, and the VM crashes on exit. */
void engine_guard_qmp_event(struct engine *e, struct vm_rt *rt, struct vm_rec *vm,
                            const char *event, const char *action, const char *result,
                            const char *reason, json_t *data);

/* QEMU of vm exited: when yund ended it for a reset loop, the VM becomes
 * crashed with the cause in last_error. */
void engine_guard_exit(struct engine *e, struct vm_rt *rt, struct vm_rec *vm);

/* Summaries of held-back events whose window is over (a VM's runtime is
 * about to go, or the periodic pass). */
void engine_guard_flush(struct engine *e, struct vm_rt *rt, bool all);

#endif
