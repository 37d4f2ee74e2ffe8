/*
 * bodies.h - pure checks of the API's JSON request bodies, one per route
 * that takes a body (body_vms.c, body_storage.c, body_images.c,
 * body_monitor.c). Each takes the parsed object (NULL when the request had
 * no body), fills a plain struct and returns 0, or fills err (400) and
 * returns -1. No store, no engine, no I/O: they can be fuzzed
 * (fuzz/fuzz_route_bodies.c). Strings in the structs borrow from the body.
 * The check_* wrappers have the route table's check_body shape.
 */
#ifndef YUN_API_BODIES_H
#define YUN_API_BODIES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl/ctl.h" /* struct vm_spec */
#include "lib/yerr.h"
#include "monitor/alert_rule.h"

#define EXEC_MAX_S    3600
#define EXEC_MAX_ARGS 256

/* Checks that body has only the listed keys; fills err on an unknown one. */
bool body_keys_known(json_t *body, const char *const *known, struct yerr *err);

/* ---- body_vms.c ---- */
/* POST /v1/vms. ssh_keys are joined one per line into the body itself
 * (key "_ssh_keys_joined"), which s->ssh_keys borrows. */
int vm_spec_from_json(json_t *body, struct vm_spec *s, struct yerr *err);
/* POST /v1/vms/{name}/snapshots: {"name": S} */
int snapshot_body_from_json(json_t *body, const char **name, struct yerr *err);
struct exec_body {
    json_t *argv; /* array of 1..EXEC_MAX_ARGS strings */
    int timeout_s;
    const char *input; /* NULL: none */
};
/* POST /v1/vms/{name}/exec */
int exec_body_from_json(json_t *body, struct exec_body *x, struct yerr *err);
int check_vm_create(json_t *body, struct yerr *err);
/* PATCH /v1/vms/{name}: the fields `vm update` may change (at least one). */
int vm_update_from_json(json_t *body, struct vm_update *u, struct yerr *err);
int check_vm_update(json_t *body, struct yerr *err);
/* POST /v1/placement: a create's body; name and image may be left out
 * (image "" then: no image is checked). Adds what is missing to body. */
int placement_body_from_json(json_t *body, struct vm_spec *s, struct yerr *err);
int check_placement(json_t *body, struct yerr *err);
int check_snapshot_create(json_t *body, struct yerr *err);
int check_vm_exec(json_t *body, struct yerr *err);

/* ---- body_storage.c ---- */
struct volume_create_body {
    const char *name;
    const char *format; /* NULL: default */
    const char *source; /* an import when set */
    const char *host;   /* the host it is made on (name or id); NULL: the default */
    uint64_t size;      /* when not an import */
};
int volume_create_from_json(json_t *body, struct volume_create_body *v, struct yerr *err);
int volume_clone_from_json(json_t *body, const char **name, bool *full, struct yerr *err);
int volume_resize_from_json(json_t *body, uint64_t *size, struct yerr *err);
int volume_export_from_json(json_t *body, const char **path, const char **format, struct yerr *err);
int volume_attach_from_json(json_t *body, const char **vm, struct yerr *err);
int check_volume_create(json_t *body, struct yerr *err);
int check_volume_clone(json_t *body, struct yerr *err);
int check_volume_resize(json_t *body, struct yerr *err);
/* POST /v1/pools: {name, path, shared?}; the pointers borrow body. */
int pool_create_from_json(json_t *body, const char **name, const char **path, bool *shared,
                          struct yerr *err);
int check_pool_create(json_t *body, struct yerr *err);
int check_volume_export(json_t *body, struct yerr *err);
int check_volume_attach(json_t *body, struct yerr *err);

/* ---- body_images.c ---- */
int image_build_from_json(json_t *body, const char **kind, struct yerr *err);
int image_import_from_json(json_t *body, const char **name, const char **file, const char **format,
                           struct yerr *err);
int check_image_build(json_t *body, struct yerr *err);
int check_image_import(json_t *body, struct yerr *err);

/* ---- body_monitor.c ---- */
/* POST /v1/alert-rules. Drops id, created_at and silenced_until from the
 * body first: they are yund's to assign. */
int alert_rule_body_from_json(json_t *body, struct alert_rule *r, struct yerr *err);
struct silence_body {
    bool until_set; /* until holds ms since epoch */
    int64_t until;
    int for_s; /* else: silence for this long from now (0 lifts it) */
};
/* POST /v1/alert-rules/{name}/silence */
int silence_body_from_json(json_t *body, struct silence_body *s, struct yerr *err);
int check_alert_rule_create(json_t *body, struct yerr *err);
int check_alert_rule_silence(json_t *body, struct yerr *err);

#endif
