/*
 * agent_console.c - the verb that reads a VM's persistent serial console
 * log on this host (over compute/console_log.c, which owns the file, its
 * cut-off part and its base).
 *
 *   vm.console_read {"vm","offset","max"}
 *                   -> {"data_b64","offset","next","start","end"}
 *                   Up to max (1..16 MiB) bytes from offset, a position in
 *                   all the guest ever printed: one before the oldest kept
 *                   byte is moved up to it ("start"), one past the end down
 *                   to the end ("end"); "offset" is where the data starts,
 *                   "next" where to read on. A VM with no log yet reads as
 *                   empty. A bounded read of a local file: done at once on
 *                   the loop, answered from it.
 */
#include "agent/agent_local.h"
#include "agent/agent_power.h"
#include "compute/console_log.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "lib/base64.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONSOLE_READ_MAX (16u << 20) /* the API's limit on one read */

static int u64_arg(json_t *args, const char *key, uint64_t lo, uint64_t hi, uint64_t *out)
{
    json_t *v = json_object_get(args, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < lo ||
        (uint64_t)json_integer_value(v) > hi)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static void console_read(struct agent_local *al, struct agent_op *op, json_t *args)
{
    struct engine *e = agent_op_host(al, op);
    const char *id = e ? agent_op_vm_id(op, args) : NULL;
    if (!id)
        return;
    uint64_t offset, max;
    if (u64_arg(args, "offset", 0, UINT64_MAX >> 1, &offset) < 0 ||
        u64_arg(args, "max", 1, CONSOLE_READ_MAX, &max) < 0) {
        agent_op_fail(op, YE_INVALID_ARGUMENT,
                      "agent: vm.console_read takes offset (a whole number) and max (1..%u)",
                      CONSOLE_READ_MAX);
        return;
    }
    struct vm_rec vm = {0};
    snprintf(vm.id, sizeof vm.id, "%s", id);
    char path[512];
    if (engine_vm_path(e, &vm, VMDIR_CONLOG, path, sizeof path) < 0) {
        agent_op_fail(op, YE_INTERNAL, "path too long");
        return;
    }
    struct console_chunk ch;
    if (console_log_read(path, offset, max, &ch) < 0) {
        agent_op_fail(op, YE_INTERNAL, "cannot read the console log: %s", strerror(errno));
        return;
    }
    char *b64 = base64_encode(ch.data ? ch.data : "", ch.len);
    free(ch.data);
    json_t *r = b64 ? json_pack("{s:s,s:I,s:I,s:I,s:I}", "data_b64", b64, "offset",
                                (json_int_t)ch.offset, "next", (json_int_t)ch.next, "start",
                                (json_int_t)ch.start, "end", (json_int_t)ch.end)
                    : NULL;
    free(b64);
    if (!r) {
        agent_op_fail(op, YE_INTERNAL, "out of memory");
        return;
    }
    agent_op_reply(op, r, NULL);
}

const struct agent_verb_def agent_console_verbs[] = {
    {AV_VM_CONSOLE_READ, "vm.console_read", console_read},
};
const size_t agent_console_verbs_count = sizeof agent_console_verbs / sizeof agent_console_verbs[0];
