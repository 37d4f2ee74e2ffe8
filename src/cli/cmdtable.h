/*
 * cmdtable.h - yun's one command table. Every command is declared once, as a
 * struct cli_cmd row (its words, positional arguments, options, one-line
 * summary and handler); each cmd_*.c exports its rows and main.c only
 * concatenates them. Option parsing, usage, --help and the bash completion
 * script are all derived from these rows, so they cannot drift apart.
 */
#ifndef YUN_CLI_CMDTABLE_H
#define YUN_CLI_CMDTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct cli;

/* What a value is, for help and completion. */
enum cli_kind {
    CLI_K_TEXT = 0, /* free text: nothing to complete */
    CLI_K_VM,
    CLI_K_VOLUME,
    CLI_K_IMAGE,
    CLI_K_SNAPSHOT, /* a snapshot of the VM named by the first argument */
    CLI_K_TASK,
    CLI_K_RULE, /* an alert rule */
    CLI_K_FILE,
    CLI_K_CHOICE, /* one of .choices */
};

/* option flags */
#define CLI_OPT_REQUIRED 1u /* the command needs it */
#define CLI_OPT_REPEAT   2u /* may be given more than once; each value counts */

struct cli_opt {
    const char *name;    /* long name without the dashes: "image" */
    char short_name;     /* 'i', or 0 */
    const char *value;   /* the value's placeholder ("IMG"), NULL for a flag */
    enum cli_kind kind;  /* what the value is */
    const char *choices; /* CLI_K_CHOICE: "pc q35 microvm" */
    unsigned flags;      /* CLI_OPT_* */
    const char *help;    /* one line */
};

/* argument flags */
#define CLI_ARG_OPTIONAL 1u

struct cli_arg {
    const char *name;    /* "NAME", "VM" */
    enum cli_kind kind;  /* what it is */
    const char *choices; /* CLI_K_CHOICE */
    unsigned flags;      /* CLI_ARG_* */
};

/* command flags */
#define CLI_CMD_RAW      1u /* its argv goes to the handler untouched (yun sim) */
#define CLI_CMD_DASHDASH 2u /* "-- CMD [ARG...]" follows its options and arguments */
#define CLI_CMD_HIDDEN   4u /* not in help or completion */

#define CLI_MAX_ARGS 4
#define CLI_MAX_OCC  128

struct cli_args;

/* One row. A row without a handler is a group ("vm", "alert rule"): its
 * commands are the rows whose words start with its words. */
struct cli_cmd {
    const char *words;          /* "vm create" */
    const char *alias;          /* another spelling of the last word ("ls"), or NULL */
    const char *summary;        /* one line */
    const struct cli_arg *args; /* positional arguments in order, {0}-terminated, or NULL */
    const struct cli_opt *opts; /* {0}-terminated, or NULL */
    unsigned flags;             /* CLI_CMD_* */
    int (*run)(struct cli *c, const struct cli_args *a);
    const char *more; /* further help text printed after the options, or NULL */
};

/* What the parser made of a command line. */
struct cli_args {
    const struct cli_cmd *cmd;
    int argc; /* positional arguments */
    char *argv[CLI_MAX_ARGS];
    int rest_argc; /* after "--" (CLI_CMD_DASHDASH), or the raw argv (CLI_CMD_RAW) */
    char **rest;
    int nocc;
    struct {
        const struct cli_opt *opt;
        const char *val; /* NULL for a flag */
    } occ[CLI_MAX_OCC];
};

/* A whole table: its parts (each {0}-terminated), NULL-terminated. */
typedef const struct cli_cmd *const cli_table[];

/* True when the option was given. name must be one of the command's options
 * (a name not in its table aborts: an option cannot exist outside it). */
bool cli_flag(const struct cli_args *a, const char *name);
/* True when the command has the option in its table at all. */
bool cli_has_opt(const struct cli_args *a, const char *name);
/* The option's last value, or NULL. */
const char *cli_val(const struct cli_args *a, const char *name);
/* The option's values one by one: start with *iter = 0; NULL after the last. */
const char *cli_val_next(const struct cli_args *a, const char *name, int *iter);

/* The row with exactly these words (or the alias for the last one), or NULL. */
const struct cli_cmd *cli_find(const struct cli_cmd *const *t, const char *words);
/* The deepest row whose words are a prefix of argv; *used = words matched. */
const struct cli_cmd *cli_match(const struct cli_cmd *const *t, int argc, char **argv, int *used);
/* True when some row lies directly under cmd. */
bool cli_has_children(const struct cli_cmd *const *t, const struct cli_cmd *cmd);
/* Number of words in a row's words. */
int cli_nwords(const char *words);

/* Parses argv (what follows the command's words) into a; returns 0, 1 when
 * --help was asked for, or -1 after printing a one-line "yun: ..." error to
 * err (exit 2). */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a, FILE *err);

/* "yun vm create NAME --image IMG [options]" */
void cli_synopsis(const struct cli_cmd *cmd, char *buf, size_t len);
/* An option's value as help shows it: its placeholder, or "a|b|c". */
void cli_opt_value(const struct cli_opt *o, char *buf, size_t len);

/* Generated text (help.c). */
void cli_help_top(const struct cli_cmd *const *t, FILE *f);
void cli_help_group(const struct cli_cmd *const *t, const struct cli_cmd *g, FILE *f);
void cli_help_cmd(const struct cli_cmd *cmd, FILE *f);
void cli_completion_bash(const struct cli_cmd *const *t, FILE *f);
void cli_dump_json(const struct cli_cmd *const *t, FILE *f);
void cli_man(const struct cli_cmd *const *t, FILE *f); /* yun(1), man.c */

/* The global options main.c takes anywhere on the line (before "--"). */
extern const struct cli_opt cli_global_opts[];

#endif
