/*
 * opts.c - yund's option table and what is made from it (opts.h): the
 * getopt tables, --help and the roff of yund(8).
 */
#include "daemon/opts.h"
#include "lib/roff.h"
#include "lib/version.h"

#include <string.h>

const struct yund_opt yund_opts[] = {
    {"state-dir", 's', 1, required_argument, "DIR",
     "state directory (default /var/lib/yun, env YUN_STATE_DIR)"},
    {"config", 'c', 1, required_argument, "FILE",
     "config file of 'key = value' lines (default <state-dir>/yund.conf if it exists)"},
    {"set", 'o', 1, required_argument, "KEY=VALUE", "override one setting (repeatable)"},
    {"store", 'S', 0, required_argument, "SPEC",
     "the state of record: postgres://... (PostgreSQL) or a SQLite file "
     "(default <state-dir>/yun.db; setting store)"},
    {"daemon", 'd', 1, no_argument, NULL, "detach and log to <state-dir>/yund.log"},
    {"verbose", 'v', 1, no_argument, NULL, "debug logging"},
    {"help", 'h', 1, no_argument, NULL, "this help"},
    {"version", 'V', 0, no_argument, NULL, "print the version and the git commit, and exit"},
    {"man", 'M', 0, no_argument, NULL, "print this manual page (roff) and exit"},
    {"routes", 'R', 0, optional_argument, "json", "print the API's route table and exit"},
    {"role", 'r', 0, required_argument, "ROLE",
     "all (default: the all-in-one), controller or agent"},
    {"join", 'j', 0, required_argument, "URL[,URL]",
     "agent: the controllers to join (setting join)"},
    {"token-file", 't', 0, required_argument, "F",
     "agent: the join token (setting join_token_file)"},
    {"failpoints", 'F', 0, no_argument, NULL, NULL},
    {0, 0, 0, 0, 0, 0},
};

static const char settings[] =
    "state_dir store socket listen token_file qemu qemu_img accel image_builder "
    "log_level log_file cpu_overcommit memory_overcommit host_cpus host_memory "
    "reserved_memory stop_timeout reconcile_interval detach_timeout max_body "
    "max_connections role host_name host_labels agent_listen agent_address "
    "join join_token_file heartbeat_ms host_dead_after advertise_url leader_lease_ms "
    "placement_policy host_max_vms ksm ksm_free_percent ksm_psi ksm_min_saving memory_margin "
    "balloon_policy balloon_interval_ms balloon_host_reserve balloon_guest_reserve "
    "balloon_psi_some balloon_step_pct";

#define NOPTS (sizeof yund_opts / sizeof yund_opts[0])

const struct option *yund_getopt_long(void)
{
    static struct option o[NOPTS];
    for (size_t i = 0; i < NOPTS; i++)
        o[i] = (struct option){yund_opts[i].name, yund_opts[i].has_arg, 0, yund_opts[i].val};
    return o;
}

const char *yund_getopt_short(void)
{
    static char s[2 * NOPTS + 1];
    size_t n = 0;
    for (const struct yund_opt *o = yund_opts; o->name; o++) {
        if (!o->is_short)
            continue;
        s[n++] = (char)o->val;
        if (o->has_arg == required_argument)
            s[n++] = ':';
    }
    s[n] = 0;
    return s;
}

/* "-s, --state-dir DIR", "--routes[=json]" */
static void opt_synopsis(const struct yund_opt *o, char *buf, size_t len)
{
    int n = 0;
    if (o->is_short)
        n = snprintf(buf, len, "-%c, ", o->val);
    if (!o->arg)
        snprintf(buf + n, len - (size_t)n, "--%s", o->name);
    else if (o->has_arg == optional_argument)
        snprintf(buf + n, len - (size_t)n, "--%s[=%s]", o->name, o->arg);
    else
        snprintf(buf + n, len - (size_t)n, "--%s %s", o->name, o->arg);
}

void yund_usage(FILE *f)
{
    fputs("usage: yund [options]\n", f);
    for (const struct yund_opt *o = yund_opts; o->name; o++) {
        if (!o->help)
            continue;
        char syn[64];
        opt_synopsis(o, syn + 4, sizeof syn - 4);
        memcpy(syn, "    ", 4);
        fprintf(f, "  %-26s %s\n", o->is_short ? syn + 4 : syn, o->help);
    }
    fprintf(f, "settings: %s\n", settings);
    fputs("yund stops on SIGTERM and leaves every VM running; restart it to re-attach.\n", f);
}

void yund_man(FILE *f)
{
    roff_header(f, "yund", 8, yun_version(), "the yun virtualization daemon");
    fputs(".SH SYNOPSIS\n.B yund\n[\\fIoptions\\fR]\n.SH DESCRIPTION\n", f);
    roff_puts(f, "yund runs QEMU virtual machines and answers yun's REST API on a Unix socket "
                 "(and TCP when listen is set). It runs as one of three roles: all (the "
                 "all-in-one: controller and agent in one process), controller (the state of "
                 "record and the API for a cluster) or agent (one host's QEMUs). "
                 "Stopping yund never stops a VM: a new yund re-attaches to the running QEMUs.");
    fputs("\n.SH OPTIONS\n", f);
    for (const struct yund_opt *o = yund_opts; o->name; o++) {
        if (!o->help)
            continue;
        char syn[64];
        opt_synopsis(o, syn, sizeof syn);
        fputs(".TP\n.B ", f);
        roff_puts(f, syn);
        fputs("\n", f);
        roff_puts(f, o->help);
        fputs("\n", f);
    }
    fputs(".SH SETTINGS\nKeys of the config file (and of \\-\\-set):\n.PP\n", f);
    roff_puts(f, settings);
    fputs("\n.SH SIGNALS\n.TP\n.B SIGTERM, SIGINT\nstop (VMs keep running)\n"
          ".TP\n.B SIGHUP\nreopen the log file\n"
          ".SH FILES\n.TP\n.I /etc/yun/yund.conf\nthe packaged config file\n"
          ".TP\n.I /var/lib/yun\nthe state directory: database, disks, consoles, the API socket\n"
          ".SH SEE ALSO\n.BR yun (1)\n",
          f);
}
