/*
 * cpu_models.c - the CPU model table and the baseline (cpu_models.h).
 *
 * Newest first, Intel and AMD interleaved by generation, so that the
 * baseline of an all-AMD cluster is an EPYC model and of an all-Intel one a
 * Xeon, and a mixed cluster falls to what both run (under KVM the vendor is
 * part of the model, and a host runs the other vendor's model only if its
 * flags cover it, which its QEMU reports). qemu64 and kvm64 are the floor
 * every x86 QEMU runs. max and host come last and are never a baseline.
 */
#include "sched/cpu_models.h"

#include <stdio.h>
#include <string.h>

static const char *const models[] = {
    "GraniteRapids",
    "SapphireRapids",
    "Genoa",
    "Icelake-Server",
    "EPYC-Milan",
    "Cooperlake",
    "Cascadelake-Server",
    "EPYC-Rome",
    "Skylake-Server",
    "Skylake-Client",
    "EPYC",
    "Broadwell",
    "Broadwell-noTSX",
    "Haswell",
    "Haswell-noTSX",
    "IvyBridge",
    "SandyBridge",
    "Opteron_G5",
    "Opteron_G4",
    "Westmere",
    "Nehalem",
    "Opteron_G3",
    "Penryn",
    "Opteron_G2",
    "Conroe",
    "Opteron_G1",
    "qemu64",
    "kvm64",
    "max",
    "host",
};
#define NMODELS ((int)(sizeof(models) / sizeof(models[0])))
_Static_assert(sizeof(models) / sizeof(models[0]) <= 32, "a model mask is 32 bits");

int sched_cpu_models_count(void)
{
    return NMODELS;
}

int sched_cpu_model_index(const char *name)
{
    for (int i = 0; name && i < NMODELS; i++)
        if (!strcmp(models[i], name))
            return i;
    return -1;
}

const char *sched_cpu_model_name(int i)
{
    return i >= 0 && i < NMODELS ? models[i] : NULL;
}

bool sched_cpu_model_migratable(int i)
{
    const char *n = sched_cpu_model_name(i);
    return n && strcmp(n, "max") != 0 && strcmp(n, "host") != 0;
}

uint32_t sched_cpu_models_mask(const char *list)
{
    uint32_t m = 0;
    char one[64];
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len < sizeof(one)) {
            memcpy(one, p, len);
            one[len] = 0;
            int i = sched_cpu_model_index(one);
            if (i >= 0)
                m |= 1u << i;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return m;
}

void sched_cpu_models_list(uint32_t mask, char *out, size_t len)
{
    size_t o = 0;
    if (len)
        out[0] = 0;
    for (int i = 0; i < NMODELS && o < len; i++)
        if (mask & (1u << i))
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", models[i]);
}

int sched_cpu_baseline(const uint32_t *masks, size_t n)
{
    if (!n)
        return -1;
    uint32_t all = ~0u;
    for (size_t k = 0; k < n; k++)
        all &= masks[k];
    for (int i = 0; i < NMODELS; i++)
        if ((all & (1u << i)) && sched_cpu_model_migratable(i))
            return i;
    return -1;
}
