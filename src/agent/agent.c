/*
 * agent.c - the generic side of the agent interface: calls go to the
 * implementation's ops, events fan out to subscribers, verbs have names.
 */
#include "agent/agent.h"
#include "agent/agent_local.h"

#include <stdlib.h>
#include <string.h>

uint64_t agent_call(struct agent *a, enum agent_verb v, json_t *args, agent_reply_fn done,
                    agent_progress_fn progress, void *ctx)
{
    return a->ops->call(a, v, args, done, progress, ctx);
}

int agent_cancel(struct agent *a, uint64_t call_id)
{
    return a->ops->cancel(a, call_id);
}

void agent_forget(struct agent *a, void *ctx)
{
    a->ops->forget(a, ctx);
}

int agent_subscribe(struct agent *a, agent_event_fn fn, void *ctx)
{
    if (a->nsubs == AGENT_MAX_SUBSCRIBERS)
        return -1;
    a->subs[a->nsubs].fn = fn;
    a->subs[a->nsubs].ctx = ctx;
    a->nsubs++;
    return 0;
}

void agent_emit(struct agent *a, const char *type, json_t *ev)
{
    for (int i = 0; i < a->nsubs; i++)
        a->subs[i].fn(a->subs[i].ctx, type, ev);
}

void agent_free(struct agent *a)
{
    if (a)
        a->ops->free(a);
}

const char *agent_verb_name(enum agent_verb v)
{
    const struct agent_verb_def *d = agent_local_verb(v);
    return d ? d->name : NULL;
}

int agent_verb_parse(const char *name, enum agent_verb *out)
{
    for (int v = 1; v < AV__COUNT; v++) {
        const struct agent_verb_def *d = agent_local_verb((enum agent_verb)v);
        if (d && name && !strcmp(d->name, name)) {
            *out = (enum agent_verb)v;
            return 0;
        }
    }
    return -1;
}

int agent_console_open(struct agent *a, const char *vm_id, agent_console_fn done, void *ctx,
                       struct yerr *err)
{
    if (!a->ops->console_open)
        return yerr_set(err, YE_NOT_IMPLEMENTED, "host %s serves no console", a->host);
    return a->ops->console_open(a, vm_id, done, ctx) < 0
               ? yerr_set(err, YE_INTERNAL, "cannot open the console: out of memory")
               : 0;
}

void agent_console_forget(struct agent *a, void *ctx)
{
    if (a->ops->console_forget)
        a->ops->console_forget(a, ctx);
}
