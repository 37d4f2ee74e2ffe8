/*
 * test_cli_table.c - unit tests for the CLI's table-driven parts that need
 * no yund: finding a command by its words, parsing a command line by its row
 * (every usage error is one line and refused), and how a task is shown
 * (progress line, percent, id prefixes). The CLI is not in libyun, so its
 * pure files are compiled in here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cli/cmdtable.c"
#include "../../src/cli/taskfmt.c"

static int run_nothing(struct cli *c, const struct cli_args *a)
{
    return 0;
}

static const struct cli_cmd test_entries[] = {
    {.words = "vm", .summary = "vms"},
    {.words = "vm create",
     .summary = "create",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_TEXT, NULL, 0}, {0}},
     .opts =
         (const struct cli_opt[]){
             {"image", 'i', "IMG", CLI_K_IMAGE, NULL, CLI_OPT_REQUIRED, "image"},
             {"start", 0, NULL, CLI_K_TEXT, NULL, 0, "start"},
             {"ssh-key", 0, "FILE", CLI_K_FILE, NULL, CLI_OPT_REPEAT, "keys"},
             {0}},
     .run = run_nothing},
    {.words = "vm list", .alias = "ls", .summary = "list", .run = run_nothing},
    {.words = "vm exec",
     .summary = "exec",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_VM, NULL, 0}, {0}},
     .opts = (const struct cli_opt[]){{"timeout", 0, "S", CLI_K_TEXT, NULL, 0, "t"}, {0}},
     .flags = CLI_CMD_DASHDASH,
     .run = run_nothing},
    {.words = "alert", .summary = "alerts"},
    {.words = "alert rule", .summary = "rules"},
    {.words = "alert rule show",
     .summary = "show",
     .args = (const struct cli_arg[]){{"NAME", CLI_K_RULE, NULL, 0},
                                      {"MORE", CLI_K_TEXT, NULL, CLI_ARG_OPTIONAL},
                                      {0}},
     .run = run_nothing},
    {.words = "sim", .summary = "sim", .flags = CLI_CMD_RAW, .run = run_nothing},
    {0},
};
static cli_table table = {test_entries, NULL};

/* Parses the words of line (split on spaces) for the row they name;
 * returns cli_parse's result, with the error line in err. */
static int parse_line(const char *line, struct cli_args *a, char *err, size_t errlen)
{
    static char buf[512];
    char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *save, *w = strtok_r(buf, " ", &save); w && argc < 31; w = strtok_r(NULL, " ", &save))
        argv[argc++] = w;
    int used;
    const struct cli_cmd *cmd = cli_match(table, argc, argv, &used);
    assert_non_null(cmd);
    FILE *f = fmemopen(err, errlen, "w");
    int rc = cli_parse(cmd, argc - used, argv + used, a, f);
    fclose(f);
    return rc;
}

static void test_match(void **state)
{
    char *a1[] = {"vm", "ls"}, *a2[] = {"alert", "rule", "show", "x"}, *a3[] = {"vm", "nope"},
         *a4[] = {"sim", "run", "--x"}, *a5[] = {"nothing"};
    int used;
    assert_ptr_equal(cli_match(table, 2, a1, &used), &test_entries[2]);
    assert_int_equal(used, 2);
    assert_ptr_equal(cli_match(table, 4, a2, &used), &test_entries[6]);
    assert_int_equal(used, 3);
    /* an unknown word under a group stops at the group */
    assert_ptr_equal(cli_match(table, 2, a3, &used), &test_entries[0]);
    assert_int_equal(used, 1);
    assert_ptr_equal(cli_match(table, 3, a4, &used), &test_entries[7]);
    assert_null(cli_match(table, 1, a5, &used));
    assert_ptr_equal(cli_find(table, "vm list"), &test_entries[2]);
    assert_ptr_equal(cli_find(table, "vm ls"), &test_entries[2]);
    assert_null(cli_find(table, "vm lis"));
    assert_true(cli_has_children(table, &test_entries[0]));
    assert_true(cli_has_children(table, &test_entries[5]));
    assert_false(cli_has_children(table, &test_entries[1]));
}

static void test_parse_ok(void **state)
{
    struct cli_args a;
    char err[400] = "";
    assert_int_equal(
        parse_line("vm create --ssh-key k1 web -i tiny --start --ssh-key=k2", &a, err, sizeof(err)),
        0);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "web");
    assert_string_equal(cli_val(&a, "image"), "tiny");
    assert_true(cli_flag(&a, "start"));
    int it = 0;
    assert_string_equal(cli_val_next(&a, "ssh-key", &it), "k1");
    assert_string_equal(cli_val_next(&a, "ssh-key", &it), "k2");
    assert_null(cli_val_next(&a, "ssh-key", &it));
    assert_true(cli_has_opt(&a, "image"));
    assert_false(cli_has_opt(&a, "nope"));
    /* -iVALUE, --image=VALUE, last wins; a value may start with '-' */
    assert_int_equal(parse_line("vm create w -itiny --image=-odd", &a, err, sizeof(err)), 0);
    assert_string_equal(cli_val(&a, "image"), "-odd");
    assert_false(cli_flag(&a, "start"));
    /* after "--" everything is an argument... */
    assert_int_equal(parse_line("vm create -i x -- -w", &a, err, sizeof(err)), 0);
    assert_string_equal(a.argv[0], "-w");
    /* ...or, for a DASHDASH command, the rest */
    assert_int_equal(parse_line("vm exec v --timeout 5 -- sh -c --help", &a, err, sizeof(err)), 0);
    assert_string_equal(a.argv[0], "v");
    assert_int_equal(a.rest_argc, 3);
    assert_string_equal(a.rest[2], "--help");
    assert_int_equal(parse_line("alert rule show r", &a, err, sizeof(err)), 0);
    assert_int_equal(a.argc, 1);
    assert_int_equal(parse_line("vm create --help", &a, err, sizeof(err)), 1);
    assert_int_equal(parse_line("vm ls -h", &a, err, sizeof(err)), 1);
    assert_string_equal(err, "");
}

static void test_parse_errors(void **state)
{
    static const char *const bad[][2] = {
        {"vm create web", "vm create needs --image"},
        {"vm create", "vm create needs NAME"},
        {"vm create a b -i x", "unexpected argument 'b'"},
        {"vm create a --bogus -i x", "unknown option '--bogus'"},
        {"vm create a -q -i x", "unknown option '-q'"},
        {"vm create a -i", "option -i needs a value"},
        {"vm create a -i x --start=yes", "option --start takes no value"},
        {"vm exec v", "vm exec needs -- CMD"},
        {"vm exec v --", "vm exec needs -- CMD"},
        {"vm exec -- true", "vm exec needs NAME"},
        {"alert rule show", "alert rule show needs NAME"},
        {"alert rule show a b c", "unexpected argument 'c'"},
        {"vm list x", "unexpected argument 'x'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cli_args a;
        char err[400] = "";
        assert_int_equal(parse_line(bad[i][0], &a, err, sizeof(err)), -1);
        if (!strstr(err, bad[i][1]))
            fail_msg("'%s': '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
        /* one line, starting "yun: ", with the synopsis */
        assert_int_equal(strncmp(err, "yun: ", 5), 0);
        assert_non_null(strstr(err, "(usage: yun "));
        assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    }
}

static void test_synopsis(void **state)
{
    char s[200];
    cli_synopsis(&test_entries[1], s, sizeof(s));
    assert_string_equal(s, "yun vm create NAME --image IMG [options]");
    cli_synopsis(&test_entries[3], s, sizeof(s));
    assert_string_equal(s, "yun vm exec NAME [options] -- CMD [ARG...]");
    cli_synopsis(&test_entries[6], s, sizeof(s));
    assert_string_equal(s, "yun alert rule show NAME [MORE]");
    cli_synopsis(&test_entries[5], s, sizeof(s));
    assert_string_equal(s, "yun alert rule COMMAND ...");
}

static void test_iec(void **state)
{
    char b[32];
    static const struct {
        long long v;
        const char *s;
    } cases[] = {{0, "0 B"},
                 {1023, "1023 B"},
                 {1024, "1 KiB"},
                 {1536, "1.5 KiB"},
                 {4509715661LL, "4.2 GiB"},
                 {10LL << 30, "10 GiB"},
                 {(10LL << 30) + (1LL << 29), "10 GiB"},
                 {512LL << 20, "512 MiB"},
                 {-5, "0 B"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_fmt_iec(cases[i].v, b, sizeof(b));
        assert_string_equal(b, cases[i].s);
    }
}

static void test_task_line(void **state)
{
    char line[200];
    json_t *t =
        json_pack("{s:s,s:s,s:{s:s,s:s},s:s,s:{s:I,s:I,s:s}}", "id",
                  "0b2c9a1e-0000-4000-8000-000000000001", "kind", "volume.clone", "object", "type",
                  "volume", "name", "vol1", "state", "running", "progress", "done",
                  (json_int_t)4509715661LL, "total", (json_int_t)(10LL << 30), "unit", "bytes");
    cli_task_line(t, false, line, sizeof(line));
    assert_string_equal(line, "clone vol1  42%  4.2 GiB / 10 GiB");
    assert_int_equal(cli_task_percent(t), 42);
    cli_task_progress(t, line, sizeof(line));
    assert_string_equal(line, "42%");
    json_object_set_new(t, "state", json_string("succeeded"));
    cli_task_line(t, true, line, sizeof(line));
    assert_string_equal(line, "clone vol1  succeeded  4.2 GiB / 10 GiB");
    /* no progress known: the state; a bad progress counts as none */
    json_object_del(t, "progress");
    json_object_set_new(t, "state", json_string("queued"));
    cli_task_line(t, false, line, sizeof(line));
    assert_string_equal(line, "clone vol1  queued");
    assert_int_equal(cli_task_percent(t), -1);
    cli_task_progress(t, line, sizeof(line));
    assert_string_equal(line, "-");
    json_object_set_new(t, "progress", json_pack("{s:i,s:i}", "done", 5, "total", 0));
    assert_int_equal(cli_task_percent(t), -1);
    json_object_set_new(t, "progress", json_pack("{s:i,s:i}", "done", 15, "total", 10));
    assert_int_equal(cli_task_percent(t), 100);
    json_object_set_new(t, "progress", json_pack("{s:s,s:i}", "done", "x", "total", 10));
    assert_int_equal(cli_task_percent(t), -1);
    /* other units are shown as numbers; no object name: its id */
    json_object_set_new(t, "progress",
                        json_pack("{s:i,s:i,s:s}", "done", 3, "total", 4, "unit", "layers"));
    json_object_set_new(t, "object", json_pack("{s:s}", "id", "x1"));
    json_object_set_new(t, "kind", json_string("snapshot.delete"));
    json_object_set_new(t, "state", json_string("running"));
    cli_task_line(t, false, line, sizeof(line));
    assert_string_equal(line, "delete x1  75%  3 / 4 layers");
    json_decref(t);
    assert_true(cli_task_final("succeeded"));
    assert_true(cli_task_final("failed"));
    assert_true(cli_task_final("cancelled"));
    assert_false(cli_task_final("running"));
    assert_false(cli_task_final("queued"));
    assert_false(cli_task_final(NULL));
}

static void test_task_match(void **state)
{
    json_t *tasks = json_pack("[{s:s},{s:s},{s:s},{}]", "id", "abc12345-1", "id", "abd00000-2",
                              "id", "ABC99999-3");
    const char *id;
    assert_int_equal(cli_task_match(tasks, "abd", &id), 1);
    assert_string_equal(id, "abd00000-2");
    assert_int_equal(cli_task_match(tasks, "abc", &id), 2); /* case-insensitive */
    assert_null(id);
    assert_int_equal(cli_task_match(tasks, "ab", &id), 3);
    assert_int_equal(cli_task_match(tasks, "zz", &id), 0);
    assert_null(id);
    assert_int_equal(cli_task_match(tasks, "", &id), 0);
    assert_int_equal(cli_task_match(tasks, "abc12345-1", &id), 1);
    assert_string_equal(id, "abc12345-1");
    json_decref(tasks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_synopsis),
        cmocka_unit_test(test_iec),          cmocka_unit_test(test_task_line),
        cmocka_unit_test(test_task_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
