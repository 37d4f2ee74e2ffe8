/*
 * vms_orphans.c - what the reconcile pass does about a VM directory on a
 * host with no row: the agent (host.orphans) says which directories are
 * not in the host's rows and whether a QEMU of one is still seen; a live
 * one is ended first (ctl_vm_end_qemu) and its files go on a later pass,
 * once the agent sees it gone (vm.remove refuses while a QEMU of it may
 * live, so files never go from under one). The pass (vms_reconcile.c)
 * decides when to ask; this file owns the calls out and their answers.
 */
#include "ctl/vms_orphans.h"

#include "agent/agent.h"
#include "ctl/hosts.h"
#include "ctl/migrate.h"
#include "ctl/vms_int.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An orphan directory's removal in flight. */
struct rc_orphan {
    struct rc_orphan *next;
    struct rc_orphans *o;
    char id[37];
    char host[37]; /* the host whose directory it is */
    pid_t pid;
};

/* A host.orphans question in flight: the host it went to. */
struct rc_host {
    struct rc_host *next, **pprev;
    struct rc_orphans *o;
    char host[37];
};

/* " (host NAME)" for an orphan on another host than this process's own. */
static const char *orphan_where(struct ctl *c, const char *host, char *buf, size_t len)
{
    if (ctl_host_same(c, host, ""))
        return "";
    snprintf(buf, len, " (host %s)", ctl_host_label(c, host));
    return buf;
}

static void on_orphan_removed(void *ctx, json_t *res, const struct yerr *err)
{
    (void)res;
    struct rc_orphan *x = ctx;
    struct rc_orphans *o = x->o;
    char where[128];
    if (err)
        log_warn("reconcile: directory %s with no vm record stays: %s", x->id, err->message);
    else
        ctl_event(o->c, "vm", x->id, "orphan", "info", "removed directory with no vm record%s%s",
                  x->pid ? " and ended its qemu" : "",
                  orphan_where(o->c, x->host, where, sizeof where));
    for (struct rc_orphan **pp = &o->removing; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    free(x);
}

static void orphan_remove(struct rc_orphans *o, const char *host, const char *id, pid_t pid)
{
    for (struct rc_orphan *x = o->removing; x; x = x->next)
        if (!strcmp(x->id, id) && !strcmp(x->host, host))
            return;
    struct rc_orphan *x = calloc(1, sizeof *x);
    if (!x)
        return;
    x->o = o;
    x->pid = pid;
    snprintf(x->id, sizeof x->id, "%s", id);
    snprintf(x->host, sizeof x->host, "%s", host);
    x->next = o->removing;
    o->removing = x;
    /* vm.remove refuses while a QEMU of it may live: never files under one */
    if (!ctl_host_call(o->c, host, AV_VM_REMOVE, json_pack("{s:s,s:i}", "vm", id, "uid", 0),
                       on_orphan_removed, NULL, x)) {
        o->removing = x->next;
        free(x);
    }
}

static void rc_host_free(struct rc_host *h)
{
    *h->pprev = h->next;
    if (h->next)
        h->next->pprev = h->pprev;
    free(h);
}

static void on_orphans(void *ctx, json_t *res, const struct yerr *err)
{
    struct rc_host *h = ctx;
    struct rc_orphans *o = h->o;
    char host[37];
    snprintf(host, sizeof host, "%s", h->host);
    rc_host_free(h);
    if (err) {
        log_warn("reconcile: orphan directories on host %s: %s", ctl_host_label(o->c, host),
                 err->message);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(res, "orphans"), i, e)
    {
        const char *id = json_string_value(json_object_get(e, "vm"));
        const char *seen = json_string_value(json_object_get(e, "seen"));
        if (!id || !seen)
            continue;
        /* a migration's target (or its source, until the move is settled)
         * holds a directory the host's rows do not name: the migration's
         * settle owns it; and a row moved here since the question was
         * asked is no orphan */
        struct vm_rec row;
        if (ctl_migration_open(o->c, id) ||
            (store_vm_get(o->c->store, id, &row) == 0 && ctl_host_same(o->c, row.host, host)))
            continue;
        if (strcmp(seen, "gone")) {
            /* its files go on a later pass, once the agent has ended it */
            struct vm_rec ghost = {0};
            snprintf(ghost.id, sizeof ghost.id, "%s", id);
            snprintf(ghost.name, sizeof ghost.name, "%s", id);
            snprintf(ghost.host, sizeof ghost.host, "%s", host);
            char where[128];
            ctl_event(o->c, "vm", id, "orphan", "info",
                      "ending the qemu of a directory with no vm record%s",
                      orphan_where(o->c, host, where, sizeof where));
            ctl_vm_end_qemu(o->c, &ghost);
            continue;
        }
        orphan_remove(o, host, id, (pid_t)json_integer_value(json_object_get(e, "pid")));
    }
}

void rc_orphans_ask(struct rc_orphans *o, const char *host_id, json_t *known, json_int_t pass)
{
    struct rc_host *h = calloc(1, sizeof *h);
    if (!h)
        return;
    h->o = o;
    snprintf(h->host, sizeof h->host, "%s", host_id);
    h->next = o->asking;
    if (h->next)
        h->next->pprev = &h->next;
    h->pprev = &o->asking;
    o->asking = h;
    if (!ctl_host_call(o->c, host_id, AV_HOST_ORPHANS,
                       json_pack("{s:O,s:I}", "known", known, "pass", pass), on_orphans, NULL, h))
        rc_host_free(h);
}

void rc_orphans_shutdown(struct rc_orphans *o)
{
    while (o->removing) {
        struct rc_orphan *x = o->removing;
        o->removing = x->next;
        ctl_agents_forget(o->c, x);
        free(x);
    }
    while (o->asking) {
        struct rc_host *h = o->asking;
        o->asking = h->next;
        ctl_host_forget(o->c, h->host, h); /* its calls went to its host only */
        free(h);
    }
}
