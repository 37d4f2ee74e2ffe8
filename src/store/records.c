/*
 * records.c - names of the enumerations in records.h, as stored in the
 * database and shown by the API.
 */
#include "store/records.h"
#include "lib/util.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

static const char *const state_names[VM_STATE_COUNT] = {"creating", "stopped",  "starting",
                                                        "running",  "paused",   "stopping",
                                                        "crashed",  "deleting", "unknown"};
static const char *const desired_names[WANT_COUNT] = {"stopped", "running", "paused", "deleted"};
static const char *const restart_names[] = {"no", "on-failure", "always"};

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *vm_state_name(enum vm_state s)
{
    return (unsigned)s < VM_STATE_COUNT ? state_names[s] : "unknown";
}

int vm_state_parse(const char *s, enum vm_state *out)
{
    int i = lookup(state_names, VM_STATE_COUNT, s);
    if (i < 0)
        return -1;
    *out = (enum vm_state)i;
    return 0;
}

const char *vm_desired_name(enum vm_desired d)
{
    return (unsigned)d < WANT_COUNT ? desired_names[d] : "unknown";
}

int vm_desired_parse(const char *s, enum vm_desired *out)
{
    int i = lookup(desired_names, WANT_COUNT, s);
    if (i < 0)
        return -1;
    *out = (enum vm_desired)i;
    return 0;
}

const char *restart_policy_name(enum restart_policy p)
{
    return (unsigned)p < 3 ? restart_names[p] : "no";
}

int restart_policy_parse(const char *s, enum restart_policy *out)
{
    int i = lookup(restart_names, 3, s);
    if (i < 0)
        return -1;
    *out = (enum restart_policy)i;
    return 0;
}

static const char *const vol_state_names[VOL_STATE_COUNT] = {"creating", "ready",     "attaching",
                                                             "attached", "detaching", "deleting"};

const char *vol_state_name(enum vol_state s)
{
    return (unsigned)s < VOL_STATE_COUNT ? vol_state_names[s] : "unknown";
}

int vol_state_parse(const char *s, enum vol_state *out)
{
    int i = lookup(vol_state_names, VOL_STATE_COUNT, s);
    if (i < 0)
        return -1;
    *out = (enum vol_state)i;
    return 0;
}

static const char *const snap_state_names[SNAP_STATE_COUNT] = {"creating", "ready", "deleting"};

const char *snap_state_name(enum snap_state s)
{
    return (unsigned)s < SNAP_STATE_COUNT ? snap_state_names[s] : "unknown";
}

int snap_state_parse(const char *s, enum snap_state *out)
{
    int i = lookup(snap_state_names, SNAP_STATE_COUNT, s);
    if (i < 0)
        return -1;
    *out = (enum snap_state)i;
    return 0;
}

static const char *const task_state_names[TASK_STATE_COUNT] = {"queued", "running", "succeeded",
                                                               "failed", "cancelled"};

const char *task_state_name(enum task_state s)
{
    return (unsigned)s < TASK_STATE_COUNT ? task_state_names[s] : "unknown";
}

int task_state_parse(const char *s, enum task_state *out)
{
    int i = lookup(task_state_names, TASK_STATE_COUNT, s);
    if (i < 0)
        return -1;
    *out = (enum task_state)i;
    return 0;
}

void task_rec_clear(struct task_rec *t)
{
    free(t->result);
    free(t->params);
    t->result = t->params = NULL;
}

int task_rec_copy(struct task_rec *dst, const struct task_rec *src)
{
    *dst = *src;
    dst->result = src->result ? strdup(src->result) : NULL;
    dst->params = src->params ? strdup(src->params) : NULL;
    if ((src->result && !dst->result) || (src->params && !dst->params)) {
        task_rec_clear(dst);
        return -1;
    }
    return 0;
}

void event_rec_vfill(struct event_rec *ev, const char *type, const char *object, const char *action,
                     const char *result, const char *fmt, va_list ap)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->object_type, sizeof(ev->object_type), "%s", type);
    snprintf(ev->object, sizeof(ev->object), "%s", object);
    snprintf(ev->action, sizeof(ev->action), "%s", action);
    snprintf(ev->result, sizeof(ev->result), "%s", result);
    char raw[sizeof(ev->reason)];
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    utf8_sanitize(ev->reason, sizeof(ev->reason), raw, strlen(raw),
                  n < 0 || (size_t)n >= sizeof(raw));
}
