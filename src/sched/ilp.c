/* ilp.c - optimal placement for small problems: bin packing as an integer
 * program solved by GLPK (x[v][h] assignment, y[h] host used, minimise the
 * hosts used), with a time limit and first-fit decreasing as the fallback and
 * the reference point, so users see how far the heuristic is from optimal.
 * GLPK's terminal output is switched off: the library does no I/O. */
#include "sched/sched.h"

#include <glpk.h>
#include <stdlib.h>
#include <string.h>

static int glpk_quiet(void *info, const char *s)
{
    (void)info;
    (void)s;
    return 1; /* swallow all terminal output */
}

static int cmp_size_desc(const void *a, const void *b, void *ctx)
{
    const sched_model *m = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    double sx = m->vms[x].mips, sy = m->vms[y].mips;
    if (sx != sy)
        return sx < sy ? 1 : -1;
    return (x > y) - (x < y);
}

static bool fits(const sched_model *m, int h, int v, const double *cpu, const double *ram,
                 const int *assign)
{
    const sched_host *hh = &m->hosts[h];
    const sched_vm *vm = &m->vms[v];
    if (hh->state != SCHED_HOST_UP)
        return false;
    if (cpu[h] + vm->mips > sched_host_capacity(hh) * hh->cpu_ratio + 1e-9)
        return false;
    if (ram[h] + vm->ram_mb > hh->ram_mb * hh->ram_ratio + 1e-9)
        return false;
    if (vm->group >= 0 && vm->group < m->ngroups &&
        m->groups[vm->group].kind == SCHED_GROUP_ANTI_AFFINITY && m->groups[vm->group].hard)
        for (int o = 0; o < m->nvms; o++)
            if (o != v && assign[o] == h && m->vms[o].group == vm->group)
                return false;
    return true;
}

/* first-fit decreasing on nominal CPU; returns hosts used or -1 if some VM fails */
static int ffd(const sched_model *m, int *assign)
{
    int V = m->nvms, H = m->nhosts, used = 0, rc = 0;
    int *order = malloc((size_t)(V ? V : 1) * sizeof(int));
    double *cpu = calloc((size_t)(H ? H : 1), sizeof(double));
    double *ram = calloc((size_t)(H ? H : 1), sizeof(double));
    if (!order || !cpu || !ram) {
        rc = -1;
        goto out;
    }
    for (int v = 0; v < V; v++) {
        order[v] = v;
        assign[v] = -1;
    }
    qsort_r(order, (size_t)V, sizeof(int), cmp_size_desc, (void *)m);
    for (int k = 0; k < V; k++) {
        int v = order[k], h;
        for (h = 0; h < H; h++)
            if (fits(m, h, v, cpu, ram, assign))
                break;
        if (h == H) {
            rc = -1;
            continue;
        }
        if (cpu[h] == 0 && ram[h] == 0)
            used++;
        assign[v] = h;
        cpu[h] += m->vms[v].mips;
        ram[h] += m->vms[v].ram_mb;
    }
    if (rc == 0)
        rc = used;
out:
    free(order);
    free(cpu);
    free(ram);
    return rc;
}

int sched_ilp_pack(const sched_model *m, int time_limit_ms, sched_ilp_result *r)
{
    int V = m->nvms, H = m->nhosts;
    memset(r, 0, sizeof(*r));
    r->status = -1;
    r->assign = malloc((size_t)(V ? V : 1) * sizeof(int));
    if (!r->assign)
        return -1;
    r->heuristic_hosts = ffd(m, r->assign);
    if (V == 0 || H == 0 || (long)V * H > 200000) { /* too big for an exact answer */
        r->used_fallback = true;
        r->hosts_used = r->heuristic_hosts;
        r->status = r->heuristic_hosts >= 0 ? 1 : -1;
        return r->status >= 0 ? 0 : -1;
    }
    glp_term_hook(glpk_quiet, NULL);
    glp_prob *lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MIN);
    /* columns: x[v*H+h] then y[h] */
    int nx = V * H, ncol = nx + H;
    glp_add_cols(lp, ncol);
    for (int j = 1; j <= ncol; j++) {
        glp_set_col_kind(lp, j, GLP_BV);
        glp_set_obj_coef(lp, j, j > nx ? 1.0 : 0.0);
    }
    /* anti-affinity rows: sum over group members on h <= 1 */
    int ngrp = 0;
    for (int g = 0; g < m->ngroups; g++)
        if (m->groups[g].hard && m->groups[g].kind == SCHED_GROUP_ANTI_AFFINITY)
            ngrp++;
    int nrow = V + 2 * H + ngrp * H + V * H;
    glp_add_rows(lp, nrow);
    size_t cap = (size_t)V * H * 5 + (size_t)H * 4 + 16;
    int *ia = malloc(cap * sizeof(int)), *ja = malloc(cap * sizeof(int));
    double *ar = malloc(cap * sizeof(double));
    int rc = -1;
    if (!ia || !ja || !ar)
        goto out;
    int row = 0, ne = 0;
    for (int v = 0; v < V; v++) { /* each VM on exactly one host */
        glp_set_row_bnds(lp, ++row, GLP_FX, 1, 1);
        for (int h = 0; h < H; h++) {
            ia[++ne] = row;
            ja[ne] = v * H + h + 1;
            ar[ne] = 1;
        }
    }
    for (int h = 0; h < H; h++) { /* cpu and ram capacity when the host is used */
        const sched_host *hh = &m->hosts[h];
        double capc = hh->state == SCHED_HOST_UP ? sched_host_capacity(hh) * hh->cpu_ratio : 0;
        double capr = hh->state == SCHED_HOST_UP ? hh->ram_mb * hh->ram_ratio : 0;
        for (int k = 0; k < 2; k++) {
            glp_set_row_bnds(lp, ++row, GLP_UP, 0, 0);
            for (int v = 0; v < V; v++) {
                ia[++ne] = row;
                ja[ne] = v * H + h + 1;
                ar[ne] = k ? m->vms[v].ram_mb : m->vms[v].mips;
            }
            ia[++ne] = row;
            ja[ne] = nx + h + 1;
            ar[ne] = -(k ? capr : capc);
        }
    }
    for (int g = 0; g < m->ngroups; g++) {
        if (!(m->groups[g].hard && m->groups[g].kind == SCHED_GROUP_ANTI_AFFINITY))
            continue;
        for (int h = 0; h < H; h++) {
            glp_set_row_bnds(lp, ++row, GLP_UP, 0, 1);
            for (int v = 0; v < V; v++) {
                if (m->vms[v].group != g)
                    continue;
                ia[++ne] = row;
                ja[ne] = v * H + h + 1;
                ar[ne] = 1;
            }
        }
    }
    for (int v = 0; v < V; v++) /* x <= y tightens the LP relaxation */
        for (int h = 0; h < H; h++) {
            glp_set_row_bnds(lp, ++row, GLP_UP, 0, 0);
            ia[++ne] = row;
            ja[ne] = v * H + h + 1;
            ar[ne] = 1;
            ia[++ne] = row;
            ja[ne] = nx + h + 1;
            ar[ne] = -1;
        }
    glp_load_matrix(lp, ne, ia, ja, ar);
    /* symmetry breaking among identical hosts is left to the solver's cuts */
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.tm_lim = time_limit_ms > 0 ? time_limit_ms : 1000;
    parm.msg_lev = GLP_MSG_OFF;
    parm.gmi_cuts = GLP_ON;
    parm.mir_cuts = GLP_ON;
    parm.cov_cuts = GLP_ON;
    parm.clq_cuts = GLP_ON;
    int err = glp_intopt(lp, &parm);
    int st = glp_mip_status(lp);
    if ((err == 0 || err == GLP_ETMLIM) && (st == GLP_OPT || st == GLP_FEAS)) {
        int used = (int)(glp_mip_obj_val(lp) + 0.5);
        if (r->heuristic_hosts < 0 || used <= r->heuristic_hosts) {
            for (int v = 0; v < V; v++) {
                r->assign[v] = -1;
                for (int h = 0; h < H; h++)
                    if (glp_mip_col_val(lp, v * H + h + 1) > 0.5)
                        r->assign[v] = h;
            }
            r->hosts_used = used;
            r->status = st == GLP_OPT && err == 0 ? 0 : 1;
        } else { /* solver stopped with something worse than the heuristic */
            r->hosts_used = r->heuristic_hosts;
            r->used_fallback = true;
            r->status = 1;
        }
        rc = 0;
    } else if (err == 0 && st == GLP_NOFEAS) {
        r->status = -1;
        rc = 0;
    } else {
        r->used_fallback = r->heuristic_hosts >= 0;
        r->hosts_used = r->heuristic_hosts;
        r->status = r->heuristic_hosts >= 0 ? 1 : -1;
        rc = r->status >= 0 ? 0 : -1;
    }
out:
    free(ia);
    free(ja);
    free(ar);
    glp_delete_prob(lp);
    glp_term_hook(NULL, NULL);
    return rc;
}
