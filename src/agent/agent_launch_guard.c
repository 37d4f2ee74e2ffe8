/*
 * agent_launch_guard.c - the two-QEMU guard of vm.launch (agent_launch.c):
 * a start goes on only when this host shows no QEMU of the VM, in the
 * process table and not only in the pidfile, and no earlier start or exit
 * of it is still being handled, and when this host runs the VM's CPU model
 * (a controller's placement checked it on the host's joined facts; this is
 * the host's own word, for a target of a move and a restart alike).
 * Nothing is done when it refuses.
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/qemu_proc.h"
#include "sched/cpu_models.h"

#include <event2/event.h>

int launch_guard(struct engine *e, const struct vm_rec *vm, struct yerr *err)
{
    int model = vm->cpu_model[0] ? sched_cpu_model_index(vm->cpu_model) : -2;
    if (model != -2 && (model < 0 || !(agent_cpu_models(e) & (1u << model)))) {
        char have[400];
        sched_cpu_models_list(agent_cpu_models(e), have, sizeof have);
        return yerr_set(err, YE_CONFLICT, "this host cannot run CPU model %s (its QEMU runs: %s)",
                        vm->cpu_model, have[0] ? have : "none it reported");
    }
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
