/*
 * cpu_probe.h - which CPU models this host's QEMU can run with its
 * accelerator: QMP query-cpu-definitions on a QEMU with no machine (about
 * 0.2 s, run once when yund starts, before it serves). A model is usable
 * when QEMU lists no unavailable feature for it (under KVM: the host CPU's
 * flags; under TCG: what TCG emulates) and it is not deprecated.
 */
#ifndef YUN_CPU_PROBE_H
#define YUN_CPU_PROBE_H

#include <stddef.h>

/* Runs qemu (-machine none -accel accel) and writes the usable models'
 * names, comma-separated, into out. 0, or -1 with a one-line err. */
int cpu_probe_run(const char *qemu, const char *accel, char *out, size_t len, char *err,
                  size_t errlen);
/* The same from QMP's output (one JSON object per line, as -qmp stdio
 * writes them): the reply that is a list of definitions. Versioned aliases
 * ("Westmere-v2") are left out: the unversioned name is the one VMs use.
 * 0, or -1 with err when no such reply is there. */
int cpu_probe_parse(const char *qmp_out, char *out, size_t len, char *err, size_t errlen);

#endif
