/*
 * agent_host.c - verbs about the host itself (not one VM or disk).
 */
#include "agent/agent_local.h"
#include "compute/engine.h"
#include "compute/confine.h"
#include "lib/config.h"
#include "sched/cpu_models.h"

#include <stdio.h>

uint32_t agent_cpu_models(const struct engine *e)
{
    uint32_t m = sched_cpu_models_mask(e->cpu_models);
    if (e->cfg && e->cfg->cpu_models[0]) /* an engine made without settings (tests) */
        m &= sched_cpu_models_mask(e->cfg->cpu_models);
    return m;
}

/* {} -> {"cpus", "memory", "accel", "yund_id", "cgroups", "vms_dir",
 * "images_dir", "swap_accounting", "memlock_max", "cpu_models"}: what this
 * host offers ("cpu_models": agent_cpu_models, as names)
 * ("cgroups": "v1", "v2" or "none"; swap accounted per group; the bytes a
 * QEMU may lock, -1 = any), and where its VMs' and images' files are (for
 * the paths a VM shows). */
static void host_facts(struct agent_local *al, struct agent_op *op, json_t *args)
{
    (void)args;
    struct engine *e = al->host;
    if (!e) {
        agent_op_fail(op, YE_UNAVAILABLE, "agent: no compute engine on this host");
        return;
    }
    const char *cg = e->cg.mode == CG_V2 ? "v2" : e->cg.mode == CG_V1 ? "v1" : "none";
    char models[512];
    sched_cpu_models_list(agent_cpu_models(e), models, sizeof models);
    agent_op_reply(op,
                   json_pack("{s:i,s:I,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:s}", "cpus", e->host_cpus,
                             "memory", (json_int_t)e->host_memory, "accel", e->accel, "yund_id",
                             e->yund_id, "cgroups", cg, "vms_dir", e->vms_dir, "images_dir",
                             e->images_dir, "swap_accounting",
                             cg_swap_accounting(&e->cg) == CG_SWAP_YES, "memlock_max",
                             (json_int_t)vm_confine_memlock_max(), "cpu_models", models),
                   NULL);
}

const struct agent_verb_def agent_host_verbs[] = {
    {AV_HOST_FACTS, "host.facts", host_facts},
};
const size_t agent_host_verbs_count = sizeof agent_host_verbs / sizeof agent_host_verbs[0];
