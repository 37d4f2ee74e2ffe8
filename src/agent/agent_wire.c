/*
 * agent_wire.c - vm.launch's arguments to and from JSON (see agent_wire.h):
 * every field the agent reads is checked here, with the field named in the
 * error, so a verb never sees a spec that would not fit its buffers or
 * would put something unexpected on QEMU's command line.
 */
#include "agent/agent_wire.h"
#include "compute/cpupin.h"
#include "lib/config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *launch_spec_to_json(const struct launch_spec *s)
{
    const struct vm_rec *v = &s->vm;
    const struct image_rec *i = &s->img;
    json_t *vols = json_array();
    for (size_t k = 0; vols && k < s->nvols; k++) {
        const struct launch_vol *lv = &s->vols[k];
        json_t *chain = json_array();
        for (int l = 0; chain && l < lv->n; l++)
            json_array_append_new(chain, json_pack("{s:s,s:s}", "path", lv->layers[l].path,
                                                   "format", lv->layers[l].format));
        json_array_append_new(vols, json_pack("{s:s,s:s,s:s,s:s,s:o*}", "id", lv->rec.id, "name",
                                              lv->rec.name, "path", lv->rec.path, "format",
                                              lv->rec.format, "chain", chain));
    }
    json_t *vm = json_pack(
        "{s:s,s:s,s:i,s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:b,s:s,s:I}", "id", v->id, "name", v->name,
        "cpus", v->cpus, "memory_mb", (json_int_t)v->memory_mb, "cmdline", v->cmdline, "machine",
        v->machine, "accel", v->accel_used, "cpu_weight", (json_int_t)v->cpu_weight, "cpu_quota_us",
        (json_int_t)v->cpu_quota_us, "cpu_period_us", (json_int_t)v->cpu_period_us, "cpuset",
        v->cpuset, "seed", v->seed != 0, "disk", v->disk, "uid", (json_int_t)v->uid);
    if (vm && v->disk_dir[0])
        json_object_set_new(vm, "disk_dir", json_string(v->disk_dir));
    /* the pins only when set: an agent from before them takes the rest */
    if (vm && v->cpu_pin[0])
        json_object_set_new(vm, "cpu_pin", json_string(v->cpu_pin));
    if (vm && v->emulator_pin[0])
        json_object_set_new(vm, "emulator_pin", json_string(v->emulator_pin));
    if (vm && v->cpu_model[0]) /* "" (a row from before): QEMU's host/max */
        json_object_set_new(vm, "cpu_model", json_string(v->cpu_model));
    /* the memory policy (a row from before it: its whole memory, no swap
     * rule, no soft limit) */
    if (vm && json_object_update_new(
                  vm, json_pack("{s:I,s:I,s:I,s:b,s:b}", "memory_min_mb",
                                (json_int_t)(v->memory_min_mb ? v->memory_min_mb : v->memory_mb),
                                "memory_swap_mb", (json_int_t)v->memory_swap_mb, "memory_high_mb",
                                (json_int_t)v->memory_high_mb, "memory_lock", v->memory_lock != 0,
                                "merge", !v->no_merge)) < 0) {
        json_decref(vm);
        vm = NULL;
    }
    json_t *img =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "name", i->name, "format", i->format, "path",
                  i->path, "kernel", i->kernel, "initrd", i->initrd, "cmdline", i->cmdline);
    if (!vm || !img || !vols) {
        json_decref(vm);
        json_decref(img);
        json_decref(vols);
        return NULL;
    }
    return json_pack("{s:o,s:o,s:o}", "vm", vm, "image", img, "volumes", vols);
}

/* ---- decoding ---- */

struct rd {
    struct yerr *err;
    const char *where; /* "vm", "image", "volumes[2]" */
    int failed;
};

static int bad(struct rd *r, const char *field, const char *what)
{
    if (!r->failed)
        yerr_set(r->err, YE_INVALID_ARGUMENT, "agent: vm.launch: %s.%s %s", r->where, field, what);
    r->failed = 1;
    return -1;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* A string field into buf (len bytes with the NUL). flags: */
#define S_EMPTY_OK 1 /* may be "" */
#define S_ABS      2 /* an absolute path ("" only with S_EMPTY_OK) */
#define S_NAME     4 /* a file name: no '/', not "." or ".." */
#define S_UUID     8 /* hex and '-' */
static void str(struct rd *r, json_t *o, const char *field, char *buf, size_t len, int flags)
{
    json_t *v = json_object_get(o, field);
    const char *s = json_string_value(v);
    if (!s) {
        bad(r, field, "must be a string");
        return;
    }
    size_t n = strlen(s);
    if (n != json_string_length(v) || !printable(s))
        bad(r, field, "has a control character");
    else if (n >= len)
        bad(r, field, "is too long");
    else if (!n && !(flags & S_EMPTY_OK))
        bad(r, field, "must not be empty");
    else if (n && (flags & S_ABS) &&
             (s[0] != '/' || strstr(s, "/../") || (n >= 3 && !strcmp(s + n - 3, "/.."))))
        bad(r, field, "must be an absolute path");
    else if ((flags & S_NAME) && (strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..")))
        bad(r, field, "must be a file name");
    else if ((flags & S_UUID) && strspn(s, "0123456789abcdef-") != n)
        bad(r, field, "must be an id");
    else
        memcpy(buf, s, n + 1);
}

static uint64_t num(struct rd *r, json_t *o, const char *field, uint64_t min, uint64_t max)
{
    json_t *v = json_object_get(o, field);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
        (uint64_t)json_integer_value(v) > max) {
        char what[96];
        snprintf(what, sizeof what, "must be an integer in %llu..%llu", (unsigned long long)min,
                 (unsigned long long)max);
        bad(r, field, what);
        return min;
    }
    return (uint64_t)json_integer_value(v);
}

static void format(struct rd *r, json_t *o, const char *field, char *buf, size_t len)
{
    str(r, o, field, buf, len, 0);
    if (!r->failed && strcmp(buf, "qcow2") && strcmp(buf, "raw"))
        bad(r, field, "must be qcow2 or raw");
}

static int flag(struct rd *r, json_t *o, const char *field, int dflt)
{
    json_t *b = json_object_get(o, field);
    if (!b)
        return dflt;
    if (!json_is_boolean(b))
        bad(r, field, "must be a boolean");
    return json_is_true(b);
}

/* The memory policy; each field may be absent (a controller from before
 * it): the VM's whole memory as its floor, the host's swap default, no
 * soft limit, not locked, merged. */
static void read_memory_policy(struct rd *r, json_t *o, struct vm_rec *v)
{
    v->memory_min_mb = v->memory_mb;
    v->memory_swap_mb = -1;
    if (json_object_get(o, "memory_min_mb"))
        v->memory_min_mb = num(r, o, "memory_min_mb", 1, v->memory_mb);
    if (json_object_get(o, "memory_high_mb"))
        v->memory_high_mb = num(r, o, "memory_high_mb", 0, v->memory_mb);
    json_t *sw = json_object_get(o, "memory_swap_mb");
    if (sw && json_is_integer(sw) && json_integer_value(sw) == -1)
        v->memory_swap_mb = -1;
    else if (sw)
        v->memory_swap_mb = (int64_t)num(r, o, "memory_swap_mb", 0, LAUNCH_MEMORY_MAX);
    v->memory_lock = flag(r, o, "memory_lock", 0);
    v->no_merge = !flag(r, o, "merge", 1);
    if (!r->failed && v->memory_lock && (v->memory_swap_mb > 0 || v->memory_high_mb))
        bad(r, "memory_lock", "excludes memory_swap_mb above 0 and memory_high_mb");
}

static void read_vm(struct rd *r, json_t *o, struct vm_rec *v)
{
    r->where = "vm";
    if (!json_is_object(o)) {
        bad(r, "", "must be an object");
        return;
    }
    str(r, o, "id", v->id, sizeof v->id, S_UUID);
    str(r, o, "name", v->name, sizeof v->name, 0);
    v->cpus = (int)num(r, o, "cpus", 1, LAUNCH_CPUS_MAX);
    v->memory_mb = num(r, o, "memory_mb", 16, LAUNCH_MEMORY_MAX);
    str(r, o, "cmdline", v->cmdline, sizeof v->cmdline, S_EMPTY_OK);
    str(r, o, "machine", v->machine, sizeof v->machine, 0);
    str(r, o, "accel", v->accel_used, sizeof v->accel_used, 0);
    v->cpu_weight = (unsigned)num(r, o, "cpu_weight", 0, 10000);
    v->cpu_quota_us = num(r, o, "cpu_quota_us", 0, 1ULL << 40);
    v->cpu_period_us = num(r, o, "cpu_period_us", 0, 1ULL << 40);
    str(r, o, "cpuset", v->cpuset, sizeof v->cpuset, S_EMPTY_OK);
    json_t *seed = json_object_get(o, "seed");
    if (!json_is_boolean(seed))
        bad(r, "seed", "must be a boolean");
    v->seed = json_is_true(seed);
    str(r, o, "disk", v->disk, sizeof v->disk, S_NAME);
    v->uid = (uint32_t)num(r, o, "uid", 0, 0xfffffffeULL);
    if (!r->failed)
        read_memory_policy(r, o, v);
    /* a disk in a pool: POOL/vms/ID (absent: the VM's directory) */
    if (json_object_get(o, "disk_dir"))
        str(r, o, "disk_dir", v->disk_dir, sizeof v->disk_dir, S_ABS);
    if (json_object_get(o, "cpu_pin"))
        str(r, o, "cpu_pin", v->cpu_pin, sizeof v->cpu_pin, S_EMPTY_OK);
    if (json_object_get(o, "emulator_pin"))
        str(r, o, "emulator_pin", v->emulator_pin, sizeof v->emulator_pin, S_EMPTY_OK);
    if (json_object_get(o, "cpu_model"))
        str(r, o, "cpu_model", v->cpu_model, sizeof v->cpu_model, 0);
    if (r->failed)
        return;
    if (v->cpu_model[0] && !config_cpu_model_ok(v->cpu_model))
        bad(r, "cpu_model", "must be a CPU model name ([A-Za-z0-9._-])");
    if (v->disk_dir[0] && (strchr(v->disk_dir, ',') || strstr(v->disk_dir, "/./") ||
                           strcmp(strrchr(v->disk_dir, '/') + 1, v->id)))
        bad(r, "disk_dir", "must be POOL/vms/ID");
    if (strlen(v->id) != 36)
        bad(r, "id", "must be a VM id");
    else if (strcmp(v->machine, "pc") && strcmp(v->machine, "q35") && strcmp(v->machine, "microvm"))
        bad(r, "machine", "must be pc, q35 or microvm");
    else if (strcmp(v->accel_used, "kvm") && strcmp(v->accel_used, "tcg"))
        bad(r, "accel", "must be kvm or tcg");
    else if (strspn(v->cpuset, "0123456789,-") != strlen(v->cpuset))
        bad(r, "cpuset", "must be a CPU list");
    char why[256];
    if (!r->failed &&
        cpupin_validate(v->cpu_pin, v->emulator_pin, v->cpus, v->cpuset, 0, why, sizeof why) < 0)
        bad(r, strncmp(why, "emulator-pin", 12) ? "cpu_pin" : "emulator_pin", why);
}

static void read_image(struct rd *r, json_t *o, struct image_rec *i)
{
    r->where = "image";
    if (!json_is_object(o)) {
        bad(r, "", "must be an object");
        return;
    }
    str(r, o, "name", i->name, sizeof i->name, 0);
    format(r, o, "format", i->format, sizeof i->format);
    str(r, o, "path", i->path, sizeof i->path, S_ABS);
    str(r, o, "kernel", i->kernel, sizeof i->kernel, S_ABS | S_EMPTY_OK);
    str(r, o, "initrd", i->initrd, sizeof i->initrd, S_ABS | S_EMPTY_OK);
    str(r, o, "cmdline", i->cmdline, sizeof i->cmdline, S_EMPTY_OK);
    if (!r->failed && i->initrd[0] && !i->kernel[0])
        bad(r, "initrd", "needs a kernel");
}

static void read_vol(struct rd *r, json_t *o, struct launch_vol *lv)
{
    if (!json_is_object(o)) {
        bad(r, "", "must be an object");
        return;
    }
    str(r, o, "id", lv->rec.id, sizeof lv->rec.id, S_UUID);
    str(r, o, "name", lv->rec.name, sizeof lv->rec.name, 0);
    str(r, o, "path", lv->rec.path, sizeof lv->rec.path, S_ABS);
    format(r, o, "format", lv->rec.format, sizeof lv->rec.format);
    json_t *chain = json_object_get(o, "chain");
    if (r->failed)
        return;
    size_t n = json_array_size(chain);
    if (!json_is_array(chain) || n < 1 || n > LAUNCH_CHAIN_MAX) {
        bad(r, "chain",
            "must be 1.."
            "64 layers");
        return;
    }
    lv->layers = calloc(n, sizeof *lv->layers);
    if (!lv->layers) {
        bad(r, "chain", "does not fit in memory");
        return;
    }
    lv->n = (int)n;
    for (size_t l = 0; l < n && !r->failed; l++) {
        json_t *c = json_array_get(chain, l);
        if (!json_is_object(c)) {
            bad(r, "chain", "must hold objects");
            break;
        }
        str(r, c, "path", lv->layers[l].path, sizeof lv->layers[l].path, S_ABS);
        format(r, c, "format", lv->layers[l].format, sizeof lv->layers[l].format);
    }
    if (!r->failed &&
        (strcmp(lv->layers[0].path, lv->rec.path) || strcmp(lv->layers[0].format, lv->rec.format)))
        bad(r, "chain", "must begin with the volume itself");
}

int launch_spec_from_json(json_t *j, struct launch_spec *out, struct yerr *err)
{
    memset(out, 0, sizeof *out);
    struct rd r = {.err = err, .where = "args"};
    if (!json_is_object(j))
        return bad(&r, "", "must be an object");
    read_vm(&r, json_object_get(j, "vm"), &out->vm);
    if (!r.failed)
        read_image(&r, json_object_get(j, "image"), &out->img);
    json_t *vols = json_object_get(j, "volumes");
    r.where = "args";
    if (!r.failed && (!json_is_array(vols) || json_array_size(vols) > LAUNCH_VOLS_MAX))
        bad(&r, "volumes", "must be an array of at most 32");
    if (!r.failed && json_array_size(vols)) {
        out->vols = calloc(json_array_size(vols), sizeof *out->vols);
        if (!out->vols)
            bad(&r, "volumes", "do not fit in memory");
    }
    char where[32];
    for (size_t k = 0; !r.failed && k < json_array_size(vols); k++) {
        snprintf(where, sizeof where, "volumes[%zu]", k);
        r.where = where;
        out->nvols = k + 1;
        read_vol(&r, json_array_get(vols, k), &out->vols[k]);
        snprintf(out->vols[k].rec.attached_to, sizeof out->vols[k].rec.attached_to, "%s",
                 out->vm.id);
    }
    if (r.failed) {
        launch_spec_free(out);
        return -1;
    }
    return 0;
}

void launch_spec_free(struct launch_spec *s)
{
    for (size_t k = 0; k < s->nvols; k++)
        free(s->vols[k].layers);
    free(s->vols);
    s->vols = NULL;
    s->nvols = 0;
}

struct confine_volin *launch_spec_volin(const struct launch_spec *s)
{
    struct confine_volin *v = calloc(s->nvols ? s->nvols : 1, sizeof *v);
    for (size_t k = 0; v && k < s->nvols; k++) {
        snprintf(v[k].id, sizeof v[k].id, "%s", s->vols[k].rec.id);
        snprintf(v[k].name, sizeof v[k].name, "%s", s->vols[k].rec.name);
        v[k].layers = s->vols[k].layers;
        v[k].n = s->vols[k].n;
    }
    return v;
}
