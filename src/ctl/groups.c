/*
 * groups.c - placement groups (ctl/place.h): affinity or anti-affinity,
 * hard (a filter) or soft (a weigher's preference), with an optional limit
 * of members per host. A VM joins one at create (vm_rec.group); a group
 * with members cannot be deleted.
 */
#include "ctl/ctl.h"
#include "ctl/place.h"
#include "lib/util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool group_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63 || !(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '.' ||
              s[i] == '-'))
            return false;
    return true;
}

int ctl_group_create(struct ctl *c, const struct group_rec *in, struct yerr *err)
{
    if (!group_name_ok(in->name))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "group name '%.64s' is not [a-z0-9][a-z0-9.-]{0,62}", in->name);
    if (strcmp(in->policy, "affinity") && strcmp(in->policy, "anti-affinity"))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "group policy '%.16s' is not affinity or anti-affinity", in->policy);
    if (in->max_per_host < 0 || in->max_per_host > 100000)
        return yerr_set(err, YE_INVALID_ARGUMENT, "max_per_host %d is not in 0..100000",
                        in->max_per_host);
    struct group_rec g = *in;
    g.hard = in->hard ? 1 : 0;
    g.created_at = now_ms();
    int rc = store_group_insert(c->store, &g);
    if (rc == STORE_CONFLICT)
        return yerr_set(err, YE_CONFLICT, "group '%s' already exists", g.name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    ctl_event(c, "group", g.name, "create", "ok", "%s %s%s", g.hard ? "hard" : "soft", g.policy,
              g.max_per_host ? ", max per host set" : "");
    return 0;
}

int ctl_group_get(struct ctl *c, const char *name, struct group_rec *out, struct yerr *err)
{
    int rc = store_group_get(c->store, name, out);
    if (rc == STORE_NOTFOUND)
        return yerr_set(err, YE_NOT_FOUND, "group '%.64s' not found", name);
    if (rc != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_group_list(struct ctl *c, struct group_rec **out, size_t *n, struct yerr *err)
{
    if (store_group_list(c->store, out, n) != 0)
        return yerr_db(err, store_errmsg(c->store));
    return 0;
}

int ctl_group_members(struct ctl *c, const char *name)
{
    int n = 0;
    return store_group_members(c->store, name, &n) == 0 ? n : -1;
}

int ctl_group_delete(struct ctl *c, const char *name, struct yerr *err)
{
    struct group_rec g;
    if (ctl_group_get(c, name, &g, err) < 0)
        return -1;
    int n = ctl_group_members(c, name);
    if (n < 0)
        return yerr_db(err, store_errmsg(c->store));
    if (n > 0)
        return yerr_set(err, YE_CONFLICT, "group '%s' has %d VM%s; delete them first", name, n,
                        n == 1 ? "" : "s");
    int rc = store_group_delete(c->store, name);
    if (rc != 0 && rc != STORE_NOTFOUND)
        return yerr_db(err, store_errmsg(c->store));
    ctl_event(c, "group", name, "delete", "ok", "deleted");
    return 0;
}
