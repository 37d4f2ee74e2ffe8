/*
 * vms_orphans.h - the reconcile pass's orphan directories: a VM directory
 * on a host with no row (host.orphans), its QEMU ended, then its files
 * removed (vm.remove). vms_reconcile.c asks; vms_orphans.c acts on answers.
 */
#ifndef YUN_CTL_VMS_ORPHANS_H
#define YUN_CTL_VMS_ORPHANS_H

#include <jansson.h>

struct ctl;
struct rc_orphan;
struct rc_host;

/* The calls out: removals and host.orphans questions, each forgotten at shutdown. */
struct rc_orphans {
    struct ctl *c;
    struct rc_orphan *removing;
    struct rc_host *asking; /* unlinked in O(1): 10,000 hosts answer one pass */
};

/* Asks host_id which of its VM directories are not in known (its rows'
 * ids, read at the pass's end), for pass number pass; acts on the answer. */
void rc_orphans_ask(struct rc_orphans *o, const char *host_id, json_t *known, json_int_t pass);
/* Forgets every call out (the controller is stopping). */
void rc_orphans_shutdown(struct rc_orphans *o);

#endif
