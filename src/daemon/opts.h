/*
 * opts.h - yund's command-line options, one table (opts.c) from which
 * getopt's list, --help and the yund(8) man page (--man) are all made, so
 * they cannot drift apart.
 */
#ifndef YUN_DAEMON_OPTS_H
#define YUN_DAEMON_OPTS_H

#include <getopt.h>
#include <stdio.h>

struct yund_opt {
    const char *name; /* long name */
    int val;          /* getopt's value */
    int is_short;     /* val is also the short option (-s) */
    int has_arg;      /* no_argument, required_argument, optional_argument */
    const char *arg;  /* placeholder ("DIR"), NULL for a flag */
    const char *help; /* one or more lines; NULL: hidden (for tests) */
};

extern const struct yund_opt yund_opts[];

/* getopt_long's table and short string from yund_opts (static storage). */
const struct option *yund_getopt_long(void);
const char *yund_getopt_short(void);

void yund_usage(FILE *f);
void yund_man(FILE *f);

#endif
