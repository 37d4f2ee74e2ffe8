/*
 * help.c - text generated from the command table: `yun --help`, a group's
 * and a command's --help, the bash completion script, and the hidden
 * `yun __commands` dump (JSON) that tests compare with the other three.
 */
#include "cli/cmdtable.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

const struct cli_opt cli_global_opts[] = {
    {"output", 'o', "FORMAT", CLI_K_CHOICE, "json table", 0, "output format (default table)"},
    {"socket", 0, "PATH", CLI_K_FILE, NULL, 0,
     "yund's socket ($YUN_SOCKET, $YUN_STATE_DIR/yund.sock, /var/lib/yun/yund.sock)"},
    {"url", 0, "http://H:P[,...]", CLI_K_TEXT, NULL, 0,
     "talk to yund over TCP (with --token); several controllers: follows the leader "
     "(default $YUN_URL)"},
    {"token", 0, "TOKEN", CLI_K_TEXT, NULL, 0, "bearer token for --url (default $YUN_TOKEN)"},
    {0},
};

#define EACH(t, c) EACH_(t, c, c##_part)
#define EACH_(t, c, part)                                                                          \
    for (const struct cli_cmd *const *part = (t); *part; part++)                                   \
        for (const struct cli_cmd *c = *part; c->words; c++)

/* Is row c under group g (any depth)? */
static bool under(const struct cli_cmd *c, const struct cli_cmd *g)
{
    size_t len = strlen(g->words);
    return !strncmp(c->words, g->words, len) && c->words[len] == ' ';
}

static const char *last_word(const char *words)
{
    const char *sp = strrchr(words, ' ');
    return sp ? sp + 1 : words;
}

static void print_opt(const struct cli_opt *o, FILE *f)
{
    char v[128], left[200];
    cli_opt_value(o, v, sizeof(v));
    if (o->short_name)
        snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name, o->value ? " " : "",
                 v);
    else
        snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->value ? " " : "", v);
    const char *more = o->flags & CLI_OPT_REPEAT ? " (may be repeated)" : "";
    if (strlen(left) > 26)
        fprintf(f, "  %s\n  %-26s %s%s\n", left, "", o->help, more);
    else
        fprintf(f, "  %-26s %s%s\n", left, o->help, more);
}

static void print_globals(FILE *f)
{
    fprintf(f, "global options (anywhere on the line):\n");
    for (const struct cli_opt *o = cli_global_opts; o->name; o++)
        print_opt(o, f);
}

void cli_help_top(const struct cli_cmd *const *t, FILE *f)
{
    fprintf(f, "usage: yun [global options] COMMAND ...\ncommands:\n");
    EACH(t, c)
    {
        if (cli_nwords(c->words) != 1 || (c->flags & CLI_CMD_HIDDEN))
            continue;
        fprintf(f, "  %-11s %s\n", c->words, c->summary);
        if (!cli_has_children(t, c))
            continue;
        char line[400] = "";
        size_t n = 0;
        EACH(t, s)
        {
            if (cli_nwords(s->words) == 2 && under(s, c) && !(s->flags & CLI_CMD_HIDDEN))
                n += (size_t)snprintf(line + n, n < sizeof(line) ? sizeof(line) - n : 0, "%s%s",
                                      n ? ", " : "", last_word(s->words));
        }
        fprintf(f, "  %-11s (%s)\n", "", line);
    }
    print_globals(f);
    fprintf(f, "yun COMMAND --help and yun COMMAND SUBCOMMAND --help say more.\n"
               "exit status: 0 ok, 1 yund refused or failed, 2 bad usage, 3 yund unreachable\n");
}

void cli_help_group(const struct cli_cmd *const *t, const struct cli_cmd *g, FILE *f)
{
    fprintf(f, "usage: yun %s COMMAND [options]\n  %s\ncommands:\n", g->words, g->summary);
    size_t skip = strlen(g->words) + 1 + 4; /* "yun " + words + " " */
    EACH(t, c)
    {
        if (!under(c, g) || !c->run || (c->flags & CLI_CMD_HIDDEN))
            continue;
        char syn[400];
        cli_synopsis(c, syn, sizeof(syn));
        const char *rel = strlen(syn) > skip ? syn + skip : syn;
        if (strlen(rel) > 34)
            fprintf(f, "  %s\n  %-34s %s\n", rel, "", c->summary);
        else
            fprintf(f, "  %-34s %s\n", rel, c->summary);
    }
    fprintf(f, "yun %s COMMAND --help shows a command's options.\n", g->words);
}

void cli_help_cmd(const struct cli_cmd *cmd, FILE *f)
{
    char syn[400];
    cli_synopsis(cmd, syn, sizeof(syn));
    fprintf(f, "usage: %s\n  %s\n", syn, cmd->summary);
    if (cmd->alias) {
        char w[200];
        snprintf(w, sizeof(w), "%s", cmd->words);
        *strrchr(w, ' ') = 0;
        fprintf(f, "  (also: yun %s %s)\n", w, cmd->alias);
    }
    fprintf(f, "options:\n");
    for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
        print_opt(o, f);
    fprintf(f, "  %-26s %s\n", "-h, --help", "this help");
    if (cmd->more)
        fputs(cmd->more, f);
    print_globals(f);
}

static const char *kind_name(enum cli_kind k)
{
    static const char *const names[] = {"text", "vm",   "volume", "image", "snapshot",
                                        "task", "rule", "file",   "choice"};
    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "text";
}

/* The completion of a value of kind k: "vm", "file", "choice:a b c", "". */
static void kind_word(enum cli_kind k, const char *choices, char *buf, size_t len)
{
    if (k == CLI_K_CHOICE)
        snprintf(buf, len, "choice:%s", choices ? choices : "");
    else if (k == CLI_K_TEXT)
        snprintf(buf, len, "text");
    else
        snprintf(buf, len, "%s", kind_name(k));
}

/* The case label(s) for a row: its words, and the spelling with its alias. */
static void case_label(const struct cli_cmd *c, FILE *f)
{
    fprintf(f, "    '%s'", c->words);
    if (c->alias) {
        char w[200];
        snprintf(w, sizeof(w), "%s", c->words);
        char *sp = strrchr(w, ' ');
        if (sp) {
            *sp = 0;
            fprintf(f, "|'%s %s'", w, c->alias);
        } else {
            fprintf(f, "|'%s'", c->alias);
        }
    }
    fprintf(f, ")\n");
}

static void spec_opts(const struct cli_opt *opts, FILE *f)
{
    fprintf(f, "      opts='");
    for (const struct cli_opt *o = opts; o && o->name; o++) {
        if (o->short_name)
            fprintf(f, "-%c ", o->short_name);
        fprintf(f, "--%s%s", o->name, o[1].name ? " " : "");
    }
    fprintf(f, "'\n      vk=(");
    for (const struct cli_opt *o = opts; o && o->name; o++) {
        if (!o->value)
            continue;
        char k[300];
        kind_word(o->kind, o->choices, k, sizeof(k));
        if (o->short_name)
            fprintf(f, "[-%c]='%s' ", o->short_name, k);
        fprintf(f, "[--%s]='%s' ", o->name, k);
    }
    fprintf(f, ")\n");
}

static const char bash_head[] =
    "# bash completion for yun, generated from its command table.\n"
    "# load with: source <(yun completion bash)\n"
    "_yun_names() {\n"
    "  # names of objects of kind $1 (a snapshot's VM in $2), asked of yund with the\n"
    "  # global options in the rest of the arguments\n"
    "  local kind=$1 vm=$2 key=name\n"
    "  shift 2\n"
    "  local -a list\n"
    "  case $kind in\n"
    "    vm|volume|image) list=(\"$kind\" list);;\n"
    "    rule) list=(alert rule list);;\n"
    "    task) list=(task list); key=id;;\n"
    "    snapshot) [ -n \"$vm\" ] || return 0; list=(snapshot list \"$vm\");;\n"
    "    *) return 0;;\n"
    "  esac\n"
    "  \"${COMP_WORDS[0]}\" \"$@\" -o json \"${list[@]}\" 2>/dev/null |\n"
    "    sed -n \"s/^    \\\"$key\\\": "
    "\\\"\\\\([^\\\"\\\\\\\\]*\\\\)\\\",\\\\{0,1\\\\}\\$/\\\\1/p\"\n"
    "}\n"
    "_yun_kind() {\n"
    "  # completes cur as a value of kind $1 (vm, file, choice:A B, ...)\n"
    "  case $1 in\n"
    "    file) COMPREPLY=($(compgen -f -- \"$cur\"));;\n"
    "    choice:*) COMPREPLY=($(compgen -W \"${1#choice:}\" -- \"$cur\"));;\n"
    "    vm|volume|image|task|rule|snapshot)\n"
    "      COMPREPLY=($(compgen -W \"$(_yun_names \"$1\" \"${pos[0]}\" \"${glob[@]}\")\" -- "
    "\"$cur\"));;\n"
    "  esac\n"
    "}\n";

static const char bash_main[] =
    "_yun() {\n"
    "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} path= w i\n"
    "  local pending= dd=0 sub opts raw\n"
    "  local -a args=() pos=() glob=()\n"
    "  local -A vk=()\n"
    "  COMPREPLY=()\n"
    "  [ \"$cur\" = = ] && cur=\n"
    "  _yun_spec ''\n"
    "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "    w=${COMP_WORDS[i]}\n"
    "    [ \"$w\" = = ] && continue\n"
    "    if [ -n \"$pending\" ]; then\n"
    "      [ \"$pending\" = global ] && glob+=(\"$w\")\n"
    "      pending=\n"
    "      continue\n"
    "    fi\n"
    "    ((dd)) && continue\n"
    "    case $w in\n"
    "      -o|--output|--socket|--url|--token) glob+=(\"$w\"); pending=global; continue;;\n"
    "      --) [ -z \"$raw\" ] && dd=1; continue;;\n"
    "      -*) [ -n \"${vk[$w]+x}\" ] && pending=opt; continue;;\n"
    "    esac\n"
    "    if [ ${#pos[@]} -eq 0 ] && [[ \" $sub \" == *\" $w \"* ]]; then\n"
    "      path=${path:+$path }$w\n"
    "      _yun_spec \"$path\"\n"
    "      continue\n"
    "    fi\n"
    "    pos+=(\"$w\")\n"
    "  done\n"
    "  [ \"$prev\" = = ] && prev=${COMP_WORDS[COMP_CWORD-2]}\n"
    "  if [ \"$pending\" = global ]; then\n"
    "    case $prev in\n"
    "      -o|--output) _yun_kind 'choice:json table';;\n"
    "      --socket) _yun_kind file;;\n"
    "    esac\n"
    "    return 0\n"
    "  fi\n"
    "  if [ \"$pending\" = opt ]; then\n"
    "    _yun_kind \"${vk[$prev]}\"\n"
    "    return 0\n"
    "  fi\n"
    "  ((dd)) && return 0\n"
    "  if [[ $cur == -* ]]; then\n"
    "    COMPREPLY=($(compgen -W \"$opts -h --help -o --output --socket --url --token\" -- "
    "\"$cur\"))\n"
    "  elif [ -n \"$sub\" ] && [ ${#pos[@]} -eq 0 ]; then\n"
    "    COMPREPLY=($(compgen -W \"$sub\" -- \"$cur\"))\n"
    "  elif [ -n \"$raw\" ]; then\n"
    "    _yun_kind file\n"
    "  elif [ ${#pos[@]} -lt ${#args[@]} ]; then\n"
    "    _yun_kind \"${args[${#pos[@]}]}\"\n"
    "  fi\n"
    "  return 0\n"
    "}\n"
    "complete -F _yun yun\n";

/* One case of _yun_spec: the top level (g NULL) or row g. */
static void spec_case(const struct cli_cmd *const *t, const struct cli_cmd *g, FILE *f)
{
    if (g)
        case_label(g, f);
    else
        fprintf(f, "    '')\n");
    int depth = g ? cli_nwords(g->words) : 0;
    fprintf(f, "      sub='");
    bool first = true;
    EACH(t, s)
    {
        if (cli_nwords(s->words) != depth + 1 || (s->flags & CLI_CMD_HIDDEN) || (g && !under(s, g)))
            continue;
        fprintf(f, "%s%s", first ? "" : " ", last_word(s->words));
        if (s->alias)
            fprintf(f, " %s", s->alias);
        first = false;
    }
    fprintf(f, "'\n");
    if (g) {
        spec_opts(g->opts, f);
        fprintf(f, "      args=(");
        for (const struct cli_arg *a = g->args; a && a->name; a++) {
            char k[300];
            kind_word(a->kind, a->choices, k, sizeof(k));
            fprintf(f, "'%s' ", k);
        }
        fprintf(f, ")\n");
        if (g->flags & CLI_CMD_RAW)
            fprintf(f, "      raw=1\n");
    }
    fprintf(f, "      ;;\n");
}

void cli_completion_bash(const struct cli_cmd *const *t, FILE *f)
{
    fputs(bash_head, f);
    fprintf(f, "_yun_spec() {\n"
               "  # what command $1 takes: sub (its commands), opts (its options), vk (the\n"
               "  # kind of each option's value), args (the kind of each argument), raw\n"
               "  sub= opts= raw= args=() vk=()\n"
               "  case $1 in\n");
    spec_case(t, NULL, f);
    EACH(t, c)
    {
        if (!(c->flags & CLI_CMD_HIDDEN))
            spec_case(t, c, f);
    }
    fprintf(f, "  esac\n}\n");
    fputs(bash_main, f);
}

void cli_dump_json(const struct cli_cmd *const *t, FILE *f)
{
    json_t *all = json_array();
    EACH(t, c)
    {
        char syn[400];
        cli_synopsis(c, syn, sizeof(syn));
        json_t *args = json_array(), *opts = json_array();
        for (const struct cli_arg *a = c->args; a && a->name; a++)
            json_array_append_new(args, json_pack("{s:s,s:s,s:s?,s:b}", "name", a->name, "kind",
                                                  kind_name(a->kind), "choices", a->choices,
                                                  "optional", (a->flags & CLI_ARG_OPTIONAL) != 0));
        for (const struct cli_opt *o = c->opts; o && o->name; o++) {
            char sh[3] = {'-', o->short_name, 0};
            json_array_append_new(
                opts,
                json_pack("{s:s,s:s?,s:s?,s:s,s:s?,s:b,s:b,s:s}", "name", o->name, "short",
                          o->short_name ? sh : NULL, "value", o->value, "kind", kind_name(o->kind),
                          "choices", o->choices, "required", (o->flags & CLI_OPT_REQUIRED) != 0,
                          "repeat", (o->flags & CLI_OPT_REPEAT) != 0, "help", o->help));
        }
        json_array_append_new(
            all, json_pack("{s:s,s:s?,s:s,s:s,s:b,s:b,s:b,s:b,s:o,s:o}", "words", c->words, "alias",
                           c->alias, "summary", c->summary, "synopsis", syn, "group",
                           c->run == NULL, "raw", (c->flags & CLI_CMD_RAW) != 0, "hidden",
                           (c->flags & CLI_CMD_HIDDEN) != 0, "dashdash",
                           (c->flags & CLI_CMD_DASHDASH) != 0, "args", args, "options", opts));
    }
    char *s = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        fprintf(f, "%s\n", s);
    free(s);
    json_decref(all);
}
