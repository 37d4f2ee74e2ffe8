/*
 * agent_launch_incoming.c - the part of vm.launch that makes a live
 * migration's target (ctl/migrate_run.c): "incoming": true gives QEMU
 * -incoming defer (it waits, paused, for migrate-incoming), and "pci"
 * {"DEVICE-ID": [SLOT, FUNCTION], ...} places each of the VM's devices at
 * the PCI address its source QEMU has it (query-pci there), because the
 * device state in the stream loads only into the same layout and a volume
 * hot-plugged on the source sits where a new argv would not put it.
 * Checked as any outside input: "pci" only with "incoming", at most
 * PCI_PINS_MAX devices, ids of [A-Za-z0-9_-], slots 0..31, functions 0..7;
 * every device named must be one this launch's argv makes.
 */
#include "agent/agent_local.h"
#include "compute/qemu_argv.h"
#include "compute/qmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int launch_incoming_parse(json_t *args, struct launch_incoming *in, struct yerr *err)
{
    memset(in, 0, sizeof *in);
    json_t *inc = json_object_get(args, "incoming");
    if (inc && !json_is_boolean(inc))
        return yerr_set(err, YE_INVALID_ARGUMENT, "agent: vm.launch: incoming must be a boolean");
    in->on = json_is_true(inc);
    json_t *pci = json_object_get(args, "pci");
    if (!pci || json_is_null(pci))
        return 0;
    if (!in->on || !json_is_object(pci) || json_object_size(pci) > PCI_PINS_MAX)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "agent: vm.launch: pci is an object of at most %d devices, with "
                        "incoming only",
                        PCI_PINS_MAX);
    const char *id;
    json_t *v;
    json_object_foreach(pci, id, v)
    {
        json_t *s = json_array_get(v, 0), *f = json_array_get(v, 1);
        json_int_t slot = json_integer_value(s), fn = json_integer_value(f);
        if (!qmp_name_ok(id, sizeof(((struct pci_pin *)0)->id) - 1) || !json_is_array(v) ||
            json_array_size(v) != 2 || !json_is_integer(s) || !json_is_integer(f) || slot < 0 ||
            slot > 31 || fn < 0 || fn > 7)
            return yerr_set(err, YE_INVALID_ARGUMENT,
                            "agent: vm.launch: pci.%.40s must be [slot 0..31, function 0..7] of "
                            "a device id of [A-Za-z0-9_-]",
                            id);
        struct pci_pin *p = &in->pins[in->npins++];
        snprintf(p->id, sizeof p->id, "%s", id);
        p->slot = (int)slot;
        p->fn = (int)fn;
    }
    return 0;
}

int launch_incoming_argv(const struct launch_incoming *in, struct qemu_argv *qa, char *why,
                         size_t len)
{
    if (!in->on)
        return 0;
    if (in->npins && qemu_argv_pin_pci(qa, in->pins, in->npins, why, len) < 0)
        return -1;
    char **nv = realloc(qa->argv, (size_t)(qa->argc + 3) * sizeof *nv);
    if (!nv) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    qa->argv = nv;
    char *a1 = strdup("-incoming"), *a2 = strdup("defer");
    if (!a1 || !a2) {
        free(a1);
        free(a2);
        snprintf(why, len, "out of memory");
        return -1;
    }
    nv[qa->argc++] = a1;
    nv[qa->argc++] = a2;
    nv[qa->argc] = NULL;
    return 0;
}
