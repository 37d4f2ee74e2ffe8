/*
 * console_bridge.h - an HTTP request taken over as a live serial console:
 * the upgrade's checks (GET, "Connection: Upgrade", "Upgrade:
 * yun-console"), then the VM's console opened on an agent, then 101 and the
 * client's connection spliced to the console stream (lib/splice.c, bounded
 * both ways). The API's GET /v1/vms/{name}/console (with the upgrade) and
 * the agent API's GET /agent/v1/console/{vm} both end here.
 */
#ifndef YUN_CONSOLE_BRIDGE_H
#define YUN_CONSOLE_BRIDGE_H

#include <stdbool.h>

#include "lib/yerr.h"

struct agent;
struct hreq;

#define CONSOLE_PROTOCOL "yun-console"
#define CONSOLE_LIMIT    (256u * 1024) /* bytes queued toward either side */

/* The request asks for an upgrade at all (has an Upgrade header). */
bool console_upgrade_asked(struct hreq *req);
/* A valid console upgrade: 0, or -1 with YE_BAD_REQUEST saying why. */
int console_upgrade_check(struct hreq *req, struct yerr *err);

/* How the caller answers an error (its own JSON shape). */
typedef void (*console_fail_fn)(struct hreq *req, const struct yerr *err);
/* Opens vm_id's console on a; once open, req is answered 101 and its
 * connection spliced to the stream; an error goes to fail. The request is
 * parked meanwhile (a client gone first is noticed). 0, or -1 with err (req
 * not answered: the caller replies). */
int console_bridge(struct hreq *req, struct agent *a, const char *vm_id, console_fail_fn fail,
                   struct yerr *err);
/* Consoles spliced right now (for tests and status). */
int console_bridges(void);
/* Ends every spliced console (shutdown: before the servers go). */
void console_bridges_close_all(void);

#endif
