/* dc.c - the simulated datacentre: the built-in Beloglazov & Buyya setup
 * (HP ProLiant ML110 G4/G5 hosts, four EC2-like VM types) and the JSON file
 * that replaces it. */
#include "sim/sim.h"

#include <jansson.h>
#include <string.h>

void sim_dc_beloglazov(sim_dc *dc, int nhosts)
{
    static const double g4[SCHED_POWER_PTS] = {86,  89.4, 92.6, 96,  99.5, 102,
                                               106, 108,  112,  114, 117};
    static const double g5[SCHED_POWER_PTS] = {93.7, 97,  101, 105, 110, 116,
                                               121,  125, 129, 133, 135};
    static const struct {
        const char *n;
        double mips, ram;
    } vt[4] = {{"high-cpu-medium", 2500, 870},
               {"extra-large", 2000, 1740},
               {"small", 1000, 1740},
               {"micro", 500, 613}};
    memset(dc, 0, sizeof(*dc));
    dc->nhtypes = 2;
    dc->nhosts = nhosts > 0 ? nhosts : 800;
    for (int i = 0; i < 2; i++) {
        sim_host_type *h = &dc->htypes[i];
        snprintf(h->name, sizeof(h->name), "%s", i ? "hp-ml110-g5" : "hp-ml110-g4");
        h->cores = 2;
        h->core_mips = i ? 2660 : 1860;
        h->ram_mb = 4096;
        h->bw_mbps = 1000;
        memcpy(h->power.watts, i ? g5 : g4, sizeof(g4));
        h->count = dc->nhosts / 2 + (i == 0 ? dc->nhosts % 2 : 0);
    }
    dc->nvtypes = 4;
    for (int i = 0; i < 4; i++) {
        sim_vm_type *v = &dc->vtypes[i];
        snprintf(v->name, sizeof(v->name), "%s", vt[i].n);
        v->mips = vt[i].mips;
        v->ram_mb = vt[i].ram;
        v->bw_mbps = 100;
        v->vcpus = 1;
    }
}

static int num(json_t *o, const char *key, double *out, bool required)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return required ? -1 : 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

int sim_dc_load_json(const char *path, sim_dc *dc, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    memset(dc, 0, sizeof(*dc));
    int rc = -1;
    json_t *hosts = json_object_get(root, "hosts"), *vms = json_object_get(root, "vm_types");
    if (!json_is_array(hosts) || !json_array_size(hosts) ||
        json_array_size(hosts) > SIM_MAX_TYPES) {
        snprintf(err, errlen, "%s: \"hosts\" must be an array of 1..%d host types", path,
                 SIM_MAX_TYPES);
        goto out;
    }
    size_t i;
    json_t *h;
    json_array_foreach(hosts, i, h)
    {
        sim_host_type *t = &dc->htypes[i];
        double cores = 1, count = 1, mips = 0, ram = 0, bw = 1000;
        const char *name = json_string_value(json_object_get(h, "name"));
        json_t *pw = json_object_get(h, "power_w");
        if (num(h, "cores", &cores, false) || num(h, "count", &count, false) ||
            num(h, "core_mips", &mips, true) || num(h, "ram_mb", &ram, true) ||
            num(h, "bw_mbps", &bw, false) || !json_is_array(pw) ||
            json_array_size(pw) != SCHED_POWER_PTS || cores < 1 || mips <= 0 || count < 0) {
            snprintf(err, errlen,
                     "%s: hosts[%zu] needs core_mips, ram_mb and power_w (%d watts at 0..100%%), "
                     "optional cores, count, bw_mbps",
                     path, i, SCHED_POWER_PTS);
            goto out;
        }
        snprintf(t->name, sizeof(t->name), "%s", name ? name : "host");
        t->cores = (int)cores;
        t->count = (int)count;
        t->core_mips = mips;
        t->ram_mb = ram;
        t->bw_mbps = bw;
        for (int k = 0; k < SCHED_POWER_PTS; k++)
            t->power.watts[k] = json_number_value(json_array_get(pw, (size_t)k));
        dc->nhosts += t->count;
        dc->nhtypes++;
    }
    if (vms) {
        if (!json_is_array(vms) || !json_array_size(vms) || json_array_size(vms) > SIM_MAX_TYPES) {
            snprintf(err, errlen, "%s: \"vm_types\" must be an array of 1..%d types", path,
                     SIM_MAX_TYPES);
            goto out;
        }
        json_array_foreach(vms, i, h)
        {
            sim_vm_type *t = &dc->vtypes[i];
            double mips = 0, ram = 0, bw = 100, vcpus = 1;
            const char *name = json_string_value(json_object_get(h, "name"));
            if (num(h, "mips", &mips, true) || num(h, "ram_mb", &ram, true) ||
                num(h, "bw_mbps", &bw, false) || num(h, "vcpus", &vcpus, false) || mips <= 0 ||
                vcpus < 1) {
                snprintf(err, errlen,
                         "%s: vm_types[%zu] needs mips and ram_mb (optional bw_mbps, vcpus)", path,
                         i);
                goto out;
            }
            snprintf(t->name, sizeof(t->name), "%s", name ? name : "vm");
            t->mips = mips;
            t->ram_mb = ram;
            t->bw_mbps = bw;
            t->vcpus = (int)vcpus;
            dc->nvtypes++;
        }
    } else {
        sim_dc def;
        sim_dc_beloglazov(&def, 2);
        dc->nvtypes = def.nvtypes;
        memcpy(dc->vtypes, def.vtypes, sizeof(dc->vtypes));
    }
    if (dc->nhosts <= 0) {
        snprintf(err, errlen, "%s: no hosts (all counts are 0)", path);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}
