/*
 * cpupin.h - parsing and checking of a VM's thread pins: the per-vCPU pin
 * ("VCPU:HOSTCPUS[,VCPU:HOSTCPUS...]", host CPUs in cpuset syntax) and the
 * emulator pin (cpuset syntax, QEMU's threads that are not vCPUs). Pure: no
 * I/O; the agent (agent/agent_pin.c) turns the masks into sched_setaffinity.
 */
#ifndef YUN_CPUPIN_H
#define YUN_CPUPIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPUPIN_MAX_CPUS  512 /* host CPUs a mask can name */
#define CPUPIN_MAX_VCPUS 64  /* vCPUs a pin can name (the spec's cap, MAX_VCPUS) */

struct cpumask {
    uint64_t w[CPUPIN_MAX_CPUS / 64];
};

struct cpupin {
    int n; /* entries, each vCPU at most once */
    struct {
        int vcpu;
        struct cpumask cpus;
    } e[CPUPIN_MAX_VCPUS];
};

bool cpumask_has(const struct cpumask *m, int cpu);
bool cpumask_empty(const struct cpumask *m);
/* Whether every CPU of a is in b. */
bool cpumask_subset(const struct cpumask *a, const struct cpumask *b);
/* The highest CPU in m, or -1 when empty. */
int cpumask_last(const struct cpumask *m);

/* "0-1,3" into *m. what names the field in the message ("emulator-pin").
 * 0, or -1 with a one-line reason. */
int cpumask_parse(const char *s, const char *what, struct cpumask *m, char *err, size_t errlen);

/* "0:2,1:3-4" into *p: syntax and each vCPU at most once; "" is no pin. */
int cpupin_parse(const char *s, struct cpupin *p, char *err, size_t errlen);

/* Checks a VM's cpu_pin and emulator_pin ("" = none) against its vCPU
 * count, the host's CPUs (ncpus; 0 = unknown, not checked) and its cpuset
 * ("" = none: any host CPU). 0, or -1 naming the limit. */
int cpupin_validate(const char *cpu_pin, const char *emulator_pin, int vcpus, const char *cpuset,
                    int ncpus, char *err, size_t errlen);

#endif
