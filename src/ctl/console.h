/*
 * console.h - the controller's side of a VM's serial console log: a read
 * through the host agent's vm.console_read, and the reply decoded.
 */
#ifndef YUN_CTL_CONSOLE_H
#define YUN_CTL_CONSOLE_H

#include "ctl/ctl.h"

#include <stddef.h>
#include <stdint.h>

/* Asks the VM's host for up to limit bytes of its console from offset (a
 * position in all the guest printed). done runs once, from the loop, with
 * the agent's result (decode it with ctl_console_decode) or an error;
 * ctl_forget(ctx) drops it. Returns the call; 0 when it could not be made
 * (done never runs then). */
uint64_t ctl_vm_console_read(struct ctl *c, const struct vm_rec *vm, uint64_t offset,
                             uint64_t limit, ctl_json_fn done, void *ctx);

struct ctl_console_chunk {
    unsigned char *data; /* malloc'd (free it), NUL-terminated past len */
    size_t len;
    uint64_t next;  /* where to read on */
    uint64_t start; /* the oldest offset still kept */
    uint64_t end;   /* everything printed so far */
};
/* The chunk in a vm.console_read result: 0, or -1 with err (a malformed
 * result is YE_INTERNAL). */
int ctl_console_decode(json_t *result, struct ctl_console_chunk *out, struct yerr *err);

#endif
