/*
 * man.c - yun(1) in roff, made from the command table (cmdtable.h) like
 * --help and the completion script, so the page cannot drift from them:
 * `yun __man` prints it (the package build writes it with the new binary).
 */
#include "cli/cmdtable.h"
#include "lib/roff.h"
#include "lib/version.h"

#include <string.h>

static void man_opt(const struct cli_opt *o, FILE *f)
{
    char v[128];
    cli_opt_value(o, v, sizeof v);
    fputs(".TP\n.B ", f);
    if (o->short_name)
        fprintf(f, "\\-%c, ", o->short_name);
    fputs("\\-\\-", f);
    roff_puts(f, o->name);
    if (o->value) {
        fputs(" \\fI", f);
        roff_puts(f, v);
        fputs("\\fR", f);
    }
    fputs("\n", f);
    roff_puts(f, o->help);
    if (o->flags & CLI_OPT_REPEAT)
        fputs(" (may be repeated)", f);
    fputs("\n", f);
}

void cli_man(const struct cli_cmd *const *t, FILE *f)
{
    roff_header(f, "yun", 1, yun_version(), "the yun command-line client");
    fputs(".SH SYNOPSIS\n.B yun\n[\\fIglobal options\\fR] \\fICOMMAND\\fR [\\fIarguments\\fR] "
          "[\\fIoptions\\fR]\n.SH DESCRIPTION\n",
          f);
    roff_puts(f, "yun talks to yund's REST API, over its Unix socket or over TCP with --url and "
                 "--token. Every command answers --help; `yun completion bash` prints the "
                 "completion script.");
    fputs("\n.SH GLOBAL OPTIONS\n", f);
    for (const struct cli_opt *o = cli_global_opts; o->name; o++)
        man_opt(o, f);
    fputs(".SH COMMANDS\n", f);
    for (const struct cli_cmd *const *part = t; *part; part++)
        for (const struct cli_cmd *c = *part; c->words; c++) {
            if (!c->run || (c->flags & CLI_CMD_HIDDEN))
                continue;
            char syn[512];
            cli_synopsis(c, syn, sizeof syn);
            fputs(".SS ", f);
            roff_puts(f, syn);
            fputs("\n", f);
            roff_puts(f, c->summary);
            fputs("\n", f);
            if (c->alias) {
                fputs(".br\nAlso: ", f);
                roff_puts(f, c->alias);
                fputs("\n", f);
            }
            for (const struct cli_opt *o = c->opts; o && o->name; o++)
                man_opt(o, f);
            if (c->more) {
                fputs(".PP\n", f);
                roff_puts(f, c->more);
                fputs("\n", f);
            }
        }
    fputs(".SH ENVIRONMENT\n.TP\n.B YUN_SOCKET, YUN_STATE_DIR, YUN_URL, YUN_TOKEN\n"
          "where yund is and how to reach it (see the global options)\n"
          ".SH EXIT STATUS\n0 on success, 2 on a usage error, 1 on any other error "
          "(with a one\\-line reason).\n.SH SEE ALSO\n.BR yund (8)\n",
          f);
}
