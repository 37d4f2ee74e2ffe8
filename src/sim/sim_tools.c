/* sim_tools.c - `yun sim place`, `yun sim synth` and `yun sim ilp`: bulk
 * placement timing with explanations, synthetic trace export, and the ILP vs
 * heuristic comparison. */
#include "sim/sim.h"
#include "sim/sim_cli_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* cloud-like VM shapes for placement experiments: vCPUs, MIPS per vCPU, RAM MB */
static const struct {
    int vcpus;
    double mips, ram;
} shapes[4] = {{1, 2000, 2048}, {2, 2000, 4096}, {4, 2000, 8192}, {8, 2000, 16384}};

static void build_cloud(sched_model *m, long nhosts, long nvms, long cores, double mips, double ram,
                        double ratio, sched_rng *rng)
{
    sched_model_init(m);
    for (long i = 0; i < nhosts; i++) {
        sched_host h;
        sched_host_defaults(&h);
        snprintf(h.name, sizeof(h.name), "h%ld", i);
        h.cores = (int)cores;
        h.core_mips = mips;
        h.ram_mb = ram;
        h.cpu_ratio = ratio;
        double idle = 100 + 2 * cores, peak = idle * 2.5;
        for (int k = 0; k < SCHED_POWER_PTS; k++)
            h.power.watts[k] = idle + (peak - idle) * k / 10.0;
        sched_model_add_host(m, &h);
    }
    for (long i = 0; i < nvms; i++) {
        sched_vm v;
        sched_vm_defaults(&v);
        int s = (int)sched_rng_below(rng, 4);
        snprintf(v.name, sizeof(v.name), "vm%ld", i);
        v.vcpus = shapes[s].vcpus;
        v.mips = shapes[s].vcpus * shapes[s].mips;
        v.ram_mb = shapes[s].ram;
        v.req_mips = v.mips * (0.05 + 0.5 * sched_rng_unit(rng));
        sched_model_add_vm(m, &v);
    }
}

int sim_cli_place(int argc, char **argv)
{
    long nvms = 0, nhosts = 0, cores = 32, seed = 1, explain = -1, limit = -1;
    double mips = 2600, ram = 131072, ratio = 4;
    const char *pol = "pack", *fmt = "table";
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return sim_cli_fail("missing value for", a);
        int bad = 0;
        if (!strcmp(a, "--vms"))
            bad = sim_cli_long(v, 1, 100000000, &nvms);
        else if (!strcmp(a, "--hosts"))
            bad = sim_cli_long(v, 1, 100000000, &nhosts);
        else if (!strcmp(a, "--host-cores"))
            bad = sim_cli_long(v, 1, 4096, &cores);
        else if (!strcmp(a, "--host-mips"))
            bad = sim_cli_double(v, 1, &mips);
        else if (!strcmp(a, "--host-ram"))
            bad = sim_cli_double(v, 1, &ram);
        else if (!strcmp(a, "--cpu-ratio"))
            bad = sim_cli_double(v, 0.01, &ratio);
        else if (!strcmp(a, "--seed"))
            bad = sim_cli_long(v, 0, __LONG_MAX__, &seed);
        else if (!strcmp(a, "--explain"))
            bad = sim_cli_long(v, 0, 100000000, &explain);
        else if (!strcmp(a, "--limit"))
            bad = sim_cli_long(v, 0, 100000000, &limit);
        else if (!strcmp(a, "--policy"))
            pol = v;
        else if (!strcmp(a, "--format") || !strcmp(a, "-o"))
            fmt = v;
        else
            return sim_cli_fail("unknown option for place", a);
        if (bad)
            return sim_cli_fail("bad value for", a);
    }
    if (nvms <= 0 || nhosts <= 0)
        return sim_cli_fail("place needs --vms N and --hosts N", NULL);
    if (explain >= nvms)
        return sim_cli_fail("--explain index beyond --vms", NULL);
    sched_place_opts o = {0};
    if (sched_policy_parse(pol, &o.policy))
        return sim_cli_fail("unknown placement policy", pol);
    sched_rng rng;
    sched_rng_seed(&rng, (uint64_t)seed);
    o.rng = &rng;
    if (limit < 0) {
        long l = nhosts / 20;
        limit = l < 100 ? 100 : l;
    }
    o.score_limit = (int)limit;
    sched_model m;
    build_cloud(&m, nhosts, nvms, cores, mips, ram, ratio, &rng);
    double t0 = sim_cli_now();
    int left = 0;
    if (explain < 0) {
        left = sched_place_all(&m, &o);
    } else {
        for (long i = 0; i < nvms; i++) {
            if (i == explain)
                continue;
            int h = sched_place(&m, (int)i, &o, NULL);
            if (h < 0 || sched_model_attach(&m, (int)i, h))
                left++;
        }
    }
    double dt = sim_cli_now() - t0;
    int used = 0;
    for (int h = 0; h < m.nhosts; h++)
        used += m.hosts[h].nvms > 0;
    if (!strcmp(fmt, "json")) {
        json_t *j =
            json_pack("{s:s, s:I, s:I, s:i, s:i, s:i, s:f}", "policy", sched_policy_name(o.policy),
                      "vms", (json_int_t)nvms, "hosts", (json_int_t)nhosts, "unplaced", left,
                      "hosts_used", used, "score_limit", (int)limit, "seconds", dt);
        json_dumpf(j, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(j);
    } else {
        printf("policy        %s (score limit %ld)\n", sched_policy_name(o.policy), limit);
        printf("placed        %ld of %ld VMs on %d of %ld hosts\n", nvms - left, nvms, used,
               nhosts);
        printf("time          %.3f s (%.2f us per VM)\n", dt, dt * 1e6 / (double)nvms);
    }
    if (explain >= 0) {
        sched_explain ex = {0};
        ex.hosts = calloc((size_t)m.nhosts, sizeof(sched_host_verdict));
        int h = sched_place(&m, (int)explain, &o, &ex);
        printf("explain vm%ld: %s\n", explain, ex.reason);
        for (int r = 0; r < SCHED_REJ__COUNT; r++)
            if (ex.counts[r])
                printf("  %-20s %d\n", r ? sched_reject_name((sched_reject)r) : "passed",
                       ex.counts[r]);
        int shown = 0;
        for (int i = 0; ex.hosts && i < m.nhosts && shown < 10; i++) {
            if (ex.hosts[i].rejected == SCHED_REJ__COUNT)
                continue;
            if (ex.hosts[i].rejected == SCHED_REJ_NONE)
                printf("  %-10s score %.5g%s\n", m.hosts[i].name, ex.hosts[i].score,
                       i == h ? "  <- chosen" : "");
            else
                printf("  %-10s rejected by %s\n", m.hosts[i].name,
                       sched_reject_name(ex.hosts[i].rejected));
            shown++;
        }
        free(ex.hosts);
    }
    sched_model_free(&m);
    return 0;
}

int sim_cli_synth(int argc, char **argv)
{
    long nvms = 0, steps = 288, seed = 1;
    double interval = 300;
    const char *out = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return sim_cli_fail("missing value for", a);
        int bad = 0;
        if (!strcmp(a, "--vms"))
            bad = sim_cli_long(v, 1, 100000000, &nvms);
        else if (!strcmp(a, "--steps"))
            bad = sim_cli_long(v, 2, 10000000, &steps);
        else if (!strcmp(a, "--seed"))
            bad = sim_cli_long(v, 0, __LONG_MAX__, &seed);
        else if (!strcmp(a, "--interval"))
            bad = sim_cli_double(v, 1e-3, &interval);
        else if (!strcmp(a, "--out"))
            out = v;
        else
            return sim_cli_fail("unknown option for synth", a);
        if (bad)
            return sim_cli_fail("bad value for", a);
    }
    if (nvms <= 0)
        return sim_cli_fail("synth needs --vms N", NULL);
    sim_trace t;
    if (sim_trace_synth((int)nvms, (int)steps, interval, (uint64_t)seed, &t))
        return sim_cli_fail("out of memory", NULL);
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        sim_trace_free(&t);
        return sim_cli_fail("cannot write", out);
    }
    fprintf(f, "vm,timestamp,cpu\n");
    for (int v = 0; v < t.nvms; v++)
        for (int s = 0; s < t.nsteps; s++)
            fprintf(f, "vm%d,%.0f,%g\n", v, s * interval, sim_trace_u(&t, v, s) * 100);
    sim_trace_free(&t);
    if (out && fclose(f))
        return sim_cli_fail("cannot write", out);
    return 0;
}

int sim_cli_ilp(int argc, char **argv)
{
    long nvms = 0, nhosts = 0, seed = 1, tl = 2000;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return sim_cli_fail("missing value for", a);
        int bad = 0;
        if (!strcmp(a, "--vms"))
            bad = sim_cli_long(v, 1, 10000, &nvms);
        else if (!strcmp(a, "--hosts"))
            bad = sim_cli_long(v, 1, 10000, &nhosts);
        else if (!strcmp(a, "--seed"))
            bad = sim_cli_long(v, 0, __LONG_MAX__, &seed);
        else if (!strcmp(a, "--time-limit"))
            bad = sim_cli_long(v, 1, 3600000, &tl);
        else
            return sim_cli_fail("unknown option for ilp", a);
        if (bad)
            return sim_cli_fail("bad value for", a);
    }
    if (nvms <= 0 || nhosts <= 0)
        return sim_cli_fail("ilp needs --vms N and --hosts N", NULL);
    sched_rng rng;
    sched_rng_seed(&rng, (uint64_t)seed);
    sched_model m;
    /* small hosts (8 cores, 32 GB, no overcommit) so packing is non-trivial */
    build_cloud(&m, nhosts, nvms, 8, 2000, 32768, 1, &rng);
    sched_ilp_result r;
    double t0 = sim_cli_now();
    int rc = sched_ilp_pack(&m, (int)tl, &r);
    double dt = sim_cli_now() - t0;
    if (rc) {
        free(r.assign);
        sched_model_free(&m);
        return sim_cli_fail("infeasible: the VMs do not fit on the hosts", NULL);
    }
    printf("ilp           %d hosts (%s%s) in %.3f s\n", r.hosts_used,
           r.status == 0 ? "optimal" : "best found within the time limit",
           r.used_fallback ? ", heuristic kept" : "", dt);
    if (r.heuristic_hosts >= 0)
        printf("first-fit-dec %d hosts (+%d, %.1f%% above the ILP)\n", r.heuristic_hosts,
               r.heuristic_hosts - r.hosts_used,
               r.hosts_used ? 100.0 * (r.heuristic_hosts - r.hosts_used) / r.hosts_used : 0.0);
    else
        printf("first-fit-dec could not place every VM\n");
    free(r.assign);
    sched_model_free(&m);
    return 0;
}
