/*
 * console.c - reading a VM's serial console log through its host's agent
 * (vm.console_read, agent_console.c); the API never opens the file itself,
 * so the log may live on another host.
 */
#include "ctl/console.h"

#include "agent/agent.h"
#include "lib/base64.h"

#include <stdlib.h>
#include <string.h>

uint64_t ctl_vm_console_read(struct ctl *c, const struct vm_rec *vm, uint64_t offset,
                             uint64_t limit, ctl_json_fn done, void *ctx)
{
    json_t *args = json_pack("{s:s,s:I,s:I}", "vm", vm->id, "offset", (json_int_t)offset, "max",
                             (json_int_t)limit);
    /* agent_call validates the arguments (a row without an id, an offset
     * out of range) and answers from the loop either way */
    return ctl_vm_call(c, vm, AV_VM_CONSOLE_READ, args, done, NULL, ctx);
}

static int u64_of(json_t *r, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(r, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int ctl_console_decode(json_t *r, struct ctl_console_chunk *out, struct yerr *err)
{
    memset(out, 0, sizeof *out);
    const char *b64 = json_string_value(json_object_get(r, "data_b64"));
    uint64_t offset;
    if (!b64 || u64_of(r, "offset", &offset) < 0 || u64_of(r, "next", &out->next) < 0 ||
        u64_of(r, "start", &out->start) < 0 || u64_of(r, "end", &out->end) < 0)
        return yerr_set(err, YE_INTERNAL, "agent: a malformed vm.console_read result");
    out->data = base64_decode(b64, &out->len);
    if (!out->data)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    if (offset + out->len != out->next || out->start > out->end || out->next > out->end) {
        free(out->data);
        out->data = NULL;
        out->len = 0;
        return yerr_set(err, YE_INTERNAL, "agent: a malformed vm.console_read result");
    }
    return 0;
}
