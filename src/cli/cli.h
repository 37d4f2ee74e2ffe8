/*
 * cli.h - what the yun command files share: global options, the blocking
 * HTTP client that talks to yund, and output helpers.
 */
#ifndef YUN_CLI_H
#define YUN_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct cli {
    char socket[256];
    char url[256]; /* http://host:port, when set used instead of the socket */
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

/* Returns a process exit code. argv[0] is the group name. */
int cmd_vm(struct cli *c, int argc, char **argv);
int cmd_image(struct cli *c, int argc, char **argv);
int cmd_events(struct cli *c, int argc, char **argv);
int cmd_host(struct cli *c, int argc, char **argv);
int cmd_completion(struct cli *c, int argc, char **argv);
int cmd_alert(struct cli *c, int argc, char **argv);
int cmd_top(struct cli *c, int argc, char **argv);
int cmd_volume(struct cli *c, int argc, char **argv);
int cmd_pool(struct cli *c, int argc, char **argv);
int cmd_snapshot(struct cli *c, int argc, char **argv);
/* Waits (for polling loops). */
void cli_sleep_ms(int ms);
int vm_stats(struct cli *c, const char *name);
int vm_console_attach(const char *sock_path, const char *name);

/* Exit codes */
#define EXIT_API   1 /* yund refused or failed */
#define EXIT_FAIL  EXIT_API
#define EXIT_USAGE 2 /* bad command line */
#define EXIT_CONN  3 /* yund unreachable */

#endif
