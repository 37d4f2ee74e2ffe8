/*
 * body_storage.c - pure checks of the volume routes' bodies: create or
 * import, clone, resize, export and attach. No store, no engine, no I/O
 * (bodies.h).
 */
#include "api/bodies.h"
#include "ctl/pools.h"
#include "lib/util.h"

#include <string.h>

static int body_size(json_t *b, const char *key, uint64_t *out, struct yerr *err)
{
    json_t *v = b ? json_object_get(b, key) : NULL;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && parse_size(json_string_value(v), out) == 0)
        return 0;
    return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a size such as \"4G\"", key);
}

int volume_create_from_json(json_t *b, struct volume_create_body *v, struct yerr *err)
{
    static const char *const known[] = {"name", "size", "format", "source", "host", NULL};
    memset(v, 0, sizeof(*v));
    v->name = b ? json_string_value(json_object_get(b, "name")) : NULL;
    json_t *fmt = b ? json_object_get(b, "format") : NULL;
    json_t *src = b ? json_object_get(b, "source") : NULL;
    json_t *host = b ? json_object_get(b, "host") : NULL;
    if (b && !body_keys_known(b, known, err))
        return -1;
    if (host && (!json_is_string(host) || !json_string_value(host)[0] ||
                 strlen(json_string_value(host)) > 63))
        return yerr_set(err, YE_INVALID_ARGUMENT, "host must be a host's name or id");
    if (host && src)
        return yerr_set(err, YE_INVALID_ARGUMENT, "an import is made on the local host: no host");
    v->host = json_string_value(host);
    if (!v->name)
        return yerr_set(err, YE_INVALID_ARGUMENT, "name is required (a string)");
    if (fmt && !json_is_string(fmt))
        return yerr_set(err, YE_INVALID_ARGUMENT, "format must be qcow2 or raw");
    if (src && (!json_is_string(src) || json_object_get(b, "size")))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "source must be a file path, and an import takes no size");
    v->format = json_string_value(fmt);
    v->source = json_string_value(src);
    if (v->source)
        return 0;
    return body_size(b, "size", &v->size, err);
}

int volume_clone_from_json(json_t *b, const char **name, bool *full, struct yerr *err)
{
    static const char *const known[] = {"name", "full", NULL};
    const char *dst = b ? json_string_value(json_object_get(b, "name")) : NULL;
    json_t *f = b ? json_object_get(b, "full") : NULL;
    if (b && !body_keys_known(b, known, err))
        return -1;
    if (!dst)
        return yerr_set(err, YE_INVALID_ARGUMENT, "name of the clone is required");
    if (f && !json_is_boolean(f))
        return yerr_set(err, YE_INVALID_ARGUMENT, "full must be true or false");
    *name = dst;
    *full = json_is_true(f);
    return 0;
}

int volume_resize_from_json(json_t *b, uint64_t *size, struct yerr *err)
{
    return body_size(b, "size", size, err);
}

int volume_export_from_json(json_t *b, const char **path, const char **format, struct yerr *err)
{
    static const char *const known[] = {"path", "format", NULL};
    json_t *p = b ? json_object_get(b, "path") : NULL;
    json_t *fmt = b ? json_object_get(b, "format") : NULL;
    if (b && !body_keys_known(b, known, err))
        return -1;
    if (!json_is_string(p) || (fmt && !json_is_string(fmt)))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "path (a string) is required; format is qcow2 or raw");
    *path = json_string_value(p);
    *format = json_string_value(fmt);
    return 0;
}

int volume_attach_from_json(json_t *b, const char **vm, struct yerr *err)
{
    static const char *const known[] = {"vm", NULL};
    json_t *v = b ? json_object_get(b, "vm") : NULL;
    if (b && !body_keys_known(b, known, err))
        return -1;
    if (!json_is_string(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "vm (a name) is required");
    *vm = json_string_value(v);
    return 0;
}

int check_volume_create(json_t *body, struct yerr *err)
{
    struct volume_create_body v;
    return volume_create_from_json(body, &v, err);
}

int check_volume_clone(json_t *body, struct yerr *err)
{
    const char *name;
    bool full;
    return volume_clone_from_json(body, &name, &full, err);
}

int check_volume_resize(json_t *body, struct yerr *err)
{
    uint64_t size;
    return volume_resize_from_json(body, &size, err);
}

int check_volume_export(json_t *body, struct yerr *err)
{
    const char *path, *format;
    return volume_export_from_json(body, &path, &format, err);
}

int check_volume_attach(json_t *body, struct yerr *err)
{
    const char *vm;
    return volume_attach_from_json(body, &vm, err);
}

int pool_create_from_json(json_t *body, const char **name, const char **path, bool *shared,
                          struct yerr *err)
{
    json_t *n = json_object_get(body, "name"), *p = json_object_get(body, "path"),
           *sh = json_object_get(body, "shared");
    if (!json_is_string(n))
        return yerr_set(err, YE_INVALID_ARGUMENT, "name: a string is required");
    if (!json_is_string(p))
        return yerr_set(err, YE_INVALID_ARGUMENT, "path: a string is required");
    if (sh && !json_is_boolean(sh))
        return yerr_set(err, YE_INVALID_ARGUMENT, "shared: must be a boolean");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "name") && strcmp(k, "path") && strcmp(k, "shared"))
            return yerr_set(err, YE_INVALID_ARGUMENT, "unknown field: %.64s", k);
    }
    *name = json_string_value(n);
    *path = json_string_value(p);
    *shared = json_is_true(sh);
    if (pool_name_check(*name, err) < 0 || pool_path_check(*path, err) < 0)
        return -1;
    return 0;
}

int check_pool_create(json_t *body, struct yerr *err)
{
    const char *name, *path;
    bool shared;
    return pool_create_from_json(body, &name, &path, &shared, err);
}
