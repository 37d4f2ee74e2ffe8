/*
 * cli.h - what the yun command files share: global options, the blocking
 * HTTP client that talks to yund, and output helpers.
 */
#ifndef YUN_CLI_H
#define YUN_CLI_H

#include "cli/cmdtable.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct cli {
    char socket[256];
    char url[1024]; /* http://host:port[,http://...], when set used instead of the socket */
    char token[256];
    bool json; /* -o json */
};

struct http_resp {
    int status;
    char *body;
    size_t len;
    long long next_offset; /* X-Yun-Next-Offset, -1 if absent */
};

/* One request; body may be NULL. Returns 0 when a response arrived (any
 * status), -1 with a reason in err when yund could not be reached. */
int cli_http(const struct cli *c, const char *method, const char *path, const char *body,
             struct http_resp *r, char *err, size_t errlen);
void http_resp_free(struct http_resp *r);
/* s percent-encoded for a URL path or query; malloc'd (NULL when out of memory). */
char *cli_url_encode(const char *s);

/* Request + JSON decode + error reporting: returns the decoded body on a 2xx
 * reply; otherwise prints "yun: <message>" and returns NULL, setting *exit_code. */
json_t *cli_call(const struct cli *c, const char *method, const char *path, json_t *body,
                 int *exit_code);

/* Prints r as JSON (-o json) or fmt with name; consumes r; returns 0. */
int cli_done(const struct cli *c, json_t *r, const char *fmt, const char *name);
/* Prints a JSON value the way -o json wants it. */
void cli_print_json(json_t *j);
void cli_fmt_age(long long seconds, char *buf, size_t len);
void cli_fmt_time(long long ms, char *buf, size_t len);
void cli_fmt_bytes(long long bytes, char *buf, size_t len);

/* The command table, one part per file (cmdtable.h); main.c joins them. */
extern const struct cli_cmd cmd_vm_entries[];
extern const struct cli_cmd cmd_image_entries[];
extern const struct cli_cmd cmd_volume_entries[];
extern const struct cli_cmd cmd_snapshot_entries[];
extern const struct cli_cmd cmd_task_entries[];
extern const struct cli_cmd cmd_events_entries[];
extern const struct cli_cmd cmd_host_entries[];
extern const struct cli_cmd cmd_top_entries[];
extern const struct cli_cmd cmd_alert_entries[];
extern const struct cli_cmd cmd_place_entries[];
extern const struct cli_cmd cmd_migrate_entries[];
/* Placement (cmd_place.c): the verdict table of an explanation, and GET
 * /v1/vms/NAME/placement printed (returns the exit code). */
void cli_print_placement(json_t *placement);
/* --image, --cpus, --memory, --host, --group, --require, --start into a
 * create's (or a dry run's) body; -1 after a one-line reason (cmd_vm.c) */
int cli_vm_shape_body(const struct cli_args *a, json_t *body);
int cli_show_placement(struct cli *c, const char *name);

/* Long operations (task.c). A reply that carries {"task": TASK} is waited
 * for: returns CLI_TASK_DONE with *result set to the task's result (NULL
 * when it has none; the caller frees it), or CLI_TASK_EXIT with *code set
 * (--no-wait printed the task id, or the task failed and its message was
 * printed). A reply without a task returns CLI_NO_TASK (the caller goes on
 * as before tasks). Consumes nothing: reply stays the caller's. */
enum cli_task_outcome { CLI_NO_TASK, CLI_TASK_DONE, CLI_TASK_EXIT };
enum cli_task_outcome cli_task_follow(const struct cli *c, json_t *reply, bool no_wait,
                                      json_t **result, int *code);
/* Waits until the task finishes; returns it (succeeded) or NULL with *code
 * set after printing its error. On a terminal, one progress line on stderr. */
json_t *cli_wait_task(const struct cli *c, const char *id, int *code);
/* POSTs body (consumed; may be NULL) to path; follows a task in the reply
 * (--no-wait when the command has that option); prints fmt with name, or
 * the object (the task's result) as JSON with -o json. Returns the exit code. */
int cli_post_task(const struct cli *c, const struct cli_args *a, const char *path, json_t *body,
                  const char *fmt, const char *name);

/* Waits (for polling loops). */
void cli_sleep_ms(int ms);
int vm_stats(struct cli *c, const char *name);
/* The live console of VM name through the API (an upgraded GET
 * /v1/vms/NAME/console); the exit code. */
int vm_console_attach(const struct cli *c, const char *name);
/* A blocking connection to url (NULL: the Unix socket); host gets the
 * Host header's value. The fd, or -1 with err. */
int cli_connect(const struct cli *c, const char *url, char *host, size_t hl, char *err, size_t el);

/* Exit codes */
#define EXIT_API   1 /* yund refused or failed */
#define EXIT_FAIL  EXIT_API
#define EXIT_USAGE 2 /* bad command line */
#define EXIT_CONN  3 /* yund unreachable */

#endif
