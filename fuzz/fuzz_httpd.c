/*
 * fuzz_httpd.c - yund's HTTP/1.1 request parser (lib/httpd.c): the bytes
 * are what a client sends on one connection (request line, headers,
 * Content-Length or chunked bodies, pipelined requests), then it shuts its
 * side. The real connection code runs on a socketpair: every request that
 * parses gets a reply, and the connection must end (no hang, no leak) once
 * the client has gone.
 */
#include "fuzz.h"

#include "lib/httpd.h"
#include "lib/httpd_int.h"
#include "lib/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

static struct event_base *base;
static struct httpd *httpd;
static int requests;

static void on_request(struct hreq *r, void *arg)
{
    requests++;
    /* what the routes read of a request */
    const char *path = hreq_path(r);
    FUZZ_ASSERT(path && path[0]);
    (void)hreq_query(r);
    (void)hreq_method(r);
    FUZZ_ASSERT(hreq_method_name(r)[0]);
    (void)evhttp_find_header(hreq_input_headers(r), "Authorization");
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_printf(body, "{\"path\":\"%zu\",\"body\":%zu}\n", strlen(path),
                        evbuffer_get_length(hreq_body(r)));
    evhttp_add_header(hreq_output_headers(r), "Content-Type", "application/json");
    hreq_send(r, requests % 3 ? 200 : 404, body);
    evbuffer_free(body);
}

/* The client's side: whatever yund answers is read and dropped. */
static void on_client(evutil_socket_t fd, short what, void *arg)
{
    char buf[16384];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        ;
    if (n == 0)
        *(int *)arg = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base) {
        log_init(LOG_ERR - 1, NULL, 0); /* quiet: nothing below LOG_ERR */
        signal(SIGPIPE, SIG_IGN);       /* as yund does */
        base = event_base_new();
        struct httpd_limits lim = {
            .max_body = 4096, .max_header = 2048, .max_connections = 4, .timeout_s = 30};
        httpd = httpd_new(base, &lim);
        FUZZ_ASSERT(base && httpd);
    }
    static struct listener l;
    l.h = httpd;
    l.cb = on_request;
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    FUZZ_ASSERT(fuzz_write_all(sv[1], data, size) == 0);
    shutdown(sv[1], SHUT_WR);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    evutil_make_socket_nonblocking(sv[0]);
    requests = 0;
    httpd_conn_open(&l, sv[0]);
    FUZZ_ASSERT(httpd_connections(httpd) == 1);
    int closed = 0;
    struct event *cev = event_new(base, sv[1], EV_READ | EV_PERSIST, on_client, &closed);
    event_add(cev, NULL);
    /* Ends when yund has closed its side; a connection left open after the
     * client went away is a hang libFuzzer's -timeout reports. */
    while (httpd_connections(httpd) > 0 || !closed)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(cev);
    close(sv[1]);
    return 0;
}
