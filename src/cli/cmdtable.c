/*
 * cmdtable.c - finding a command in the table and parsing its command line
 * by its row: options (long, short, --name=value, -xVALUE), positional
 * arguments, "--". Every error is one line on err and means exit 2. Pure:
 * no I/O besides that line, no yund.
 */
#include "cli/cmdtable.h"

#include <stdlib.h>
#include <string.h>

int cli_nwords(const char *words)
{
    int n = 1;
    for (const char *p = words; *p; p++)
        n += *p == ' ';
    return n;
}

/* Length of word i of words (and its start in *start). */
static size_t word_at(const char *words, int i, const char **start)
{
    const char *p = words;
    for (; i > 0 && p; i--) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p) {
        *start = "";
        return 0;
    }
    *start = p;
    const char *end = strchr(p, ' ');
    return end ? (size_t)(end - p) : strlen(p);
}

static bool word_is(const char *w, size_t wl, const char *s)
{
    return strlen(s) == wl && !strncmp(w, s, wl);
}

/* Does row cmd spell exactly argv[0..n-1]? */
static bool row_is(const struct cli_cmd *cmd, int n, char **argv)
{
    if (cli_nwords(cmd->words) != n)
        return false;
    for (int i = 0; i < n; i++) {
        const char *w;
        size_t wl = word_at(cmd->words, i, &w);
        if (word_is(w, wl, argv[i]))
            continue;
        if (i == n - 1 && cmd->alias && !strcmp(cmd->alias, argv[i]))
            continue;
        return false;
    }
    return true;
}

const struct cli_cmd *cli_find(const struct cli_cmd *const *t, const char *words)
{
    char buf[256], *argv[8];
    snprintf(buf, sizeof(buf), "%s", words);
    int n = 0;
    for (char *save, *w = strtok_r(buf, " ", &save); w && n < 8; w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    for (; *t; t++)
        for (const struct cli_cmd *c = *t; c->words; c++)
            if (row_is(c, n, argv))
                return c;
    return NULL;
}

const struct cli_cmd *cli_match(const struct cli_cmd *const *t, int argc, char **argv, int *used)
{
    const struct cli_cmd *best = NULL;
    *used = 0;
    for (int n = 1; n <= argc && n <= 8 && argv[n - 1][0] != '-'; n++) {
        const struct cli_cmd *hit = NULL;
        for (const struct cli_cmd *const *p = t; *p && !hit; p++)
            for (const struct cli_cmd *c = *p; c->words && !hit; c++)
                if (row_is(c, n, argv))
                    hit = c;
        if (!hit)
            break;
        best = hit;
        *used = n;
        if (hit->run && (hit->flags & CLI_CMD_RAW) == 0)
            break; /* a command's own arguments follow */
    }
    return best;
}

bool cli_has_children(const struct cli_cmd *const *t, const struct cli_cmd *cmd)
{
    size_t len = strlen(cmd->words);
    int n = cli_nwords(cmd->words);
    for (; *t; t++)
        for (const struct cli_cmd *c = *t; c->words; c++)
            if (cli_nwords(c->words) == n + 1 && !strncmp(c->words, cmd->words, len) &&
                c->words[len] == ' ')
                return true;
    return false;
}

static const struct cli_opt *opt_by_name(const struct cli_cmd *cmd, const char *name, size_t len)
{
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
        if (strlen(o->name) == len && !strncmp(o->name, name, len))
            return o;
    return NULL;
}

static const struct cli_opt *must_opt(const struct cli_args *a, const char *name)
{
    const struct cli_opt *o = opt_by_name(a->cmd, name, strlen(name));
    if (!o) {
        fprintf(stderr, "yun: internal error: '%s' has no option --%s in its table\n",
                a->cmd->words, name);
        abort();
    }
    return o;
}

bool cli_has_opt(const struct cli_args *a, const char *name)
{
    return opt_by_name(a->cmd, name, strlen(name)) != NULL;
}

bool cli_flag(const struct cli_args *a, const char *name)
{
    const struct cli_opt *o = must_opt(a, name);
    for (int i = 0; i < a->nocc; i++)
        if (a->occ[i].opt == o)
            return true;
    return false;
}

const char *cli_val(const struct cli_args *a, const char *name)
{
    const struct cli_opt *o = must_opt(a, name);
    const char *v = NULL;
    for (int i = 0; i < a->nocc; i++)
        if (a->occ[i].opt == o)
            v = a->occ[i].val;
    return v;
}

const char *cli_val_next(const struct cli_args *a, const char *name, int *iter)
{
    const struct cli_opt *o = must_opt(a, name);
    for (; *iter < a->nocc; (*iter)++)
        if (a->occ[*iter].opt == o)
            return a->occ[(*iter)++].val;
    return NULL;
}

static int nargs(const struct cli_cmd *cmd, int *required)
{
    int n = 0;
    *required = 0;
    for (const struct cli_arg *g = cmd->args; g && g->name && n < CLI_MAX_ARGS; g++, n++)
        if (!(g->flags & CLI_ARG_OPTIONAL))
            *required = n + 1;
    return n;
}

static int bad(FILE *err, const struct cli_cmd *cmd, const char *what)
{
    char syn[400];
    cli_synopsis(cmd, syn, sizeof(syn));
    fprintf(err, "yun: %s (usage: %s)\n", what, syn);
    return -1;
}

/* One option at argv[*i]; returns 0, or -1 after an error line. */
static int parse_opt(const struct cli_cmd *cmd, int argc, char **argv, int *i, struct cli_args *a,
                     FILE *err)
{
    const char *s = argv[*i], *val = NULL;
    const struct cli_opt *o;
    char msg[300], shown[64];
    bool inline_val = false;
    if (s[1] == '-') {
        const char *eq = strchr(s + 2, '=');
        size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
        o = opt_by_name(cmd, s + 2, len);
        snprintf(shown, sizeof(shown), "--%.*s", (int)len, s + 2);
        if (eq) {
            val = eq + 1;
            inline_val = true;
        }
    } else {
        o = NULL;
        for (const struct cli_opt *p = cmd->opts; p && p->name && !o; p++)
            if (p->short_name && p->short_name == s[1])
                o = p;
        snprintf(shown, sizeof(shown), "-%c", s[1]);
        if (o && s[2]) {
            if (!o->value)
                o = NULL; /* flags do not bundle */
            else {
                val = s + 2;
                inline_val = true;
            }
        }
    }
    if (!o) {
        snprintf(msg, sizeof(msg), "unknown option '%s' for %s", s, cmd->words);
        return bad(err, cmd, msg);
    }
    if (!o->value && inline_val) {
        snprintf(msg, sizeof(msg), "option %s takes no value", shown);
        return bad(err, cmd, msg);
    }
    if (o->value && !inline_val) {
        if (*i + 1 >= argc) {
            snprintf(msg, sizeof(msg), "option %s needs a value (%s)", shown, o->value);
            return bad(err, cmd, msg);
        }
        val = argv[++*i];
    }
    if (a->nocc == CLI_MAX_OCC)
        return bad(err, cmd, "too many options");
    a->occ[a->nocc].opt = o;
    a->occ[a->nocc++].val = val;
    return 0;
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a, FILE *err)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    if (cmd->flags & CLI_CMD_RAW) {
        a->rest = argv;
        a->rest_argc = argc;
        return 0;
    }
    int required, max = nargs(cmd, &required);
    bool only_args = false, dashdash = false;
    char msg[300];
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!only_args && !strcmp(s, "--")) {
            if (cmd->flags & CLI_CMD_DASHDASH) {
                a->rest = argv + i + 1;
                a->rest_argc = argc - i - 1;
                dashdash = true;
                break;
            }
            only_args = true;
            continue;
        }
        if (!only_args && s[0] == '-' && s[1]) {
            if (!strcmp(s, "--help") || !strcmp(s, "-h"))
                return 1;
            if (parse_opt(cmd, argc, argv, &i, a, err) < 0)
                return -1;
            continue;
        }
        if (a->argc >= max) {
            snprintf(msg, sizeof(msg), "unexpected argument '%s' for %s", s, cmd->words);
            return bad(err, cmd, msg);
        }
        a->argv[a->argc++] = argv[i];
    }
    if (a->argc < required) {
        snprintf(msg, sizeof(msg), "%s needs %s", cmd->words, cmd->args[a->argc].name);
        return bad(err, cmd, msg);
    }
    if ((cmd->flags & CLI_CMD_DASHDASH) && (!dashdash || a->rest_argc == 0)) {
        snprintf(msg, sizeof(msg), "%s needs -- CMD [ARG...]", cmd->words);
        return bad(err, cmd, msg);
    }
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
        if (!(o->flags & CLI_OPT_REQUIRED))
            continue;
        bool seen = false;
        for (int k = 0; k < a->nocc; k++)
            seen |= a->occ[k].opt == o;
        if (!seen) {
            snprintf(msg, sizeof(msg), "%s needs --%s", cmd->words, o->name);
            return bad(err, cmd, msg);
        }
    }
    return 0;
}

/* "pc|q35|microvm" from "pc q35 microvm" */
static void bar_choices(const char *choices, char *buf, size_t len)
{
    snprintf(buf, len, "%s", choices ? choices : "");
    for (char *p = buf; *p; p++)
        if (*p == ' ')
            *p = '|';
}

void cli_opt_value(const struct cli_opt *o, char *buf, size_t len)
{
    if (o->kind == CLI_K_CHOICE)
        bar_choices(o->choices, buf, len);
    else
        snprintf(buf, len, "%s", o->value ? o->value : "");
}

void cli_synopsis(const struct cli_cmd *cmd, char *buf, size_t len)
{
    size_t n = 0;
    char v[128];
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (n < len)                                                                               \
            n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__);                                  \
    } while (0)
    buf[0] = 0;
    PUT("yun %s", cmd->words);
    if (cmd->flags & CLI_CMD_RAW) {
        PUT(" ...");
        return;
    }
    if (!cmd->run) {
        PUT(" COMMAND ...");
        return;
    }
    for (const struct cli_arg *g = cmd->args; g && g->name; g++) {
        if (g->kind == CLI_K_CHOICE)
            bar_choices(g->choices, v, sizeof(v));
        else
            snprintf(v, sizeof(v), "%s", g->name);
        PUT(g->flags & CLI_ARG_OPTIONAL ? " [%s]" : " %s", v);
    }
    bool others = false;
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
        if (!(o->flags & CLI_OPT_REQUIRED)) {
            others = true;
            continue;
        }
        cli_opt_value(o, v, sizeof(v));
        PUT(" --%s%s%s", o->name, o->value ? " " : "", v);
    }
    if (others)
        PUT(" [options]");
    if (cmd->flags & CLI_CMD_DASHDASH)
        PUT(" -- CMD [ARG...]");
#undef PUT
}
