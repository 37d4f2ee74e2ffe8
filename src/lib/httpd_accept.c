/*
 * httpd_accept.c - the listeners of yun's HTTP server: accepting, the
 * max_connections cap (a short 503 for the excess), and a pause instead of
 * a spin when accept() fails for want of descriptors. Both warnings are
 * rate-limited; and the listening socket for a "HOST:PORT" setting. TCP
 * connections get TCP_NODELAY.
 */
#include "lib/httpd.h"
#include "lib/httpd_int.h"
#include "lib/log.h"
#include "lib/util.h"

#include <errno.h>
#include <netdb.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_PAUSE_MS 500  /* listener rest after EMFILE/ENFILE */
#define LOG_EVERY_MS    5000 /* at most one warning of a kind per interval */

/* A connection over the cap: a short 503 written without waiting, then
 * closed. What the client already sent is read first, so closing does not
 * reset the connection under the reply. */
static void shed(struct httpd *h, int fd)
{
    static const char body[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"too many "
                               "connections to yund (max_connections); try again\"}}\n";
    char reply[512];
    int n = snprintf(reply, sizeof(reply),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s",
                     sizeof(body) - 1, body);
    char scratch[4096];
    for (int i = 0; i < 4 && recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0; i++)
        ;
    (void)!send(fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    close(fd);
    int64_t now = monotonic_ms();
    if (now - h->shed_log_ms >= LOG_EVERY_MS) {
        log_warn("API: %d connections open (max_connections): refusing new ones with 503 "
                 "(%ld more since the last message)",
                 h->nconns, h->shed_quiet);
        h->shed_log_ms = now;
        h->shed_quiet = 0;
    } else {
        h->shed_quiet++;
    }
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct listener *l = arg;
    struct httpd *h = l->h;
    if (h->nconns >= h->lim.max_connections) {
        shed(h, fd);
        return;
    }
    if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
        /* a reply's last partial segment goes out at once: with Nagle it
         * waits for the client's delayed ACK (about 40 ms on Linux) */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    httpd_conn_open(l, fd);
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    evconnlistener_enable(l->lev);
}

/* accept() failed for a reason other than a retry: typically EMFILE or
 * ENFILE. Retrying at once would spin (the connection stays queued), so
 * the listener rests a moment; the warning is rate-limited. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    int err = errno;
    struct listener *l = arg;
    struct httpd *h = l->h;
    evconnlistener_disable(lev);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(l->resume, &tv);
    int64_t now = monotonic_ms();
    if (now - h->accept_err_log_ms >= LOG_EVERY_MS) {
        log_warn("API: accept: %s (%d connections open); pausing accepts for %d ms "
                 "(%ld more such errors since the last message)",
                 strerror(err), h->nconns, ACCEPT_PAUSE_MS, h->accept_err_quiet);
        h->accept_err_log_ms = now;
        h->accept_err_quiet = 0;
    } else {
        h->accept_err_quiet++;
    }
}

struct httpd *httpd_new(struct event_base *base, const struct httpd_limits *lim)
{
    struct httpd *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->base = base;
    h->lim = *lim;
    h->accept_err_log_ms = h->shed_log_ms = INT64_MIN / 2;
    return h;
}

int httpd_listen_fd(struct httpd *h, int fd, hreq_cb cb, void *arg)
{
    struct listener *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    l->h = h;
    l->cb = cb;
    l->arg = arg;
    l->resume = evtimer_new(h->base, on_resume_accept, l);
    l->lev = l->resume ? evconnlistener_new(h->base, on_accept, l,
                                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd)
                       : NULL;
    if (!l->lev) {
        if (l->resume)
            event_free(l->resume);
        free(l);
        return -1;
    }
    evconnlistener_set_error_cb(l->lev, on_accept_error);
    l->next = h->listeners;
    h->listeners = l;
    return 0;
}

int httpd_connections(const struct httpd *h)
{
    return h->nconns;
}

void httpd_free(struct httpd *h)
{
    if (!h)
        return;
    while (h->listeners) {
        struct listener *l = h->listeners;
        h->listeners = l->next;
        evconnlistener_free(l->lev);
        event_free(l->resume);
        free(l);
    }
    httpd_conn_close_all(h);
    free(h);
}

int httpd_listen_tcp(const char *what, const char *spec, bool numeric, char *err, size_t errlen)
{
    char host[64];
    snprintf(host, sizeof host, "%s", spec);
    char *colon = strrchr(host, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (!colon || port <= 0 || port > 65535) {
        snprintf(err, errlen, "%s '%s' is not HOST:PORT", what, spec);
        return -1;
    }
    *colon = 0;
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:8470 */
        h[hl - 1] = 0;
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res = NULL;
    if (numeric)
        hints.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res);
    if (rc) {
        snprintf(err, errlen, "%s %s: %s%s", what, spec, gai_strerror(rc),
                 numeric ? " (a numeric address)" : "");
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}
