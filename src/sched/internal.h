/* internal.h - helpers shared between the scheduler's source files only. */
#ifndef YUN_SCHED_INTERNAL_H
#define YUN_SCHED_INTERNAL_H

#include "sched/sched.h"

/* What a detector needs to know about a host: total CPU demand, the summed
 * utilisation history (host-capacity units, newest first, untrimmed) and the
 * largest VM RAM (for the migration-time term of LR). */
typedef struct sched_host_sig {
    double req_mips;
    double max_ram;
    int n;     /* trimmed history length (no all-zero tail) */
    int depth; /* entries of hist summed: what the detector reads */
    double hist[SCHED_HIST];
} sched_host_sig;

/* history depth a detector needs: none for THR, the LR window, else all */
int sched_sig_depth(const sched_consol_opts *o);
void sched_sig_build(const sched_model *m, int host, int depth, sched_host_sig *s);
void sched_sig_add(const sched_model *m, int host, const sched_vm *v, sched_host_sig *s);
bool sched_sig_overloaded(const sched_host *h, const sched_host_sig *s, const sched_consol_opts *o);

#endif
