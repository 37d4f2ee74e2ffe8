/*
 * pools.c - storage pools declared by name (pools.h).
 */
#include "ctl/pools.h"
#include "ctl/ctl.h"
#include "lib/log.h"
#include "lib/util.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

#define POOL_PATH_MAX 200

int pool_name_check(const char *name, struct yerr *err)
{
    size_t n = name ? strlen(name) : 0;
    bool ok = n >= 1 && n <= 63 &&
              ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9'));
    for (size_t i = 1; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '-';
    if (!ok)
        return yerr_set(err, YE_INVALID_ARGUMENT, "name: a pool name is [a-z0-9][a-z0-9-]{0,62}");
    if (!strcmp(name, "default"))
        return yerr_set(err, YE_CONFLICT, "name: \"default\" is the state directory's own pool");
    return 0;
}

int pool_path_check(const char *path, struct yerr *err)
{
    size_t n = path ? strlen(path) : 0;
    if (n < 2 || path[0] != '/' || n > POOL_PATH_MAX)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "path: an absolute directory of at most %d bytes, not /", POOL_PATH_MAX);
    if (path[n - 1] == '/' || strstr(path, "//") || strchr(path, ','))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "path: no trailing '/', no '//' and no ',' (QEMU's option syntax)");
    for (const char *p = path; *p;) {
        p++; /* past '/' */
        size_t l = strcspn(p, "/");
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
            return yerr_set(err, YE_INVALID_ARGUMENT, "path: no '.' or '..' parts");
        for (size_t i = 0; i < l; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return yerr_set(err, YE_INVALID_ARGUMENT, "path: no control characters");
        p += l;
    }
    return 0;
}

int ctl_pool_create(struct ctl *c, const char *name, const char *path, bool shared,
                    struct pool_rec *out, struct yerr *err)
{
    if (pool_name_check(name, err) < 0 || pool_path_check(path, err) < 0)
        return -1;
    struct pool_rec p = {.shared = shared ? 1 : 0, .created_at = now_ms()};
    snprintf(p.name, sizeof p.name, "%s", name);
    snprintf(p.path, sizeof p.path, "%s", path);
    int rc = store_pool_insert(c->store, &p);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "a pool named %s, or one at %s, exists", name, path);
    if (rc)
        return yerr_db(err, store_errmsg(c->store));
    ctl_event(c, "pool", name, "create", "ok", "pool %s at %s%s", name, path,
              shared ? " (shared: the same path on every host)" : "");
    if (out)
        *out = p;
    return 0;
}

int ctl_pool_get(struct ctl *c, const char *name, struct pool_rec *out, struct yerr *err)
{
    int rc = store_pool_get(c->store, name, out);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "no pool named %.64s", name);
    if (rc)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_pool_delete(struct ctl *c, const char *name, struct yerr *err)
{
    struct pool_rec p;
    if (ctl_pool_get(c, name, &p, err) < 0)
        return -1;
    int users = 0;
    if (store_pool_users(c->store, name, &users) < 0)
        return yerr_db(err, store_errmsg(c->store));
    if (users)
        return yerr_set(err, YE_CONFLICT, "pool %s holds the disks of %d vm(s)", name, users);
    int rc = store_pool_delete(c->store, name);
    if (rc && rc != STORE_NOTFOUND)
        return yerr_db(err, store_errmsg(c->store));
    ctl_event(c, "pool", name, "delete", "ok", "pool %s deleted (its directory %s is left)", name,
              p.path);
    return 0;
}

int ctl_pool_list(struct ctl *c, struct pool_rec **out, size_t *n, struct yerr *err)
{
    if (store_pool_list(c->store, out, n) < 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_pool_disk_dir(struct ctl *c, struct vm_rec *vm, struct yerr *err)
{
    vm->disk_dir[0] = 0;
    if (!vm->pool[0])
        return 0;
    struct pool_rec p;
    if (ctl_pool_get(c, vm->pool, &p, err) < 0)
        return -1;
    if (snprintf_checked(vm->disk_dir, sizeof vm->disk_dir, "%s/vms/%s", p.path, vm->id) < 0)
        return yerr_set(err, YE_INTERNAL, "pool %s: path too long", p.name);
    return 0;
}

json_t *ctl_vm_remove_args(struct ctl *c, const struct vm_rec *vm)
{
    json_t *a = json_pack("{s:s,s:I}", "vm", vm->id, "uid", (json_int_t)vm->uid);
    struct vm_rec v = *vm;
    struct yerr err = {0};
    if (a && v.pool[0]) {
        if (ctl_pool_disk_dir(c, &v, &err) == 0)
            json_object_set_new(a, "disk_dir", json_string(v.disk_dir));
        else /* the pool row is gone (it cannot be while the VM row is): logged */
            log_warn("vm %s: its disk in pool %s stays: %s", vm->name, vm->pool, err.message);
    }
    return a;
}

int ctl_pool_for_create(struct ctl *c, const struct vm_spec *spec, struct vm_rec *vm,
                        struct yerr *err)
{
    vm->disk_dir[0] = 0;
    if (!spec->pool[0]) {
        if (spec->ha)
            return yerr_set(err, YE_CONFLICT,
                            "ha needs the vm's disk on a shared pool (--pool NAME, a pool made "
                            "with --shared)");
        return 0;
    }
    struct pool_rec p;
    if (ctl_pool_get(c, spec->pool, &p, err) < 0)
        return -1;
    if (spec->ha && !p.shared)
        return yerr_set(err, YE_CONFLICT,
                        "ha needs the vm's disk on a shared pool: pool %s is not shared", p.name);
    if (spec->ha && (spec->hostname[0] || spec->user_data || spec->ssh_keys))
        return yerr_set(err, YE_CONFLICT,
                        "an ha vm cannot have a cloud-init seed (the seed is not on the pool)");
    snprintf(vm->pool, sizeof vm->pool, "%s", p.name);
    vm->ha = spec->ha;
    return ctl_pool_disk_dir(c, vm, err);
}
