/*
 * httpd.h - yund's own small HTTP/1.1 server on libevent bufferevents. It
 * owns connections, request parsing, limits (connections, header size, body
 * size, timeouts) and writing replies; what a request means is the caller's
 * business. One request at a time per connection; pipelined ones wait.
 */
#ifndef YUN_HTTPD_H
#define YUN_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct event_base;
struct evbuffer;
struct evkeyvalq;
struct httpd;
struct hreq;

struct httpd_limits {
    size_t max_body;     /* larger bodies get 413 before they are read */
    size_t max_header;   /* request line + headers; larger get 431 */
    int max_connections; /* over it a new connection gets 503 and is closed */
    int timeout_s;       /* read (while a request is incomplete), write and keep-alive idle */
};

typedef void (*hreq_cb)(struct hreq *req, void *arg);

struct httpd *httpd_new(struct event_base *base, const struct httpd_limits *lim);
/* Serves requests on an already listening non-blocking socket (taken over,
 * closed by httpd_free). Every complete request goes to cb. 0 or -1. */
int httpd_listen_fd(struct httpd *h, int fd, hreq_cb cb, void *arg);
/* Closes every listener and connection; parked requests get their close
 * callback first. */
void httpd_free(struct httpd *h);
int httpd_connections(const struct httpd *h);
/* The comma-separated header value v has token tok (case-insensitive). */
bool httpd_has_token(const char *v, const char *tok);
/* A non-blocking TCP socket listening on spec "HOST:PORT" ("[v6]:PORT";
 * an empty HOST is every address); with numeric, HOST and PORT must be
 * numeric (nothing resolved). -1 with err (naming what, the setting). */
int httpd_listen_tcp(const char *what, const char *spec, bool numeric, char *err, size_t errlen);

/* The request. Valid from cb until the reply is sent or, for a parked
 * request, until its close callback has run. */
int hreq_method(const struct hreq *r);              /* EVHTTP_REQ_*, or 0 for others */
const char *hreq_method_name(const struct hreq *r); /* as sent, e.g. "OPTIONS" */
const char *hreq_path(const struct hreq *r);        /* not decoded, never NULL */
const char *hreq_query(const struct hreq *r);       /* after '?', or NULL */
struct evkeyvalq *hreq_input_headers(struct hreq *r);
struct evkeyvalq *hreq_output_headers(struct hreq *r);
struct evbuffer *hreq_body(struct hreq *r);
/* Sends status + headers + body (its content is moved out; body may be
 * NULL) and ends the request. HEAD replies carry no body. r stays valid
 * until the loop runs again. */
void hreq_send(struct hreq *r, int status, struct evbuffer *body);
/* For a parked request: cb runs if the client goes away (or at shutdown)
 * before the reply; the request is freed right after it. NULL clears. */
void hreq_set_closecb(struct hreq *r, hreq_cb cb, void *arg);
/* Takes the connection over (RFC 9110 7.8): sends "101 Switching
 * Protocols" with Upgrade: protocol and the output headers, then hands the
 * connection's bufferevent to the caller, who owns and frees it (its
 * callbacks, timeouts and watermarks cleared; bytes the client sent after
 * the request are in its input). The request and httpd's connection are
 * gone on return (it no longer counts against max_connections). NULL (and
 * nothing sent) when the request has a body or was answered already. */
struct bufferevent *hreq_upgrade(struct hreq *r, const char *protocol);

#endif
