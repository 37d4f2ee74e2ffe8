/*
 * hclient.h - an asynchronous HTTP/1.1 JSON client on libevent (evhttp's
 * client side), for the wire between controllers and agents: one client per
 * base URL, a small pool of keep-alive connections, a deadline per request
 * (a timer of its own), and cancellation after which the callback never runs.
 *
 * It never blocks the loop: the URL's host must be a numeric IPv4/IPv6
 * address or "localhost" (taken as 127.0.0.1), so nothing is resolved. The
 * callback always runs from the loop, never inside hclient_request().
 */
#ifndef YUN_HCLIENT_H
#define YUN_HCLIENT_H

#include <jansson.h>
#include <stdint.h>

#include "lib/yerr.h"

struct event_base;
struct hclient;
struct hclient_req;

#define HCLIENT_MAX_CONNS 4
#define HCLIENT_MAX_REPLY (64u << 20) /* bytes of a reply body */

/* The reply. err != NULL when there is no usable reply: then reply is NULL
 * and status is 0 when no HTTP answer came at all (connection refused or
 * reset, YE_UNAVAILABLE; the deadline, YE_TIMEOUT), or the status of an
 * answer that was not JSON (YE_BAD_GATEWAY) or too large (YE_TOO_LARGE).
 * Otherwise reply is the body's JSON (borrowed: incref to keep it; an empty
 * body is an empty object) and status its HTTP status, whatever it is (see
 * hclient_reply_error). */
typedef void (*hclient_cb)(void *ctx, int status, json_t *reply, const struct yerr *err);

/* Checks "http://HOST:PORT[/prefix]" (HOST numeric, or localhost); fills
 * host (>= 64 bytes) and port. 0, or -1 with YE_INVALID_ARGUMENT. */
int hclient_parse_url(const char *url, char *host, size_t hostlen, int *port, char *prefix,
                      size_t prefixlen, struct yerr *err);

/* NULL when base_url does not parse (hclient_parse_url says why). */
struct hclient *hclient_new(struct event_base *base, const char *base_url);
/* Drops every outstanding request without running its callback. */
void hclient_free(struct hclient *h);
const char *hclient_url(const struct hclient *h);

/* Sends method ("GET", "POST", "PUT", "DELETE") to base_url + path with
 * body (stolen; NULL sends no body) as JSON. bearer: NULL or the token for
 * "Authorization: Bearer ..."; extra_header: NULL or "Name: value".
 * timeout_ms > 0 is the request's deadline (YE_TIMEOUT after it).
 * The handle is valid until cb has run or hclient_cancel; never NULL
 * (a request that cannot start answers with an error, later). */
struct hclient_req *hclient_request(struct hclient *h, const char *method, const char *path,
                                    json_t *body, const char *bearer, const char *extra_header,
                                    int timeout_ms, hclient_cb cb, void *ctx);
/* The callback of r never runs; r is gone. */
void hclient_cancel(struct hclient_req *r);
/* Requests started and not yet answered or cancelled. */
int hclient_pending(const struct hclient *h);

/* For a callback's reply: 0 when status is 2xx; else -1 with err filled
 * from {"error": {"code", "message"}} (the code parsed back to its enum; an
 * unknown or missing code becomes the status's nearest one). */
int hclient_reply_error(int status, json_t *reply, struct yerr *err);

#endif
