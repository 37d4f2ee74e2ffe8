/*
 * body_images.c - pure checks of the image routes' bodies: build
 * {"kind"} and import {"name","file","format"}. No store, no engine, no
 * I/O (bodies.h).
 */
#include "api/bodies.h"

int image_build_from_json(json_t *b, const char **kind, struct yerr *err)
{
    static const char *const known[] = {"kind", NULL};
    if (!b)
        return yerr_set(err, YE_INVALID_ARGUMENT, "body {\"kind\":\"tiny\"} required");
    if (!body_keys_known(b, known, err))
        return -1;
    *kind = json_string_value(json_object_get(b, "kind"));
    if (!*kind)
        return yerr_set(err, YE_INVALID_ARGUMENT, "kind is required (a string)");
    return 0;
}

int image_import_from_json(json_t *b, const char **name, const char **file, const char **format,
                           struct yerr *err)
{
    static const char *const known[] = {"name", "file", "format", NULL};
    *name = b ? json_string_value(json_object_get(b, "name")) : NULL;
    *file = b ? json_string_value(json_object_get(b, "file")) : NULL;
    *format = b ? json_string_value(json_object_get(b, "format")) : NULL;
    if (b && !body_keys_known(b, known, err))
        return -1;
    if (!*name || !*file)
        return yerr_set(err, YE_INVALID_ARGUMENT, "name and file are required (strings)");
    if (json_object_get(b, "format") && !*format)
        return yerr_set(err, YE_INVALID_ARGUMENT, "format must be a string");
    return 0;
}

int check_image_build(json_t *body, struct yerr *err)
{
    const char *kind;
    return image_build_from_json(body, &kind, err);
}

int check_image_import(json_t *body, struct yerr *err)
{
    const char *name, *file, *format;
    return image_import_from_json(body, &name, &file, &format, err);
}
