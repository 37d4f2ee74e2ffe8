/* sim_cli.c - `yun sim`: run | place | synth | ilp. Parses options, loads
 * traces and the datacentre, runs the engine and prints results. */
#include "sim/sim_cli.h"
#include "sim/sim.h"
#include "sim/sim_cli_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double sim_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char usage_main[] =
    "usage: yun sim <command> [options]\n"
    "commands:\n"
    "  run     simulate dynamic consolidation over a trace (PlanetLab dir, CSV or synthetic)\n"
    "  place   place many VMs at once with a placement policy and report time and result\n"
    "  synth   write a seeded synthetic trace as CSV (vm,timestamp,cpu%)\n"
    "  ilp     compare optimal (GLPK) packing with the first-fit-decreasing heuristic\n"
    "run 'yun sim <command> --help' for the options of a command\n";

static const char usage_run[] =
    "usage: yun sim run (--trace DIR | --csv FILE | --synth NVMS) [options]\n"
    "  --trace DIR         PlanetLab trace directory (one file per VM, one CPU% per line)\n"
    "  --csv FILE          CSV trace: vm,timestamp,cpu% (header optional)\n"
    "  --interval S        sample interval of the CSV / synthetic trace (300)\n"
    "  --synth N           N synthetic VMs (see --seed, --steps)\n"
    "  --steps N           synthetic samples per VM (288 = 24 h)\n"
    "  --policy P          npa | dvfs | DET-SEL-PARAM with DET thr|iqr|mad|lr|lrr and\n"
    "                      SEL mmt|rs|mc|mu, e.g. lr-mmt-1.2, thr-mmt-0.8 (default lr-mmt-1.2)\n"
    "  --compat cloudsim   reproduce CloudSim 3.0.3 semantics (see docs/sim.md)\n"
    "  --dc FILE           hosts and VM types as JSON (default: Beloglazov & Buyya 2012 set)\n"
    "  --hosts N           number of hosts of the built-in set (800)\n"
    "  --vm-types mod|block  VM i gets type i % 4 (mod, default) or blocks of n/4 VMs\n"
    "  --order name|upper|dir  PlanetLab file order: byte order of names (default),\n"
    "                      upper-cased names (Windows/macOS listing; default with\n"
    "                      --compat cloudsim), raw directory order\n"
    "  --lr tricube|ols    LR fit: tricube-weighted (default) or plain least squares\n"
    "                      (default with --compat cloudsim)\n"
    "  --initial pabfd|first-fit  initial placement (default pabfd; first-fit with\n"
    "                      --compat cloudsim)\n"
    "  --underload U       drain only hosts below utilisation U (default 1 = any host)\n"
    "  --sample K          PABFD scores K random hosts instead of all (large scale)\n"
    "  --drain-limit N     stop draining after N failed drains in a row (large scale)\n"
    "  --duration S        simulated seconds (default: the trace length)\n"
    "  --seed N            seed for random selection, sampling and synthetic traces (1)\n"
    "  --format table|json|csv  output format (table; -o is an alias outside `yun`,\n"
    "                      whose global -o is json|table only)\n"
    "  --svg FILE          plot active hosts and power over time\n"
    "  --progress          progress on stderr\n";

static const char usage_place[] =
    "usage: yun sim place --vms N --hosts N [options]\n"
    "  --policy P          pack | spread | first-fit | round-robin | random | load-aware |\n"
    "                      power-aware (default pack)\n"
    "  --limit K           score at most K hosts that pass the filters (0 = all; default\n"
    "                      max(100, 5% of hosts) as kube-scheduler)\n"
    "  --host-cores N --host-mips M --host-ram MB --cpu-ratio R   host shape (32, 2600, 131072, "
    "4)\n"
    "  --explain I         print the full explanation for VM I (placed last)\n"
    "  --seed N            seed (1)\n"
    "  --format table|json output format\n";

static const char usage_synth[] =
    "usage: yun sim synth --vms N [--steps 288] [--interval 300] [--seed 1] [--out FILE]\n";

static const char usage_ilp[] =
    "usage: yun sim ilp --vms N --hosts N [--seed 1] [--time-limit MS]\n"
    "  packs N random VMs on identical hosts optimally (GLPK) and by first-fit decreasing\n";

/* options are read by hand (no getopt): the CLI may call us more than once */
static bool is_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return true;
    return false;
}

int sim_cli_fail(const char *msg, const char *arg)
{
    fprintf(stderr, "yun sim: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

int sim_cli_long(const char *s, long lo, long hi, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    /* ERANGE: strtol saturated, so the text was beyond long itself */
    if (!*s || *e || errno || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int sim_cli_double(const char *s, double lo, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    /* infinities and NaN are refused: every value ends up in arithmetic */
    if (!*s || *e || errno || !isfinite(v) || !(v >= lo))
        return -1;
    *out = v;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    if (is_help(argc, argv)) {
        fputs(usage_run, stdout);
        return 0;
    }
    const char *trace = NULL, *csv = NULL, *dcfile = NULL, *svg = NULL, *fmt = "table";
    const char *policy = "lr-mmt-1.2";
    long synth = 0, steps = 288, nhosts = 0, seed = 1, sample = 0, drain_limit = 0;
    double interval = 300, duration = 0, underload = -1;
    bool compat = false, progress = false, block = false;
    int order = -1;
    int lr = -1, initial = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = strcmp(a, "--progress") != 0;
        if (takes && !v)
            return sim_cli_fail("missing value for", a);
        if (!strcmp(a, "--trace"))
            trace = v;
        else if (!strcmp(a, "--csv"))
            csv = v;
        else if (!strcmp(a, "--dc"))
            dcfile = v;
        else if (!strcmp(a, "--svg"))
            svg = v;
        else if (!strcmp(a, "--format") || !strcmp(a, "-o"))
            fmt = v;
        else if (!strcmp(a, "--policy"))
            policy = v;
        else if (!strcmp(a, "--compat")) {
            if (strcmp(v, "cloudsim") && strcmp(v, "none"))
                return sim_cli_fail("--compat takes cloudsim or none", v);
            compat = !strcmp(v, "cloudsim");
        } else if (!strcmp(a, "--vm-types")) {
            if (strcmp(v, "mod") && strcmp(v, "block"))
                return sim_cli_fail("--vm-types takes mod or block", v);
            block = !strcmp(v, "block");
        } else if (!strcmp(a, "--order")) {
            if (!strcmp(v, "name"))
                order = (int)SIM_ORDER_NAME;
            else if (!strcmp(v, "upper"))
                order = (int)SIM_ORDER_UPPER;
            else if (!strcmp(v, "dir"))
                order = (int)SIM_ORDER_DIR;
            else
                return sim_cli_fail("--order takes name, upper or dir", v);
        } else if (!strcmp(a, "--initial")) {
            if (strcmp(v, "first-fit") && strcmp(v, "pabfd"))
                return sim_cli_fail("--initial takes first-fit or pabfd", v);
            initial = !strcmp(v, "pabfd");
        } else if (!strcmp(a, "--lr")) {
            if (strcmp(v, "tricube") && strcmp(v, "ols"))
                return sim_cli_fail("--lr takes tricube or ols", v);
            lr = !strcmp(v, "tricube");
        } else if (!strcmp(a, "--synth")) {
            if (sim_cli_long(v, 1, 10000000, &synth))
                return sim_cli_fail("--synth needs a VM count", v);
        } else if (!strcmp(a, "--steps")) {
            if (sim_cli_long(v, 2, 1000000, &steps))
                return sim_cli_fail("--steps needs a count >= 2", v);
        } else if (!strcmp(a, "--hosts")) {
            if (sim_cli_long(v, 1, 100000000, &nhosts))
                return sim_cli_fail("--hosts needs a count", v);
        } else if (!strcmp(a, "--seed")) {
            if (sim_cli_long(v, 0, __LONG_MAX__, &seed))
                return sim_cli_fail("--seed needs a non-negative integer", v);
        } else if (!strcmp(a, "--drain-limit")) {
            if (sim_cli_long(v, 0, 100000000, &drain_limit))
                return sim_cli_fail("--drain-limit needs a count", v);
        } else if (!strcmp(a, "--sample")) {
            if (sim_cli_long(v, 0, 100000000, &sample))
                return sim_cli_fail("--sample needs a count", v);
        } else if (!strcmp(a, "--interval")) {
            if (sim_cli_double(v, 1e-3, &interval))
                return sim_cli_fail("--interval needs seconds > 0", v);
        } else if (!strcmp(a, "--duration")) {
            if (sim_cli_double(v, 0, &duration))
                return sim_cli_fail("--duration needs seconds", v);
        } else if (!strcmp(a, "--underload")) {
            if (sim_cli_double(v, 0, &underload) || underload > 1)
                return sim_cli_fail("--underload needs a utilisation in 0..1", v);
        } else if (!strcmp(a, "--progress")) {
            progress = true;
            continue;
        } else
            return sim_cli_fail("unknown option for run", a);
        i++;
    }
    if (!!trace + !!csv + !!synth != 1)
        return sim_cli_fail("give exactly one of --trace, --csv, --synth", NULL);
    if (strcmp(fmt, "table") && strcmp(fmt, "json") && strcmp(fmt, "csv"))
        return sim_cli_fail("--format takes table, json or csv", fmt);
    sim_opts o = {0};
    if (sim_policy_parse(policy, &o))
        return sim_cli_fail("unknown policy (npa, dvfs, thr-mmt-0.8, lr-mc-1.2, ...)", policy);
    o.cloudsim = compat;
    o.seed = (uint64_t)seed;
    o.duration = duration;
    o.progress = progress;
    o.vm_type_block = block;
    o.keep_series = true;
    o.consol.stale_util = compat;
    o.consol.leaky_exclusion = compat;
    /* the reference figures are reproduced with CloudSim's plain least squares
     * and its first-fit initial placement; yun defaults to the paper's tricube
     * weighting and PABFD from the start */
    o.consol.lr_weighted = lr < 0 ? !compat : lr;
    o.initial_pabfd = initial < 0 ? !compat : initial;
    o.consol.sample = (int)sample;
    o.consol.drain_fail_limit = (int)drain_limit;
    o.consol.underload_thr = underload >= 0 ? underload : 1.0;
    char err[512];
    sim_trace tr;
    double t0 = sim_cli_now();
    int rc;
    if (trace)
        /* CloudSim takes File.listFiles() order, which Java leaves to the file
         * system; compat mode uses the case-insensitive listing order of the
         * Windows/macOS machines the reference setup came from */
        rc = sim_trace_load_planetlab_order(trace,
                                            order >= 0 ? (sim_order)order
                                            : compat   ? SIM_ORDER_UPPER
                                                       : SIM_ORDER_NAME,
                                            &tr, err, sizeof(err));
    else if (csv)
        rc = sim_trace_load_csv(csv, interval, &tr, err, sizeof(err));
    else if ((long long)synth * steps > SIM_TRACE_MAX_CELLS)
        return sim_cli_fail("--synth x --steps is more samples than the simulator holds (2^28)",
                            NULL);
    else {
        rc = sim_trace_synth((int)synth, (int)steps, interval, (uint64_t)seed, &tr);
        snprintf(err, sizeof(err), "out of memory for the synthetic trace");
    }
    if (rc)
        return sim_cli_fail(err, NULL);
    sim_dc dc;
    if (dcfile) {
        if (sim_dc_load_json(dcfile, &dc, err, sizeof(err))) {
            sim_trace_free(&tr);
            return sim_cli_fail(err, NULL);
        }
    } else
        sim_dc_beloglazov(&dc, (int)nhosts);
    if (o.duration <= 0 && (trace || compat))
        o.duration = tr.nsteps * tr.interval; /* 288 x 300 s = 86400 s */
    /* the engine steps through the duration one interval at a time */
    if (o.duration / tr.interval > SIM_TRACE_MAX_STEPS) {
        snprintf(err, sizeof(err), "--duration %g s is more than %d intervals of %g s", o.duration,
                 SIM_TRACE_MAX_STEPS, tr.interval);
        sim_trace_free(&tr);
        return sim_cli_fail(err, NULL);
    }
    if (progress)
        fprintf(stderr, "sim: %d VMs x %d samples loaded in %.2f s, %d hosts\n", tr.nvms, tr.nsteps,
                sim_cli_now() - t0, dc.nhosts);
    sim_result res;
    double t1 = sim_cli_now();
    rc = sim_run(&dc, &tr, &o, &res);
    res.wall_s = sim_cli_now() - t1;
    sim_trace_free(&tr);
    if (rc) {
        sim_result_free(&res);
        return sim_cli_fail("simulation failed (out of memory?)", NULL);
    }
    if (!strcmp(fmt, "json"))
        sim_print_json(stdout, policy, &res);
    else if (!strcmp(fmt, "csv"))
        sim_print_csv(stdout, policy, &res, true);
    else
        sim_print_table(stdout, policy, &res);
    if (svg && sim_write_svg(svg, policy, &res)) {
        sim_result_free(&res);
        return sim_cli_fail("cannot write", svg);
    }
    sim_result_free(&res);
    return 0;
}

int sim_cli_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "place")) {
        if (is_help(argc - 1, argv + 1)) {
            fputs(usage_place, stdout);
            return 0;
        }
        return sim_cli_place(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "synth")) {
        if (is_help(argc - 1, argv + 1)) {
            fputs(usage_synth, stdout);
            return 0;
        }
        return sim_cli_synth(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "ilp")) {
        if (is_help(argc - 1, argv + 1)) {
            fputs(usage_ilp, stdout);
            return 0;
        }
        return sim_cli_ilp(argc - 1, argv + 1);
    }
    return sim_cli_fail("unknown command (run, place, synth, ilp)", cmd);
}
