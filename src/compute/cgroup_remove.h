/*
 * cgroup_remove.h - removing a VM's cgroups without waiting on the loop:
 * one rmdir try now, then retries on a timer while a group is busy (a QEMU
 * that just exited may still be leaving it), then a callback.
 */
#ifndef YUN_COMPUTE_CGROUP_REMOVE_H
#define YUN_COMPUTE_CGROUP_REMOVE_H

#include "compute/cgroup.h"

#include <event2/event.h>

/* How a removal went: 0 every group gone, 1 still busy after the last try,
 * -1 another error (already logged). */
typedef void (*cg_removed_fn)(void *ctx, int rc);

struct cg_removal;

/* Starts removing group's cgroups (lay must outlive the removal). When the
 * first try settles it, done runs before the return and NULL is returned;
 * otherwise the pending removal, whose done runs from the loop. done may be
 * NULL. */
struct cg_removal *cg_remove_start(struct event_base *base, const struct cg_layout *lay,
                                   const char *group, cg_removed_fn done, void *ctx);
/* Stops a pending removal; its done never runs. */
void cg_remove_cancel(struct cg_removal *r);
/* The group a pending removal is for. */
const char *cg_removal_group(const struct cg_removal *r);

#endif
