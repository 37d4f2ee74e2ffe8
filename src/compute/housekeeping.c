/*
 * housekeeping.c - the engine side of the growth limits (housekeeping.h;
 * the event log's retention is the controller's, ctl/events.c, and the
 * console logs' cap the agent's host.housekeep, agent/agent_attach.c):
 *  - QMP events: at most GUARD_BURST identical ones per VM per window are
 *    recorded, the rest summed up in one "suppressed" event (vm_guard.c);
 *  - reset loops: reset_loop_max guest resets within reset_loop_window end
 *    QEMU, and the VM becomes crashed with the cause instead of rebooting
 *    forever with no error (typically: too little memory for its kernel).
 */
#include "compute/housekeeping.h"
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
