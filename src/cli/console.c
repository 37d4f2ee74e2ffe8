/*
 * console.c - `yun vm console`: connects the terminal to the VM's live
 * serial console through the API: GET /v1/vms/NAME/console upgraded
 * ("Upgrade: yun-console") over the Unix socket or --url (each URL in turn
 * until one answers; a standby's not_leader sends it to the leader), then
 * raw bytes both ways.
 * yund (or the controller, through the VM's host's agent) does the rest,
 * so this works from anywhere the API is reachable. The terminal goes raw;
 * Ctrl-] detaches (as in telnet and virsh) and leaves the VM running.
 * Without a terminal (a pipe), input is sent until it ends and output is
 * read for a moment more.
 */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define ESCAPE_CHAR 0x1d /* Ctrl-] */
#define HEAD_MAX    16384

static int send_all_fd(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The error of a refused upgrade, printed; leader gets a not_leader's
 * leader URL ("" otherwise). */
static void print_refusal(int status, const char *body, char *leader, size_t ll)
{
    json_t *j = json_loads(body, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *l = json_string_value(json_object_get(e, "leader"));
    snprintf(leader, ll, "%s", code && !strcmp(code, "not_leader") && l ? l : "");
    if (!leader[0])
        fprintf(stderr, "yun: %s\n", msg ? msg : "the console was refused");
    if (!leader[0] && !msg)
        fprintf(stderr, "yun: (HTTP status %d)\n", status);
    json_decref(j);
}

/* Connects and upgrades: the fd (pre gets the console bytes read past the
 * answer's head), or -1 after printing why (*leader set: try there). */
static bool answered; /* the last upgrade() reached a yund that answered */

static int upgrade(const struct cli *c, const char *url, const char *name, char *pre,
                   size_t *prelen, char *leader, size_t ll)
{
    answered = false;
    char host[256], err[512];
    leader[0] = 0;
    int fd = cli_connect(c, url, host, sizeof host, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "yun: %s\n", err);
        return -1;
    }
    char *enc = cli_url_encode(name);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET /v1/vms/%s/console HTTP/1.1\r\nHost: %s\r\nUser-Agent: yun\r\n"
                     "Connection: Upgrade\r\nUpgrade: yun-console\r\n%s%s%s\r\n",
                     enc ? enc : "", host, url && c->token[0] ? "Authorization: Bearer " : "",
                     url ? c->token : "", url && c->token[0] ? "\r\n" : "");
    free(enc);
    if (n < 0 || (size_t)n >= sizeof req || send_all_fd(fd, req, (size_t)n) < 0) {
        fprintf(stderr, "yun: cannot send the console request: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    char *buf = malloc(HEAD_MAX + 65536 + 1);
    size_t len = 0;
    char *hend = NULL;
    while (!hend && len < HEAD_MAX) {
        ssize_t got = read(fd, buf + len, HEAD_MAX - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        buf[len] = 0;
        hend = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (!hend || sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
        fprintf(stderr, "yun: malformed answer to the console request\n");
        free(buf);
        close(fd);
        return -1;
    }
    size_t off = (size_t)(hend + 4 - buf);
    answered = true;
    if (status == 101) {
        *prelen = len - off;
        memcpy(pre, buf + off, *prelen);
        free(buf);
        return fd;
    }
    /* An error answer: its body, as long as Content-Length says (the
     * connection may be kept open). */
    size_t want = 0;
    for (char *l = strstr(buf, "\r\n"); l && l < hend; l = strstr(l + 2, "\r\n"))
        if (!strncasecmp(l + 2, "Content-Length:", 15))
            want = (size_t)strtoull(l + 17, NULL, 10);
    if (want > 65536)
        want = 65536;
    while (len - off < want) {
        ssize_t got = read(fd, buf + len, HEAD_MAX + 65536 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    buf[len] = 0;
    print_refusal(status, buf + off, leader, ll);
    free(buf);
    close(fd);
    return -1;
}

int vm_console_attach(const struct cli *c, const char *name)
{
    char list[1024], leader[512], pre[HEAD_MAX];
    size_t prelen = 0;
    int fd = -1;
    leader[0] = 0;
    if (!c->url[0]) {
        fd = upgrade(c, NULL, name, pre, &prelen, leader, sizeof leader);
    } else {
        /* each controller in turn until one answers; a standby's
         * not_leader names the leader, tried next */
        snprintf(list, sizeof list, "%s", c->url);
        char *save = NULL;
        for (char *u = strtok_r(list, ",", &save); u && fd < 0 && !answered;
             u = strtok_r(NULL, ",", &save))
            if (*u)
                fd = upgrade(c, u, name, pre, &prelen, leader, sizeof leader);
        if (fd < 0 && leader[0])
            fd = upgrade(c, leader, name, pre, &prelen, leader, sizeof leader);
    }
    if (fd < 0)
        return EXIT_API;
    bool tty = isatty(0);
    struct termios saved, raw;
    if (tty) {
        tcgetattr(0, &saved);
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(0, TCSANOW, &raw);
        fprintf(stderr, "Connected to %s console. Escape character is ^]\r\n", name);
    }
    if (prelen && write(1, pre, prelen) < 0)
        prelen = 0;
    int rc = 0;
    bool in_open = true;
    int linger_ms = 1000;
    for (;;) {
        struct pollfd pf[2] = {{fd, POLLIN, 0}, {0, POLLIN, 0}};
        int n = poll(pf, in_open ? 2 : 1, in_open ? -1 : linger_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* not a tty: input ended and output went quiet */
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[4096];
            ssize_t got = read(fd, buf, sizeof(buf));
            if (got <= 0) {
                if (tty)
                    fprintf(stderr, "\r\nconsole closed (vm stopped)\r\n");
                break;
            }
            if (write(1, buf, (size_t)got) < 0)
                break;
        }
        if (in_open && (pf[1].revents & (POLLIN | POLLHUP))) {
            char buf[1024];
            ssize_t got = read(0, buf, sizeof(buf));
            if (got <= 0) {
                in_open = false;
                continue;
            }
            char *esc = tty ? memchr(buf, ESCAPE_CHAR, (size_t)got) : NULL;
            size_t send_len = esc ? (size_t)(esc - buf) : (size_t)got;
            if (send_len && send_all_fd(fd, buf, send_len) < 0) {
                rc = EXIT_API;
                break;
            }
            if (esc) {
                fprintf(stderr, "\r\ndetached from %s (vm keeps running)\r\n", name);
                break;
            }
        }
    }
    if (tty)
        tcsetattr(0, TCSANOW, &saved);
    close(fd);
    return rc;
}
