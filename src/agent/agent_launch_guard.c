/*
 * agent_launch_guard.c - the two-QEMU guard of vm.launch (agent_launch.c):
 * a start goes on only when this host shows no QEMU of the VM, in the
 * process table and not only in the pidfile, and no earlier start or exit
 * of it is still being handled. Nothing is done when it refuses.
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/qemu_proc.h"

#include <event2/event.h>

int launch_guard(struct engine *e, const struct vm_rec *vm, struct yerr *err)
{
    pid_t other = 0;
    struct vm_rt *busy = engine_rt_find(e, vm->id);
    if (busy && busy->launch)
        return yerr_set(err, YE_CONFLICT, "vm '%s' is being started already", vm->name);
    if (busy && (busy->watch || (busy->exit_timer && evtimer_pending(busy->exit_timer, NULL))))
        /* its last QEMU's exit is not told yet (EOF unread, or the pid not
         * gone): the exit would land on this start */
        return yerr_set(err, YE_CONFLICT,
                        "vm '%s': the exit of its last qemu is still being handled", vm->name);
    switch (qemu_seek(e->vms_dir, vm->id, vm->uid, NULL, &other)) {
    case QEMU_GONE:
        return 0;
    case QEMU_UNSURE:
        return yerr_set(err, YE_UNAVAILABLE,
                        "cannot tell whether vm '%s' still has a qemu (/proc unreadable); "
                        "not starting another",
                        vm->name);
    default:
        engine_reconcile_soon(e);
        return yerr_set(err, YE_CONFLICT,
                        "vm '%s' still has a qemu (pid %d); yund is re-attaching to it", vm->name,
                        (int)other);
    }
}
