/*
 * console.c - `yun vm console`: connects the terminal to the VM's serial
 * console socket. The terminal goes raw; Ctrl-] detaches (as in telnet and
 * virsh) and leaves the VM running. Without a terminal (a pipe), input is
 * sent until it ends and output is read for a moment more.
 */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define ESCAPE_CHAR 0x1d /* Ctrl-] */

int vm_console_attach(const char *sock_path, const char *name)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof(sa.sun_path) || !sock_path[0]) {
        fprintf(stderr, "yun: bad console socket path\n");
        return EXIT_API;
    }
    strcpy(sa.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr,
                "yun: cannot attach to console of %s: %s (only one console client at a "
                "time; the console is local to yund's host)\n",
                name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return EXIT_API;
    }
    bool tty = isatty(0);
    struct termios saved, raw;
    if (tty) {
        tcgetattr(0, &saved);
        raw = saved;
        cfmakeraw(&raw);
        tcsetattr(0, TCSANOW, &raw);
        fprintf(stderr, "Connected to %s console. Escape character is ^]\r\n", name);
    }
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
            if (send_len && send(fd, buf, send_len, MSG_NOSIGNAL) < 0) {
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
