/*
 * httpd_int.h - what httpd.c (connections) and httpd_accept.c (listeners,
 * connection cap) share. Not for use outside src/lib/httpd*.c.
 */
#ifndef YUN_HTTPD_INT_H
#define YUN_HTTPD_INT_H

#include "lib/httpd.h"

#include <stdint.h>

struct evconnlistener;
struct event;
struct hconn;

struct listener {
    struct listener *next;
    struct httpd *h;
    struct evconnlistener *lev;
    struct event *resume; /* re-enables accepting after a pause */
    hreq_cb cb;
    void *arg;
};

struct httpd {
    struct event_base *base;
    struct httpd_limits lim;
    struct listener *listeners;
    struct hconn *conns;
    int nconns;
    int64_t accept_err_log_ms, shed_log_ms;
    long accept_err_quiet, shed_quiet; /* not logged since the last message */
};

/* Takes over an accepted socket as a new connection (counted in nconns). */
void httpd_conn_open(struct listener *l, int fd);
/* Frees every connection; parked requests get their close callback. */
void httpd_conn_close_all(struct httpd *h);

#endif
