/*
 * agent_power.h - shared between the in-process agent's VM power verbs
 * (agent_power.c: vm.powerdown, vm.quit, vm.end) and its VM files verbs
 * (agent_vmfiles.c: vm.prepare, vm.remove): argument checks and the verb
 * functions the table in agent_power.c names.
 */
#ifndef YUN_AGENT_POWER_H
#define YUN_AGENT_POWER_H

#include "agent/agent_local.h"

#include <stdint.h>

struct engine;

/* The "uid" argument (0, or a confined uid): 0, or -1 after failing op. */
int agent_power_uid_arg(struct agent_op *op, json_t *args, uint32_t *uid);

void agent_vm_prepare(struct agent_local *al, struct agent_op *op, json_t *args);
void agent_vm_remove(struct agent_local *al, struct agent_op *op, json_t *args);

#endif
