/*
 * housekeeping.c - the engine side of the growth limits (housekeeping.h):
 *  - events: every EVENTS_PRUNE_EVERY inserts and on every reconcile pass,
 *    a few bounded DELETEs drop what is beyond event_retention rows or older
 *    than event_max_age, so the table never grows without end and no single
 *    step holds the loop for long;
 *  - console logs: each VM's console.log is cut back once it passes
 *    console_log_max (console_log.c), on the reconcile pass;
 * The rate limit on QMP events and the end of a reset loop are the
 * controller's (ctl/vms_events.c, over vm_guard.c).
 */
#include "compute/housekeeping.h"
#include "compute/console_log.h"
#include "compute/engine.h"
#include "compute/qemu_proc.h"
#include "compute/qemu_argv.h"
#include "compute/vm_guard.h"
#include "lib/log.h"
#include "lib/util.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define EVENTS_PRUNE_BATCH 1000

void engine_events_prune(struct engine *e, int batches)
{
    int64_t keep = e->cfg->event_retention;
    int64_t older = e->cfg->event_max_age_s ? now_ms() - e->cfg->event_max_age_s * 1000 : 0;
    long total = 0;
    for (int i = 0; i < batches; i++) {
        int n = store_event_prune(e->store, keep, older, EVENTS_PRUNE_BATCH);
        if (n < 0) {
            log_warn("cannot prune events: %s", store_errmsg(e->store));
            return;
        }
        total += n;
        if (n < EVENTS_PRUNE_BATCH)
            break;
    }
    if (total)
        log_debug("pruned %ld events (retention %lld, max age %lld s)", total, (long long)keep,
                  (long long)e->cfg->event_max_age_s);
}

void engine_housekeeping(struct engine *e, const struct vm_rec *vms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (vms[i].state == VM_CREATING || vms[i].state == VM_DELETING)
            continue;
        char path[512], err[600];
        if (engine_vm_path(e, &vms[i], VMDIR_CONLOG, path, sizeof(path)) < 0)
            continue;
        int rc = console_log_cap(path, e->cfg->console_log_max, err, sizeof(err));
        if (rc < 0)
            log_warn("vm %s: console log: %s", vms[i].name, err);
        else if (rc > 0)
            log_debug("vm %s: console log cut back to its last %llu bytes", vms[i].name,
                      (unsigned long long)(e->cfg->console_log_max / 2));
    }
    /* A few batches per pass: a backlog (a first start with a large table)
     * drains over several passes instead of in one long step. */
    engine_events_prune(e, 4);
}
