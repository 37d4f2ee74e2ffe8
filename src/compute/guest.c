/*
 * guest.c - the guest side of a running VM: its asynchronous agent client,
 * the cached guest facts (refreshed in the background, never on a request),
 * and power-off through the agent with the ACPI button as the fallback.
 */
#include "compute/guest.h"
#include "compute/qmp.h"
#include "compute/engine.h"
#include "compute/qemu_argv.h"
#include "compute/qga.h"
#include "lib/log.h"
#include "lib/util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct guest {
    struct vm_rt *rt;
    struct qga_client *qga;
    struct event *refresh_timer; /* every GUEST_FACTS_REFRESH_S */
    int64_t tried_at;            /* monotonic ms when the last refresh started */
    int step;                    /* which fact the refresh is asking for */
    bool silent_noted;           /* "not answering" is in the event log */
    struct guest_facts f;
};

/* A refresh asks these one after the other, on one agent connection. */
static const char *const fact_commands[] = {"guest-get-osinfo", "guest-get-host-name",
                                            "guest-network-get-interfaces"};
#define NFACTS (sizeof(fact_commands) / sizeof(fact_commands[0]))

static void refresh(struct guest *g);

static void keep_fact(struct guest *g, json_t *ret)
{
    if (g->step == 0) {
        const char *pretty = json_string_value(json_object_get(ret, "pretty-name"));
        snprintf(g->f.os, sizeof(g->f.os), "%s", pretty ? pretty : "");
    } else if (g->step == 1) {
        const char *h = json_string_value(json_object_get(ret, "host-name"));
        snprintf(g->f.hostname, sizeof(g->f.hostname), "%s", h ? h : "");
    } else {
        json_t *ips = json_array();
        size_t i, k;
        json_t *ifc, *ip;
        json_array_foreach(ret, i, ifc)
        {
            const char *name = json_string_value(json_object_get(ifc, "name"));
            if (name && !strcmp(name, "lo"))
                continue;
            json_array_foreach(json_object_get(ifc, "ip-addresses"), k, ip)
            {
                const char *addr = json_string_value(json_object_get(ip, "ip-address"));
                if (addr && json_array_size(ips) < 64)
                    json_array_append_new(ips, json_string(addr));
            }
        }
        json_decref(g->f.ip_addresses);
        g->f.ip_addresses = ips;
    }
}

static void on_fact(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct guest *g = ctx;
    if (st == QGA_CANCELLED)
        return; /* the guest state is being dropped */
    struct engine *e = g->rt->eng;
    if (st == QGA_FAILED) {
        g->f.refreshing = false;
        g->f.answering = false;
        snprintf(g->f.error, sizeof(g->f.error), "%s", err);
        if (!g->silent_noted)
            engine_notify(e, "vm.guest",
                          json_pack("{s:s,s:s,s:s}", "vm", g->rt->id, "agent", "silent", "error",
                                    err ? err : "no answer"));
        g->silent_noted = true;
        return;
    }
    /* An agent error (an old agent without the command) still answers. */
    if (st == QGA_OK)
        keep_fact(g, ret);
    if (++g->step < (int)NFACTS) {
        if (qga_call(g->qga, fact_commands[g->step], NULL, 0, GUEST_FACTS_TIMEOUT_MS, on_fact, g) <
            0)
            g->f.refreshing = false;
        return;
    }
    g->f.refreshing = false;
    g->f.answering = true;
    g->f.error[0] = 0;
    g->f.fetched_at = now_ms();
    if (g->silent_noted)
        engine_notify(e, "vm.guest", json_pack("{s:s,s:s}", "vm", g->rt->id, "agent", "answering"));
    g->silent_noted = false;
}

static void refresh(struct guest *g)
{
    if (g->f.refreshing)
        return;
    g->tried_at = monotonic_ms();
    g->step = 0;
    g->f.refreshing =
        qga_call(g->qga, fact_commands[0], NULL, 0, GUEST_FACTS_TIMEOUT_MS, on_fact, g) == 0;
}

static void on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    refresh(arg);
}

static struct guest *guest_up(struct vm_rt *rt)
{
    if (rt->guest)
        return rt->guest;
    struct engine *e = rt->eng;
    char sock[512];
    if (snprintf_checked(sock, sizeof(sock), "%s/%s/%s", e->vms_dir, rt->id, VMDIR_QGA) < 0)
        return NULL;
    struct guest *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->rt = rt;
    g->qga = qga_client_new(e->base, sock);
    g->refresh_timer = event_new(e->base, -1, EV_PERSIST, on_refresh_timer, g);
    if (!g->qga || !g->refresh_timer) {
        qga_client_free(g->qga);
        if (g->refresh_timer)
            event_free(g->refresh_timer);
        free(g);
        log_warn("vm %s: cannot set up its guest agent client (socket path too long, or out "
                 "of memory)",
                 rt->name);
        return NULL;
    }
    struct timeval tv = {GUEST_FACTS_REFRESH_S, 0};
    event_add(g->refresh_timer, &tv);
    rt->guest = g;
    return g;
}

void guest_agent_changed(struct vm_rt *rt)
{
    if (!rt->agent_open) {
        guest_forget(rt);
        return;
    }
    struct guest *g = guest_up(rt);
    if (g)
        refresh(g);
}

void guest_forget(struct vm_rt *rt)
{
    if (!rt || !rt->guest)
        return;
    struct guest *g = rt->guest;
    rt->guest = NULL; /* callbacks run by the cancellation below find no guest */
    qga_client_free(g->qga);
    event_free(g->refresh_timer);
    json_decref(g->f.ip_addresses);
    free(g);
}

const struct guest_facts *guest_facts_get(struct engine *e, const char *vm_id)
{
    struct vm_rt *rt = engine_rt_find(e, vm_id);
    if (!rt || !rt->watch || !rt->agent_open)
        return NULL;
    struct guest *g = guest_up(rt);
    if (!g)
        return NULL;
    if (monotonic_ms() - g->tried_at >= GUEST_FACTS_STALE_S * 1000LL)
        refresh(g);
    g->f.pending = qga_pending(g->qga);
    return &g->f;
}

struct qga_client *guest_agent(struct engine *e, const char *vm_id)
{
    struct vm_rt *rt = engine_rt_find(e, vm_id);
    if (!rt || !rt->watch || !rt->agent_open)
        return NULL;
    struct guest *g = guest_up(rt);
    return g ? g->qga : NULL;
}

/* How a power-off the agent could not take went on ("vm.powerdown"
 * {"vm","agent_error"[,"acpi_error"]}): the controller words it, if the VM
 * is still stopping. */
static void powerdown_note(struct vm_rt *rt, const char *agent_err, const char *acpi_err)
{
    engine_notify(rt->eng, "vm.powerdown",
                  json_pack("{s:s,s:s?,s:s?}", "vm", rt->id, "agent_error", agent_err, "acpi_error",
                            acpi_err));
}

static void on_acpi_pressed(void *ctx, json_t *ret, const char *err)
{
    struct vm_rt *rt = ctx;
    if (err)
        powerdown_note(rt, NULL, err);
}

static void on_shutdown(void *ctx, enum qga_status st, json_t *ret, const char *err)
{
    struct guest *g = ctx;
    if (st == QGA_CANCELLED)
        return; /* QEMU is gone already */
    if (st == QGA_OK) {
        log_debug("vm %s: the guest agent took the power-off request", g->rt->name);
        return;
    }
    /* the ACPI button, over the event connection (never a wait here) */
    if (!g->rt->watch ||
        qmp_watch_command(g->rt->watch, "system_powerdown", NULL, on_acpi_pressed, g->rt) < 0)
        powerdown_note(g->rt, err ? err : "no answer", "no QMP connection");
    else
        powerdown_note(g->rt, err ? err : "no answer", NULL);
}

bool guest_request_shutdown(struct engine *e, const struct vm_rec *vm)
{
    char sock[512];
    if (!engine_vm_agent(e, vm, sock, sizeof(sock)))
        return false;
    struct guest *g = guest_up(engine_rt_find(e, vm->id));
    if (!g)
        return false;
    json_t *mode = json_pack("{s:s}", "mode", "powerdown");
    int rc = qga_call(g->qga, "guest-shutdown", mode, QGA_NO_REPLY, GUEST_SHUTDOWN_TIMEOUT_MS,
                      on_shutdown, g);
    json_decref(mode);
    return rc == 0;
}
