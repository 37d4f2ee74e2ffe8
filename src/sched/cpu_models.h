/*
 * cpu_models.h - the named QEMU CPU models yun gives its VMs, newest first,
 * as bit masks, and the cluster baseline: the newest migration-safe model
 * that every host can run. A host's list is what its QEMU reports usable
 * with its accelerator (query-cpu-definitions, compute/cpu_probe.c) within
 * this table. Pure: no I/O.
 */
#ifndef YUN_SCHED_CPU_MODELS_H
#define YUN_SCHED_CPU_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The table's size (every index fits a uint32_t mask). */
int sched_cpu_models_count(void);
/* The index of a model name (exact, case-sensitive), or -1. */
int sched_cpu_model_index(const char *name);
/* The name at index i, or NULL. */
const char *sched_cpu_model_name(int i);
/* false for "max" and "host": what they expose depends on the host, so a VM
 * running them cannot move (QEMU reports them migration-safe: false). */
bool sched_cpu_model_migratable(int i);
/* "a,b,c" -> the bits of the table's names in it (others ignored). */
uint32_t sched_cpu_models_mask(const char *list);
/* The names of mask, in the table's order, comma-separated, into out. */
void sched_cpu_models_list(uint32_t mask, char *out, size_t len);
/* The first (newest) migration-safe model set in every one of masks[0..n),
 * or -1 when n is 0 or they share none. */
int sched_cpu_baseline(const uint32_t *masks, size_t n);

#endif
