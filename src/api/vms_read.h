/*
 * vms_read.h - the VM list's full read off the event loop: one worker
 * thread with its own store connection reads every VM row, then hands
 * the rows back to the loop. Used by vms_list.c only.
 */
#ifndef YUN_API_VMS_READ_H
#define YUN_API_VMS_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "store/records.h"

struct event_base;
struct store;
struct vm_reader;

/* On the loop, once per vm_reader_start: the rows (ordered by name, the
 * callee owns and frees them) or, when vms is NULL, err says why. */
typedef void (*vm_read_done)(void *ctx, struct vm_rec *vms, size_t n, const char *err);

/* A reader connecting like main (its connection is opened on the thread,
 * at the first read, and again after a failed one). NULL when the thread
 * or its wake-up pipe cannot be had. */
struct vm_reader *vm_reader_new(struct event_base *base, const struct store *main,
                                vm_read_done done, void *ctx);
/* Starts a read (one at a time: not while busy). Its query begins after
 * this call returns. */
void vm_reader_start(struct vm_reader *r);
bool vm_reader_busy(const struct vm_reader *r);
/* Joins the thread (waiting for a read under way); done is not called. */
void vm_reader_free(struct vm_reader *r);

#endif
