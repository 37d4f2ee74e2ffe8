/*
 * agent_pin.h - a running VM's thread pins on this host (agent_pin.c):
 * each vCPU thread (QMP query-cpus-fast's thread ids) onto its host CPUs,
 * every other thread of the QEMU process onto the emulator pin, and the
 * verb vm.tune that changes a running VM's cgroup limits and pins live.
 */
#ifndef YUN_AGENT_PIN_H
#define YUN_AGENT_PIN_H

#include <stdbool.h>

struct engine;
struct vm_rt;
struct vm_rec;

/* The pins of vm (its cpu_pin, emulator_pin, cpuset) put on its QEMU
 * (rt->pid, asked over rt->watch) once QEMU names its vCPU threads; done
 * (may be NULL: a failure is logged) runs once, from the loop, with NULL or
 * why it failed, and the counts of vCPU and other threads pinned. A vCPU
 * with no pin and the other threads without an emulator pin get the VM's
 * cpuset (all host CPUs without one), so a pin removed is undone. -1 when
 * it could not start (done never runs). */
typedef void (*agent_pin_fn)(void *ctx, const char *err, int vcpus, int others);
int agent_pin_apply(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm, agent_pin_fn done,
                    void *ctx);
/* After a launch or a fresh re-attach: agent_pin_apply when vm has a pin,
 * a failure logged (the VM runs unpinned rather than not at all). */
void agent_pin_launched(struct engine *e, struct vm_rt *rt, const struct vm_rec *vm);

#endif
