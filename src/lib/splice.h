/*
 * splice.h - two bufferevents joined: what one reads the other writes,
 * both ways, with bounded buffers (backpressure: a side is not read while
 * the other side's output is above the limit). When either side ends, what
 * is still queued for the other is written out (for at most a few
 * seconds), then both are freed. Used by the serial console's upgraded
 * connections (API client <-> console, controller <-> agent).
 */
#ifndef YUN_SPLICE_H
#define YUN_SPLICE_H

#include <stddef.h>

struct bufferevent;
struct splice;

/* Takes both (they are freed when the splice ends; a failure frees them
 * too). limit: the most bytes queued toward one side before the other is
 * paused. done (may be NULL) runs once when the splice ends. The splice,
 * or NULL (out of memory). */
struct splice *bev_splice(struct bufferevent *a, struct bufferevent *b, size_t limit,
                          void (*done)(void *arg), void *arg);
/* Ends it now (shutdown): both freed, done runs. */
void splice_end(struct splice *s);

#endif
