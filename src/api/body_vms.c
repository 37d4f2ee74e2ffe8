/*
 * body_vms.c - pure checks of the VM routes' bodies: the VM spec of
 * POST /v1/vms, a snapshot's name, and guest exec's argv/timeout/input.
 * No store, no engine, no I/O (bodies.h).
 */
#include "api/bodies.h"
#include "compute/cpupin.h"
#include "ctl/place.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool body_keys_known(json_t *body, const char *const *known, struct yerr *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        bool ok = false;
        for (const char *const *p = known; *p && !ok; p++)
            ok = !strcmp(*p, k);
        if (!ok) {
            yerr_set(err, YE_INVALID_ARGUMENT, "unknown field '%.64s'", k);
            return false;
        }
    }
    return true;
}

static int get_int(json_t *body, const char *key, int64_t min, int64_t max, int64_t *out,
                   struct yerr *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be an integer", key);
    int64_t x = json_integer_value(v);
    if (x < min || x > max)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be in %lld..%lld, not %lld", key,
                        (long long)min, (long long)max, (long long)x);
    *out = x;
    return 0;
}

static int get_str(json_t *body, const char *key, char *dst, size_t len, struct yerr *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a string", key);
    if (strlen(json_string_value(v)) >= len)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s is longer than %zu characters", key, len - 1);
    snprintf(dst, len, "%s", json_string_value(v));
    return 0;
}

/* Size fields take an integer number of bytes/MiB or a string like "512M". */
static int get_size(json_t *body, const char *key, uint64_t unit, uint64_t *out, struct yerr *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        (uint64_t)json_integer_value(v) <= UINT64_MAX / unit) {
        *out = (uint64_t)json_integer_value(v) * unit;
        return 0;
    }
    uint64_t b;
    if (json_is_string(v) && parse_size(json_string_value(v), &b) == 0) {
        *out = b;
        return 0;
    }
    return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a size such as \"512M\" or \"4G\"", key);
}

/* ssh_keys: one string per key, joined one per line into the body. */
static int get_ssh_keys(json_t *b, struct vm_spec *s, struct yerr *err)
{
    json_t *keys = json_object_get(b, "ssh_keys");
    if (!keys)
        return 0;
    if (!json_is_array(keys))
        return yerr_set(err, YE_INVALID_ARGUMENT, "ssh_keys must be an array of strings");
    size_t i;
    json_t *k;
    char *joined = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&joined, &len);
    if (!f)
        return yerr_set(err, YE_INTERNAL, "out of memory");
    json_array_foreach(keys, i, k)
    {
        if (!json_is_string(k) || strchr(json_string_value(k), '\n')) {
            fclose(f);
            free(joined);
            return yerr_set(err, YE_INVALID_ARGUMENT,
                            "ssh_keys must be an array of one-line strings");
        }
        fprintf(f, "%s\n", json_string_value(k));
    }
    fclose(f);
    json_object_set_new(b, "_ssh_keys_joined", json_string(joined ? joined : ""));
    free(joined);
    s->ssh_keys = json_string_value(json_object_get(b, "_ssh_keys_joined"));
    return 0;
}

/* "requires": "k=v,k=v" or ["k=v", ...], checked by ctl/place.h's rules */
static int get_requires(json_t *b, struct vm_spec *s, struct yerr *err)
{
    json_t *r = json_object_get(b, "requires");
    if (!r || json_is_null(r))
        return 0;
    if (json_is_string(r)) {
        if (json_string_length(r) >= sizeof(s->requires))
            return yerr_set(err, YE_INVALID_ARGUMENT, "requires is too long");
        snprintf(s->requires, sizeof(s->requires), "%s", json_string_value(r));
    } else if (json_is_array(r)) {
        size_t i, o = 0;
        json_t *v;
        json_array_foreach(r, i, v)
        {
            if (!json_is_string(v))
                return yerr_set(err, YE_INVALID_ARGUMENT, "requires must be strings k=v");
            size_t len = json_string_length(v);
            if (o + len + 2 > sizeof(s->requires))
                return yerr_set(err, YE_INVALID_ARGUMENT, "requires is too long");
            o += (size_t)snprintf(s->requires + o, sizeof(s->requires) - o, "%s%s", o ? "," : "",
                                  json_string_value(v));
        }
    } else {
        return yerr_set(err, YE_INVALID_ARGUMENT, "requires must be \"k=v,k=v\" or a list");
    }
    return place_labels_check(s->requires, "requires", err);
}

/* A memory policy size (bytes, or "256M"): a whole number of MiB into
 * *mb; more than 0 unless zero_ok. Absent: *mb untouched. */
static int get_mem_mb(json_t *b, const char *key, bool zero_ok, int64_t *mb, struct yerr *err)
{
    json_t *v = json_object_get(b, key);
    uint64_t bytes = 0;
    if (!v)
        return 0;
    if (get_size(b, key, 1, &bytes, err) < 0)
        return -1;
    if (bytes % (1ULL << 20))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be a whole number of MiB", key);
    if (!bytes && !zero_ok)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be more than 0", key);
    if ((bytes >> 20) > INT64_MAX)
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s is too large", key);
    *mb = (int64_t)(bytes >> 20);
    return 0;
}

static int get_bool(json_t *b, const char *key, bool *out, struct yerr *err)
{
    json_t *v = json_object_get(b, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* memory_min, memory_swap ("0" = none), memory_high, memory_lock, merge;
 * how they compare with memory is ctl_vm_check_spec's. */
static int get_memory_policy(json_t *b, struct vm_spec *s, struct yerr *err)
{
    int64_t min = 0, swap = -1, high = 0;
    bool lock = false, merge = true;
    if (get_mem_mb(b, "memory_min", false, &min, err) < 0 ||
        get_mem_mb(b, "memory_swap", true, &swap, err) < 0 ||
        get_mem_mb(b, "memory_high", false, &high, err) < 0 ||
        get_bool(b, "memory_lock", &lock, err) < 0 || get_bool(b, "merge", &merge, err) < 0)
        return -1;
    s->memory_min_mb = (uint64_t)min;
    s->memory_swap_mb = swap;
    s->memory_high_mb = (uint64_t)high;
    s->memory_lock = lock;
    s->no_merge = !merge;
    return 0;
}

int vm_spec_from_json(json_t *b, struct vm_spec *s, struct yerr *err)
{
    static const char *const known[] = {
        "name",         "image",         "cpus",        "memory",      "memory_mb",   "disk",
        "disk_bytes",   "cmdline",       "machine",     "accel",       "restart",     "cpu_weight",
        "cpu_quota_us", "cpu_period_us", "cpuset",      "start",       "hostname",    "user_data",
        "ssh_keys",     "host",          "group",       "requires",    "explain",     "pool",
        "ha",           "memory_min",    "memory_swap", "memory_high", "memory_lock", "merge",
        "cpu_pin",      "emulator_pin",  "cpu_model",   NULL};
    vm_spec_defaults(s);
    if (!b)
        return yerr_set(err, YE_INVALID_ARGUMENT, "request body with name and image required");
    if (!body_keys_known(b, known, err))
        return -1;
    if (!json_is_string(json_object_get(b, "name")))
        return yerr_set(err, YE_INVALID_ARGUMENT, "name is required (a string)");
    if (!json_is_string(json_object_get(b, "image")))
        return yerr_set(err, YE_INVALID_ARGUMENT, "image is required (a string)");
    int64_t cpus = s->cpus, weight = 0, quota = 0, period = 0;
    uint64_t mem = s->memory_mb << 20, disk = 0;
    char restart[16] = "no";
    if (get_str(b, "name", s->name, sizeof(s->name), err) < 0 ||
        get_str(b, "image", s->image, sizeof(s->image), err) < 0 ||
        get_int(b, "cpus", -1000000, 1000000, &cpus, err) < 0 ||
        get_size(b, "memory", 1, &mem, err) < 0 ||
        get_size(b, "memory_mb", 1ULL << 20, &mem, err) < 0 ||
        get_size(b, "disk", 1, &disk, err) < 0 || get_size(b, "disk_bytes", 1, &disk, err) < 0 ||
        get_str(b, "cmdline", s->cmdline, sizeof(s->cmdline), err) < 0 ||
        get_str(b, "machine", s->machine, sizeof(s->machine), err) < 0 ||
        get_str(b, "accel", s->accel, sizeof(s->accel), err) < 0 ||
        get_str(b, "restart", restart, sizeof(restart), err) < 0 ||
        get_int(b, "cpu_weight", 0, 1000000, &weight, err) < 0 ||
        get_int(b, "cpu_quota_us", 0, 1LL << 40, &quota, err) < 0 ||
        get_int(b, "cpu_period_us", 0, 1LL << 40, &period, err) < 0 ||
        get_str(b, "cpuset", s->cpuset, sizeof(s->cpuset), err) < 0 ||
        get_str(b, "cpu_pin", s->cpu_pin, sizeof(s->cpu_pin), err) < 0 ||
        get_str(b, "emulator_pin", s->emulator_pin, sizeof(s->emulator_pin), err) < 0 ||
        get_str(b, "cpu_model", s->cpu_model, sizeof(s->cpu_model), err) < 0)
        return -1;
    if (get_str(b, "hostname", s->hostname, sizeof(s->hostname), err) < 0 ||
        get_memory_policy(b, s, err) < 0)
        return -1;
    json_t *ud = json_object_get(b, "user_data");
    if (ud && !json_is_string(ud))
        return yerr_set(err, YE_INVALID_ARGUMENT, "user_data must be a string");
    s->user_data = json_string_value(ud);
    if (get_ssh_keys(b, s, err) < 0)
        return -1;
    if (get_str(b, "host", s->host, sizeof(s->host), err) < 0 ||
        get_str(b, "group", s->group, sizeof(s->group), err) < 0 || get_requires(b, s, err) < 0)
        return -1;
    if (get_str(b, "pool", s->pool, sizeof(s->pool), err) < 0)
        return -1;
    json_t *ha = json_object_get(b, "ha");
    if (ha && !json_is_boolean(ha))
        return yerr_set(err, YE_INVALID_ARGUMENT, "ha must be true or false");
    s->ha = json_is_true(ha);
    json_t *explain = json_object_get(b, "explain");
    if (explain && !json_is_boolean(explain))
        return yerr_set(err, YE_INVALID_ARGUMENT, "explain must be true or false");
    s->explain = json_is_true(explain);
    json_t *start = json_object_get(b, "start");
    if (start && !json_is_boolean(start))
        return yerr_set(err, YE_INVALID_ARGUMENT, "start must be true or false");
    s->start = json_is_true(start);
    if (restart_policy_parse(restart, &s->restart) < 0)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "restart must be no, on-failure or always, not '%s'", restart);
    if (mem % (1ULL << 20))
        return yerr_set(err, YE_INVALID_ARGUMENT, "memory must be a whole number of MiB");
    s->cpus = (int)cpus;
    s->memory_mb = mem >> 20;
    s->disk_bytes = disk;
    s->cpu_weight = (unsigned)weight;
    s->cpu_quota_us = (uint64_t)quota;
    s->cpu_period_us = (uint64_t)period;
    return 0;
}

int vm_update_from_json(json_t *b, struct vm_update *u, struct yerr *err)
{
    static const char *const known[] = {"cpu_weight", "cpu_quota_us", "cpu_period_us", "cpuset",
                                        "cpu_pin",    "emulator_pin", "memory_min",    NULL};
    memset(u, 0, sizeof *u);
    if (!b || !json_is_object(b) || json_object_size(b) == 0)
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "nothing to change: give cpu_weight, cpu_quota_us, cpu_period_us, "
                        "cpuset, cpu_pin, emulator_pin or memory_min");
    if (!body_keys_known(b, known, err))
        return -1;
    int64_t weight = 0, quota = 0, period = 0, min = 0;
    if (get_int(b, "cpu_weight", 0, 10000, &weight, err) < 0 ||
        get_mem_mb(b, "memory_min", false, &min, err) < 0 ||
        get_int(b, "cpu_quota_us", 0, 1LL << 40, &quota, err) < 0 ||
        get_int(b, "cpu_period_us", 0, 1000000, &period, err) < 0 ||
        get_str(b, "cpuset", u->cpuset, sizeof u->cpuset, err) < 0 ||
        get_str(b, "cpu_pin", u->cpu_pin, sizeof u->cpu_pin, err) < 0 ||
        get_str(b, "emulator_pin", u->emulator_pin, sizeof u->emulator_pin, err) < 0)
        return -1;
    u->has_weight = json_object_get(b, "cpu_weight") != NULL;
    /* a quota and its period go together: one given alone keeps the
     * other's default (no quota, the default period) */
    u->has_quota = json_object_get(b, "cpu_quota_us") || json_object_get(b, "cpu_period_us");
    u->has_cpuset = json_object_get(b, "cpuset") != NULL;
    u->has_pin = json_object_get(b, "cpu_pin") != NULL;
    u->has_epin = json_object_get(b, "emulator_pin") != NULL;
    u->has_min = json_object_get(b, "memory_min") != NULL;
    u->memory_min_mb = (uint64_t)min;
    u->cpu_weight = (unsigned)weight;
    u->cpu_quota_us = (uint64_t)quota;
    u->cpu_period_us = (uint64_t)period;
    /* syntax here; the VM's vCPUs, cpuset and host CPUs in ctl_vm_update */
    char why[256];
    struct cpupin pin;
    struct cpumask m;
    if ((u->cpuset[0] && cpumask_parse(u->cpuset, "cpuset", &m, why, sizeof why) < 0) ||
        cpupin_parse(u->cpu_pin, &pin, why, sizeof why) < 0 ||
        (u->emulator_pin[0] &&
         cpumask_parse(u->emulator_pin, "emulator-pin", &m, why, sizeof why) < 0))
        return yerr_set(err, YE_INVALID_ARGUMENT, "%s", why);
    return 0;
}

int check_vm_update(json_t *body, struct yerr *err)
{
    struct vm_update u;
    return vm_update_from_json(body, &u, err);
}

int snapshot_body_from_json(json_t *b, const char **name, struct yerr *err)
{
    static const char *const known[] = {"name", NULL};
    json_t *n = b ? json_object_get(b, "name") : NULL;
    if (b && !body_keys_known(b, known, err))
        return -1;
    if (!json_is_string(n))
        return yerr_set(err, YE_INVALID_ARGUMENT, "name (a string) is required");
    *name = json_string_value(n);
    return 0;
}

int exec_body_from_json(json_t *b, struct exec_body *x, struct yerr *err)
{
    static const char *const known[] = {"argv", "timeout", "input", NULL};
    if (!b)
        return yerr_set(err, YE_INVALID_ARGUMENT, "body {\"argv\": [...]} required");
    if (!body_keys_known(b, known, err))
        return -1;
    json_t *argv = json_object_get(b, "argv");
    if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > EXEC_MAX_ARGS)
        return yerr_set(err, YE_INVALID_ARGUMENT, "argv must be an array of 1..%d strings",
                        EXEC_MAX_ARGS);
    size_t i;
    json_t *a;
    json_array_foreach(argv, i, a)
    {
        if (!json_is_string(a))
            return yerr_set(err, YE_INVALID_ARGUMENT, "argv must be an array of strings");
    }
    json_t *to = json_object_get(b, "timeout");
    if (to &&
        (!json_is_integer(to) || json_integer_value(to) < 1 || json_integer_value(to) > EXEC_MAX_S))
        return yerr_set(err, YE_INVALID_ARGUMENT, "timeout must be 1..%d seconds", EXEC_MAX_S);
    json_t *input = json_object_get(b, "input");
    if (input && !json_is_string(input))
        return yerr_set(err, YE_INVALID_ARGUMENT, "input must be a string");
    x->argv = argv;
    x->timeout_s = to ? (int)json_integer_value(to) : 60;
    x->input = json_string_value(input);
    return 0;
}

int placement_body_from_json(json_t *b, struct vm_spec *s, struct yerr *err)
{
    if (!json_is_object(b))
        return yerr_set(err, YE_INVALID_ARGUMENT,
                        "request body required: a VM create's (cpus, memory, group, requires, "
                        "host, start; name and image optional)");
    /* a create's body with its two required keys made optional */
    if (!json_object_get(b, "name"))
        json_object_set_new(b, "name", json_string("dry-run"));
    if (!json_object_get(b, "image"))
        json_object_set_new(b, "image", json_string(""));
    return vm_spec_from_json(b, s, err);
}

int check_placement(json_t *body, struct yerr *err)
{
    struct vm_spec s;
    return placement_body_from_json(body, &s, err);
}

int check_vm_create(json_t *body, struct yerr *err)
{
    struct vm_spec s;
    return vm_spec_from_json(body, &s, err);
}

int check_snapshot_create(json_t *body, struct yerr *err)
{
    const char *name;
    return snapshot_body_from_json(body, &name, err);
}

int check_vm_exec(json_t *body, struct yerr *err)
{
    struct exec_body x;
    return exec_body_from_json(body, &x, err);
}
