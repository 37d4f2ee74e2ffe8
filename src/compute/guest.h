/*
 * guest.h - what yund knows of, and asks, a running VM's guest agent: the
 * VM's asynchronous agent client (qga.h), the guest facts that `vm show`
 * reports (OS, host name, IP addresses), and power-off through the agent.
 *
 * The facts are a cache, filled in the background: when the agent connects,
 * then every GUEST_FACTS_REFRESH_S, and at most once per GUEST_FACTS_STALE_S
 * when a reader finds them older than that. A request only ever reads the
 * cache, so a guest whose agent never answers costs each refresh a timeout
 * in the background, and no request anything.
 *
 * The state hangs off struct vm_rt (rt->guest) while the agent's port is
 * open; guest_forget() drops it, cancelling every pending exchange, when
 * QEMU exits, the port closes, or the runtime entry goes.
 */
#ifndef YUN_GUEST_H
#define YUN_GUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/records.h"

struct engine;
struct vm_rt;
struct qga_client;

#define GUEST_FACTS_REFRESH_S     60
#define GUEST_FACTS_STALE_S       30
#define GUEST_FACTS_TIMEOUT_MS    3000
#define GUEST_SHUTDOWN_TIMEOUT_MS 2000

struct guest_facts {
    int64_t fetched_at;   /* wall-clock ms of the last refresh that got answers; 0 never */
    bool answering;       /* the agent answered the last refresh */
    bool refreshing;      /* a refresh is under way */
    int pending;          /* agent exchanges queued or in flight for this VM */
    char error[200];      /* why the last refresh got no answer */
    char os[128];         /* guest-get-osinfo pretty-name */
    char hostname[256];   /* guest-get-host-name */
    json_t *ip_addresses; /* array of strings, or NULL when never fetched */
};

/* Hook: rt->agent_open changed (VSERPORT_CHANGE, or query-chardev after a
 * yund restart). Open: sets the guest state up and starts a refresh. */
void guest_agent_changed(struct vm_rt *rt);
/* Hook: QEMU exited or the runtime entry is dropped. NULL-safe. */
void guest_forget(struct vm_rt *rt);

/* The cached facts of VM vm_id while its agent port is open, or NULL. Valid until
 * control returns to the loop. May start a background refresh (stale). */
const struct guest_facts *guest_facts_get(struct engine *e, const char *vm_id);

/* The agent client of VM id, or NULL when its agent is not up. */
struct qga_client *guest_agent(struct engine *e, const char *vm_id);

/* Stop: asks the agent to power the guest off, without waiting for it. When
 * the agent fails or does not answer within GUEST_SHUTDOWN_TIMEOUT_MS and
 * the VM is still stopping, the ACPI power button is pressed instead.
 * Returns false when there is no agent to ask (press the button now). */
bool guest_request_shutdown(struct engine *e, const struct vm_rec *vm);

#endif
