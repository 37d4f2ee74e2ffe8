/*
 * pools.h - storage pools declared by name (`yun pool create NAME --path P
 * [--shared]`): a directory that holds VM disks (POOL/vms/VMID/disk.qcow2).
 * A shared pool is the same path on every host (an NFS or CephFS mount):
 * its disks are never copied by a live migration, and its VMs may be HA
 * (restarted on another host when theirs is lost).
 *
 * What is checked: the name ([a-z0-9][a-z0-9-]{0,62}, not "default", the
 * state directory's own pool), the path (absolute, normalised, no comma:
 * QEMU's option syntax, no "." or ".." parts, at most 200 bytes, no
 * other pool's path). The controller does not look at the path on disk
 * (it may not mount it); each host's agent checks that the path is a
 * directory when it makes a VM's disk there (vm.prepare) and when it
 * launches one (vm.launch): a host that lacks it fails that call with
 * the path named, and nothing is left behind.
 */
#ifndef YUN_CTL_POOLS_H
#define YUN_CTL_POOLS_H

#include "lib/yerr.h"
#include "store/records.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct ctl;
struct vm_spec;

/* 0, or -1 with err (400 a bad name or path, 409 a name or path taken). */
int ctl_pool_create(struct ctl *c, const char *name, const char *path, bool shared,
                    struct pool_rec *out, struct yerr *err);
/* 404 unknown, 409 while a VM's disk is in it. */
int ctl_pool_delete(struct ctl *c, const char *name, struct yerr *err);
int ctl_pool_get(struct ctl *c, const char *name, struct pool_rec *out, struct yerr *err);
int ctl_pool_list(struct ctl *c, struct pool_rec **out, size_t *n, struct yerr *err);
/* Where vm's disk chain lies ("" = its directory): POOL_PATH/vms/ID,
 * written into vm->disk_dir. 0, or -1 with err when its pool is gone. */
int ctl_pool_disk_dir(struct ctl *c, struct vm_rec *vm, struct yerr *err);
/* vm.remove's arguments for deleting vm: with its disk directory in its
 * pool, removed too (never for a move's cleanup: ctl/migrate*.c). */
json_t *ctl_vm_remove_args(struct ctl *c, const struct vm_rec *vm);
/* A create's pool and ha checked (400/404/409); disk_dir filled. */
int ctl_pool_for_create(struct ctl *c, const struct vm_spec *spec, struct vm_rec *vm,
                        struct yerr *err);
/* Pure: the checks above, for the API's body check too. */
int pool_name_check(const char *name, struct yerr *err);
int pool_path_check(const char *path, struct yerr *err);

#endif
