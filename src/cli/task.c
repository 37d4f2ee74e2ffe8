/*
 * task.c - long operations from the CLI side: `yun task list|show|wait|
 * cancel`, and the helpers every command whose request answers
 * 202 {"task": TASK} uses to wait for it (long-polling GET
 * /v1/tasks/ID?wait=S, one updating progress line on a terminal) or, with
 * --no-wait, to print the task id and return.
 */
#include "cli/cli.h"
#include "cli/taskfmt.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WAIT_S 30 /* one long poll; the contract allows up to 60 */

static const char *task_state(json_t *t)
{
    return json_string_value(json_object_get(t, "state"));
}

/* Long-polls until the task is finished; returns it (any final state), or
 * NULL with *code set when yund could not be asked. */
static json_t *task_await(const struct cli *c, const char *id, int *code)
{
    bool tty = !c->json && isatty(2);
    char path[300], shown[300] = "", line[300];
    char *enc = cli_url_encode(id);
    json_t *t = NULL;
    for (;;) {
        snprintf(path, sizeof(path), "/v1/tasks/%s?wait=%d", enc ? enc : "", WAIT_S);
        int64_t asked = monotonic_ms();
        json_t *nt = cli_call(c, "GET", path, NULL, code);
        if (!nt) {
            json_decref(t);
            t = NULL;
            break;
        }
        json_decref(t);
        t = nt;
        bool final = cli_task_final(task_state(t));
        cli_task_line(t, false, line, sizeof(line));
        bool same = !strcmp(line, shown);
        if (tty && !same && !final) {
            fprintf(stderr, "\r\033[K%s", line);
            fflush(stderr);
        }
        snprintf(shown, sizeof(shown), "%s", line);
        if (final)
            break;
        /* a yund that answers at once without news (no long poll): pace it */
        if (same && monotonic_ms() - asked < 100)
            cli_sleep_ms(250);
    }
    if (tty && shown[0]) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    free(enc);
    return t;
}

/* Prints why a finished task did not succeed. */
static void task_failed(json_t *t)
{
    const char *msg = json_string_value(json_object_get(json_object_get(t, "error"), "message"));
    char line[300];
    cli_task_line(t, true, line, sizeof(line));
    if (msg)
        fprintf(stderr, "yun: %s\n", msg);
    else
        fprintf(stderr, "yun: %s\n", line);
}

json_t *cli_wait_task(const struct cli *c, const char *id, int *code)
{
    json_t *t = task_await(c, id, code);
    if (!t)
        return NULL;
    const char *st = task_state(t);
    if (st && !strcmp(st, "succeeded"))
        return t;
    task_failed(t);
    json_decref(t);
    *code = EXIT_API;
    return NULL;
}

enum cli_task_outcome cli_task_follow(const struct cli *c, json_t *reply, bool no_wait,
                                      json_t **result, int *code)
{
    json_t *task = json_object_get(reply, "task");
    *result = NULL;
    if (!json_is_object(task))
        return CLI_NO_TASK;
    const char *id = json_string_value(json_object_get(task, "id"));
    if (!id) {
        fprintf(stderr, "yun: yund's reply names a task without an id\n");
        *code = EXIT_API;
        return CLI_TASK_EXIT;
    }
    if (no_wait) {
        if (c->json)
            cli_print_json(task);
        else
            printf("%s\n", id);
        *code = 0;
        return CLI_TASK_EXIT;
    }
    json_t *done;
    const char *st = task_state(task);
    if (st && !strcmp(st, "succeeded")) {
        done = json_incref(task);
    } else if (cli_task_final(st)) {
        task_failed(task);
        *code = EXIT_API;
        return CLI_TASK_EXIT;
    } else if (!(done = cli_wait_task(c, id, code))) {
        return CLI_TASK_EXIT;
    }
    json_t *res = json_object_get(done, "result");
    *result = res ? json_incref(res) : NULL;
    json_decref(done);
    return CLI_TASK_DONE;
}

int cli_post_task(const struct cli *c, const struct cli_args *a, const char *path, json_t *body,
                  const char *fmt, const char *name)
{
    int code = 0;
    json_t *r = cli_call(c, "POST", path, body, &code), *res = NULL;
    json_decref(body);
    if (!r)
        return code;
    bool nw = cli_has_opt(a, "no-wait") && cli_flag(a, "no-wait");
    switch (cli_task_follow(c, r, nw, &res, &code)) {
    case CLI_TASK_EXIT:
        json_decref(r);
        return code;
    case CLI_TASK_DONE:
        json_decref(r);
        r = res ? res : json_object();
        break;
    case CLI_NO_TASK:
        break;
    }
    return cli_done(c, r, fmt, name);
}

/* The whole id of the task that id (a whole id or a unique prefix) names.
 * When yund will not list tasks that way, the prefix goes to it as it is. */
static int resolve(const struct cli *c, const char *id, char *out, size_t len)
{
    snprintf(out, len, "%s", id);
    if (strlen(id) == 36)
        return 0;
    char err[300];
    struct http_resp hr;
    if (cli_http(c, "GET", "/v1/tasks?limit=1000", NULL, &hr, err, sizeof(err)) < 0) {
        fprintf(stderr, "yun: %s\n", err);
        return EXIT_CONN;
    }
    json_t *r = hr.status == 200 ? json_loads(hr.body, 0, NULL) : NULL;
    http_resp_free(&hr);
    if (!r)
        return 0;
    const char *hit;
    int n = cli_task_match(json_object_get(r, "tasks"), id, &hit);
    if (n == 1)
        snprintf(out, len, "%s", hit);
    else if (n == 0)
        fprintf(stderr, "yun: no task has an id starting with '%s' (see: yun task list)\n", id);
    else
        fprintf(stderr, "yun: '%s' starts the ids of %d tasks: give more of it\n", id, n);
    json_decref(r);
    return n == 1 ? 0 : EXIT_API;
}

static void print_task_row(json_t *t)
{
    char prog[16], age[16];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long created = json_integer_value(json_object_get(t, "created_at"));
    cli_fmt_age(created ? (long long)now.tv_sec - created / 1000 : 0, age, sizeof(age));
    cli_task_progress(t, prog, sizeof(prog));
    json_t *obj = json_object_get(t, "object");
    const char *name = json_string_value(json_object_get(obj, "name"));
    printf("%-8.8s %-16s %-20s %-10s %8s %6s\n", json_string_value(json_object_get(t, "id")) ?: "?",
           json_string_value(json_object_get(t, "kind")) ?: "?",
           name ? name : json_string_value(json_object_get(obj, "id")) ?: "-",
           task_state(t) ?: "?", prog, age);
}

static int task_list(struct cli *c, const struct cli_args *a)
{
    const char *state = cli_val(a, "state"), *object = cli_val(a, "object"),
               *limit = cli_val(a, "limit");
    uint64_t n = 50;
    if (limit && parse_u64(limit, 1, 1000, &n) < 0) {
        fprintf(stderr, "yun: -n must be 1..1000, not '%s'\n", limit);
        return EXIT_USAGE;
    }
    char path[800], *es = state ? cli_url_encode(state) : NULL,
                    *eo = object ? cli_url_encode(object) : NULL;
    snprintf(path, sizeof(path), "/v1/tasks?limit=%llu%s%s%s%s", (unsigned long long)n,
             es ? "&state=" : "", es ? es : "", eo ? "&object=" : "", eo ? eo : "");
    free(es);
    free(eo);
    int code = 0;
    json_t *r = cli_call(c, "GET", path, NULL, &code);
    if (!r)
        return code;
    json_t *tasks = json_object_get(r, "tasks");
    if (c->json) {
        cli_print_json(tasks);
    } else {
        printf("%-8s %-16s %-20s %-10s %8s %6s\n", "ID", "KIND", "OBJECT", "STATE", "PROGRESS",
               "AGE");
        size_t i;
        json_t *t;
        json_array_foreach(tasks, i, t) print_task_row(t);
    }
    json_decref(r);
    return 0;
}

static void print_task_detail(json_t *t)
{
    char line[300], when[32];
    cli_task_line(t, true, line, sizeof(line));
    printf("%-12s %s\n%-12s %s\n%-12s %s\n", "id",
           json_string_value(json_object_get(t, "id")) ?: "?", "kind",
           json_string_value(json_object_get(t, "kind")) ?: "?", "task", line);
    static const char *const times[] = {"created_at", "started_at", "finished_at"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(t, times[i]);
        if (json_is_integer(v) && json_integer_value(v) > 0) {
            cli_fmt_time(json_integer_value(v), when, sizeof(when));
            printf("%-12s %s\n", times[i], when);
        }
    }
    const char *msg = json_string_value(json_object_get(json_object_get(t, "error"), "message"));
    if (msg)
        printf("%-12s %s\n", "error", msg);
    printf("%-12s %s\n", "cancellable",
           json_is_true(json_object_get(t, "cancellable")) ? "yes" : "no");
}

/* The task an argument names (an id or a unique prefix), asked with method
 * on /v1/tasks/ID plus suffix; NULL with *code set on failure. */
static json_t *task_request(struct cli *c, const char *arg, const char *method, const char *suffix,
                            char *id, size_t idlen, int *code)
{
    char path[400];
    if ((*code = resolve(c, arg, id, idlen)))
        return NULL;
    char *enc = cli_url_encode(id);
    snprintf(path, sizeof(path), "/v1/tasks/%s%s", enc ? enc : "", suffix);
    free(enc);
    return cli_call(c, method, path, NULL, code);
}

static int task_show(struct cli *c, const struct cli_args *a)
{
    char id[128];
    int code;
    json_t *t = task_request(c, a->argv[0], "GET", "", id, sizeof(id), &code);
    if (!t)
        return code;
    if (c->json)
        cli_print_json(t);
    else
        print_task_detail(t);
    json_decref(t);
    return 0;
}

static int task_wait(struct cli *c, const struct cli_args *a)
{
    char id[128], line[300];
    int code = resolve(c, a->argv[0], id, sizeof(id));
    if (code)
        return code;
    json_t *t = task_await(c, id, &code);
    if (!t)
        return code;
    const char *st = task_state(t);
    bool ok = st && !strcmp(st, "succeeded");
    if (c->json) {
        cli_print_json(t);
    } else {
        cli_task_line(t, true, line, sizeof(line));
        printf("%s\n", line);
    }
    if (!ok)
        task_failed(t);
    json_decref(t);
    return ok ? 0 : EXIT_API;
}

static int task_cancel(struct cli *c, const struct cli_args *a)
{
    char id[128];
    int code;
    json_t *t = task_request(c, a->argv[0], "POST", "/cancel", id, sizeof(id), &code);
    if (!t)
        return code;
    if (c->json)
        cli_print_json(t);
    else
        printf("task %.8s: cancel requested (yun task wait %.8s)\n", id, id);
    json_decref(t);
    return 0;
}

static const struct cli_arg arg_task[] = {{"ID", CLI_K_TASK, NULL, 0}, {0}};

const struct cli_cmd cmd_task_entries[] = {
    {.words = "task", .summary = "long operations: progress, result, cancel"},
    {.words = "task list",
     .alias = "ls",
     .summary = "tasks, newest first",
     .opts =
         (const struct cli_opt[]){
             {"state", 0, "STATE", CLI_K_CHOICE, "queued running succeeded failed cancelled", 0,
              "only tasks in STATE"},
             {"object", 0, "NAME", CLI_K_TEXT, NULL, 0, "only tasks on this object"},
             {"limit", 'n', "N", CLI_K_TEXT, NULL, 0, "at most N tasks (50)"},
             {0}},
     .run = task_list},
    {.words = "task show",
     .summary = "one task (ID: its id or a unique prefix)",
     .args = arg_task,
     .run = task_show},
    {.words = "task wait",
     .summary = "wait for a task; exit 0 when it succeeded, 1 when it failed or was cancelled",
     .args = arg_task,
     .run = task_wait},
    {.words = "task cancel",
     .summary = "ask a running task to stop (its work is rolled back)",
     .args = arg_task,
     .run = task_cancel},
    {0},
};
