/*
 * housekeeping.c - the engine side of the growth limits (housekeeping.h):
 *  - events: every EVENTS_PRUNE_EVERY inserts and on every reconcile pass,
 *    a few bounded DELETEs drop what is beyond event_retention rows or older
 *    than event_max_age, so the table never grows without end and no single
 *    step holds the loop for long;
 *  - console logs: each VM's console.log is cut back once it passes
 *    console_log_max (console_log.c), on the reconcile pass;
 *  - QMP events: at most GUARD_BURST identical ones per VM per window are
 *    recorded, the rest summed up in one "suppressed" event (vm_guard.c);
 *  - reset loops: reset_loop_max guest resets within reset_loop_window end
 *    QEMU, and the VM becomes crashed with the cause instead of rebooting
 *    forever with no error (typically: too little memory for its kernel).
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

static void emit_summary(struct engine *e, const char *vm, const struct guard_summary *sum)
{
    engine_event(e, "vm", vm, "suppressed", "info",
                 "%d more identical %s events within %d s were not recorded", sum->suppressed,
                 sum->key, GUARD_WINDOW_MS / 1000);
}

void engine_guard_flush(struct engine *e, struct vm_rt *rt, bool all)
{
    struct guard_summary sum;
    while (vm_guard_expire(&rt->guard, all ? INT64_MAX : monotonic_ms(), &sum))
        emit_summary(e, rt->name, &sum);
}

/* The guest keeps resetting itself: say why, end QEMU now (SIGKILL: no
 * SHUTDOWN comes, so the exit is not taken for a clean one), and let the
 * exit path (engine_guard_exit) make the VM crashed. */
static void end_reset_loop(struct engine *e, struct vm_rt *rt, struct vm_rec *vm)
{
    snprintf(rt->guard.crash, sizeof(rt->guard.crash),
             "guest reset itself %d times within %d s: a reset loop (is its memory, %llu MiB, "
             "too little for the image?)",
             e->cfg->reset_loop_max, e->cfg->reset_loop_window_s,
             (unsigned long long)vm->memory_mb);
    vm_guard_reset_clear(&rt->guard);
    snprintf(vm->last_error, sizeof(vm->last_error), "%s", rt->guard.crash);
    engine_store_update(e, vm);
    engine_event(e, "vm", vm->name, "reset-loop", "error", "%s; ending qemu", rt->guard.crash);
    pid_t pid = rt->pid > 0 ? rt->pid : vm->pid;
    if (pid > 0 && qemu_pid_state(pid, vm->id, vm->uid) == PID_LIVE)
        kill(pid, SIGKILL);
}

void engine_guard_qmp_event(struct engine *e, struct vm_rt *rt, struct vm_rec *vm,
                            const char *event, const char *action, const char *result,
                            const char *reason, json_t *data)
{
    int64_t now = monotonic_ms();
    engine_guard_flush(e, rt, false);
    char key[96];
    snprintf(key, sizeof(key), "%s%s%s%s", action, reason[0] ? " (" : "", reason,
             reason[0] ? ")" : "");
    struct guard_summary sum;
    bool record = vm_guard_admit(&rt->guard, key, now, &sum);
    if (sum.suppressed > 0)
        emit_summary(e, rt->name, &sum);
    if (record)
        engine_event(e, "vm", vm->name, action, result, "%s", reason);
    /* Every guest reset counts, recorded or not; resets yund or the user
     * asked for (guest: false) never do. */
    if (!strcmp(event, "RESET") && json_is_true(json_object_get(data, "guest")) &&
        !rt->guard.crash[0] &&
        vm_guard_reset(&rt->guard, now, e->cfg->reset_loop_max,
                       (int64_t)e->cfg->reset_loop_window_s * 1000))
        end_reset_loop(e, rt, vm);
}

void engine_guard_exit(struct engine *e, struct vm_rt *rt, struct vm_rec *vm)
{
    vm_guard_reset_clear(&rt->guard); /* the next QEMU starts afresh */
    if (!rt->guard.crash[0])
        return;
    vm->state = VM_CRASHED;
    snprintf(vm->last_error, sizeof(vm->last_error), "%s", rt->guard.crash);
    rt->guard.crash[0] = 0;
}

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
    for (struct vm_rt *rt = e->rts; rt; rt = rt->next)
        engine_guard_flush(e, rt, false);
    /* A few batches per pass: a backlog (a first start with a large table)
     * drains over several passes instead of in one long step. */
    engine_events_prune(e, 4);
}
