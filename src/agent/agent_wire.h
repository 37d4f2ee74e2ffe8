/*
 * agent_wire.h - the plain-JSON form of what crosses the agent seam for a
 * VM start (vm.launch): the VM's spec (the fields its QEMU command line,
 * confinement and cgroup limits need), its image, and its attached volumes
 * with their linked-clone chains. The controller encodes
 * (launch_spec_to_json), the agent decodes and validates every field
 * (launch_spec_from_json): the arguments are outside input.
 */
#ifndef YUN_AGENT_WIRE_H
#define YUN_AGENT_WIRE_H

#include <jansson.h>
#include <stddef.h>

#include "compute/confine.h"
#include "lib/yerr.h"
#include "store/records.h"

#define LAUNCH_VOLS_MAX   32 /* CONFINE_VOLS_MAX */
#define LAUNCH_CHAIN_MAX  64 /* a volume and the volumes under it */
#define LAUNCH_CPUS_MAX   256
#define LAUNCH_MEMORY_MAX (16ULL << 20) /* MiB: 16 TiB */

struct launch_vol {
    struct volume_rec rec;        /* id, name, path, format (what qemu_argv uses) */
    struct confine_layer *layers; /* layers[0] is the volume itself */
    int n;
};

struct launch_spec {
    struct vm_rec vm;     /* id, name, cpus, memory_mb, cmdline, machine, accel_used, cpu_*,
                             cpuset, seed, disk, uid, memory_min_mb, memory_swap_mb,
                             memory_high_mb, memory_lock, no_merge; everything else zero */
    struct image_rec img; /* name, format, path, kernel, initrd, cmdline */
    struct launch_vol *vols;
    size_t nvols;
};

/* A new JSON object (NULL when out of memory). */
json_t *launch_spec_to_json(const struct launch_spec *s);
/* 0 and *out filled (free with launch_spec_free), or -1 with
 * YE_INVALID_ARGUMENT naming the field. */
int launch_spec_from_json(json_t *j, struct launch_spec *out, struct yerr *err);
void launch_spec_free(struct launch_spec *s);
/* The volumes as confine.h wants them (n = s->nvols); free() it. */
struct confine_volin *launch_spec_volin(const struct launch_spec *s);

#endif
