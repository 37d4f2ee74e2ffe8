/* test_agent_wire.c - vm.launch's arguments (agent_wire.c): a spec survives
 * the round trip exactly, and every field the agent reads is refused with
 * YE_INVALID_ARGUMENT, naming it, when it is missing, of the wrong type,
 * too long, or would put something unexpected on QEMU's command line; the
 * agent's vm.launch verb itself refuses bad arguments from the loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_local.h"
#include "agent/agent_wire.h"
#include "compute/engine.h"

#define VM_ID  "0123abcd-0000-4000-8000-00000000beef"
#define VOL_ID "0123abcd-0000-4000-8000-00000000f00d"

static struct confine_layer layers[2] = {{"/pool/v1.qcow2", "qcow2"}, {"/pool/base.raw", "raw"}};

static void sample(struct launch_spec *s, struct launch_vol *lv)
{
    memset(s, 0, sizeof *s);
    memset(lv, 0, sizeof *lv);
    struct vm_rec *v = &s->vm;
    snprintf(v->id, sizeof v->id, VM_ID);
    snprintf(v->name, sizeof v->name, "web-1");
    v->cpus = 2;
    v->memory_mb = 512;
    snprintf(v->cmdline, sizeof v->cmdline, "console=ttyS0 quiet");
    snprintf(v->machine, sizeof v->machine, "q35");
    snprintf(v->accel_used, sizeof v->accel_used, "tcg");
    v->cpu_weight = 200;
    v->cpu_quota_us = 50000;
    v->cpu_period_us = 100000;
    snprintf(v->cpuset, sizeof v->cpuset, "0-1,3");
    snprintf(v->cpu_pin, sizeof v->cpu_pin, "0:0,1:3");
    snprintf(v->emulator_pin, sizeof v->emulator_pin, "1");
    v->seed = 1;
    snprintf(v->disk, sizeof v->disk, "disk.qcow2");
    v->uid = 64123;
    v->memory_min_mb = 256;
    v->memory_swap_mb = 64;
    v->memory_high_mb = 384;
    v->no_merge = 1;
    snprintf(v->cpu_model, sizeof v->cpu_model, "Westmere");
    struct image_rec *i = &s->img;
    snprintf(i->name, sizeof i->name, "tiny");
    snprintf(i->format, sizeof i->format, "qcow2");
    snprintf(i->path, sizeof i->path, "/var/lib/yun/images/tiny.qcow2");
    snprintf(i->kernel, sizeof i->kernel, "/var/lib/yun/images/tiny.vmlinuz");
    snprintf(i->initrd, sizeof i->initrd, "/var/lib/yun/images/tiny.initrd");
    snprintf(i->cmdline, sizeof i->cmdline, "console=ttyS0");
    snprintf(lv->rec.id, sizeof lv->rec.id, VOL_ID);
    snprintf(lv->rec.name, sizeof lv->rec.name, "data");
    snprintf(lv->rec.path, sizeof lv->rec.path, "/pool/v1.qcow2");
    snprintf(lv->rec.format, sizeof lv->rec.format, "qcow2");
    lv->layers = layers;
    lv->n = 2;
    s->vols = lv;
    s->nvols = 1;
}

static void test_round_trip(void **st)
{
    (void)st;
    struct launch_spec s, d;
    struct launch_vol lv;
    struct yerr err;
    sample(&s, &lv);
    json_t *j = launch_spec_to_json(&s);
    assert_non_null(j);
    assert_int_equal(launch_spec_from_json(j, &d, &err), 0);
    json_decref(j);
    assert_string_equal(d.vm.id, VM_ID);
    assert_string_equal(d.vm.name, "web-1");
    assert_int_equal(d.vm.cpus, 2);
    assert_int_equal(d.vm.memory_mb, 512);
    assert_string_equal(d.vm.cmdline, "console=ttyS0 quiet");
    assert_string_equal(d.vm.machine, "q35");
    assert_string_equal(d.vm.accel_used, "tcg");
    assert_int_equal(d.vm.cpu_weight, 200);
    assert_int_equal(d.vm.cpu_quota_us, 50000);
    assert_int_equal(d.vm.cpu_period_us, 100000);
    assert_string_equal(d.vm.cpuset, "0-1,3");
    assert_string_equal(d.vm.cpu_pin, "0:0,1:3");
    assert_string_equal(d.vm.emulator_pin, "1");
    assert_int_equal(d.vm.seed, 1);
    assert_string_equal(d.vm.disk, "disk.qcow2");
    assert_int_equal(d.vm.uid, 64123);
    assert_int_equal(d.vm.memory_min_mb, 256);
    assert_int_equal(d.vm.memory_swap_mb, 64);
    assert_int_equal(d.vm.memory_high_mb, 384);
    assert_int_equal(d.vm.memory_lock, 0);
    assert_int_equal(d.vm.no_merge, 1);
    assert_string_equal(d.vm.cpu_model, "Westmere");
    assert_string_equal(d.img.path, "/var/lib/yun/images/tiny.qcow2");
    assert_string_equal(d.img.initrd, "/var/lib/yun/images/tiny.initrd");
    assert_string_equal(d.img.cmdline, "console=ttyS0");
    assert_int_equal(d.nvols, 1);
    assert_string_equal(d.vols[0].rec.id, VOL_ID);
    assert_string_equal(d.vols[0].rec.attached_to, VM_ID);
    assert_int_equal(d.vols[0].n, 2);
    assert_string_equal(d.vols[0].layers[1].path, "/pool/base.raw");
    assert_string_equal(d.vols[0].layers[1].format, "raw");
    struct confine_volin *vi = launch_spec_volin(&d);
    assert_non_null(vi);
    assert_string_equal(vi[0].name, "data");
    assert_int_equal(vi[0].n, 2);
    free(vi);
    launch_spec_free(&d);
    /* a controller from before the memory policy: its defaults */
    j = launch_spec_to_json(&s);
    const char *gone[] = {"memory_min_mb", "memory_swap_mb", "memory_high_mb",
                          "memory_lock",   "merge",          "cpu_model"};
    for (size_t k = 0; k < 6; k++)
        json_object_del(json_object_get(j, "vm"), gone[k]);
    assert_int_equal(launch_spec_from_json(j, &d, &err), 0);
    assert_int_equal(d.vm.memory_min_mb, 512);
    assert_int_equal(d.vm.memory_swap_mb, -1);
    assert_int_equal(d.vm.memory_high_mb, 0);
    assert_int_equal(d.vm.no_merge, 0);
    assert_string_equal(d.vm.cpu_model, ""); /* none: QEMU's host or max */
    json_decref(j);
    launch_spec_free(&d);
    /* no volumes at all */
    s.nvols = 0;
    j = launch_spec_to_json(&s);
    assert_int_equal(launch_spec_from_json(j, &d, &err), 0);
    assert_int_equal(d.nvols, 0);
    json_decref(j);
    launch_spec_free(&d);
}

/* One field of the encoded sample replaced (value NULL: removed); the
 * decode must fail naming it. */
static void refuse(const char *obj, const char *field, json_t *value, const char *named)
{
    struct launch_spec s, d;
    struct launch_vol lv;
    struct yerr err;
    sample(&s, &lv);
    json_t *j = launch_spec_to_json(&s);
    json_t *o =
        !strcmp(obj, "args")      ? j
        : !strcmp(obj, "volumes") ? json_array_get(json_object_get(j, "volumes"), 0)
        : !strcmp(obj, "chain")
            ? json_array_get(
                  json_object_get(json_array_get(json_object_get(j, "volumes"), 0), "chain"), 1)
            : json_object_get(j, obj);
    if (value)
        json_object_set_new(o, field, value);
    else
        json_object_del(o, field);
    int rc = launch_spec_from_json(j, &d, &err);
    if (rc == 0)
        fail_msg("%s.%s accepted", obj, field);
    assert_int_equal(err.code, YE_INVALID_ARGUMENT);
    if (!strstr(err.message, named))
        fail_msg("%s.%s: message '%s' does not name %s", obj, field, err.message, named);
    json_decref(j);
}

static void test_refusals(void **st)
{
    (void)st;
    char longname[600];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    refuse("vm", "id", NULL, "vm.id");
    refuse("vm", "id", json_string("../../etc"), "vm.id");
    refuse("vm", "id", json_string("0123"), "vm.id");
    refuse("vm", "name", json_string(""), "vm.name");
    refuse("vm", "name", json_string(longname), "vm.name");
    refuse("vm", "name", json_string("a\nb"), "vm.name");
    refuse("vm", "cpus", json_integer(0), "vm.cpus");
    refuse("vm", "cpus", json_string("2"), "vm.cpus");
    refuse("vm", "memory_mb", json_integer(8), "vm.memory_mb");
    refuse("vm", "memory_mb", json_integer(-1), "vm.memory_mb");
    refuse("vm", "machine", json_string("isapc"), "vm.machine");
    refuse("vm", "accel", json_string("auto"), "vm.accel");
    refuse("vm", "cpu_weight", json_integer(10001), "vm.cpu_weight");
    refuse("vm", "cpuset", json_string("0;rm"), "vm.cpuset");
    refuse("vm", "cpu_pin", json_string("0-1"), "vm.cpu_pin");
    refuse("vm", "cpu_pin", json_string("9:0"), "vm.cpu_pin"); /* vCPU 9 of a smaller VM */
    refuse("vm", "cpu_pin", json_integer(1), "vm.cpu_pin");
    refuse("vm", "cpu_pin", json_string("0:2"), "outside the VM's cpuset"); /* cpuset 0-1,3 */
    refuse("vm", "emulator_pin", json_string("x"), "vm.emulator_pin");
    refuse("vm", "seed", json_integer(1), "vm.seed");
    refuse("vm", "disk", json_string("../x.qcow2"), "vm.disk");
    refuse("vm", "disk", json_string(".."), "vm.disk");
    refuse("vm", "uid", json_integer(-5), "vm.uid");
    refuse("vm", "cmdline", json_string("a\x01"), "vm.cmdline");
    refuse("vm", "memory_min_mb", json_integer(513), "vm.memory_min_mb");
    refuse("vm", "memory_min_mb", json_integer(0), "vm.memory_min_mb");
    refuse("vm", "memory_high_mb", json_integer(600), "vm.memory_high_mb");
    refuse("vm", "memory_swap_mb", json_integer(-2), "vm.memory_swap_mb");
    refuse("vm", "merge", json_integer(0), "vm.merge");
    refuse("vm", "cpu_model", json_string("Westmere,host"), "vm.cpu_model");
    refuse("vm", "cpu_model", json_string(""), "vm.cpu_model");
    refuse("vm", "memory_lock", json_true(), "vm.memory_lock"); /* with swap 64 */
    refuse("image", "path", json_string("relative.qcow2"), "image.path");
    refuse("image", "path", json_string("/a/../b"), "image.path");
    refuse("image", "format", json_string("vmdk"), "image.format");
    refuse("image", "kernel", json_string(""), "image.initrd"); /* an initrd needs a kernel */
    refuse("args", "image", json_string("tiny"), "image");
    refuse("args", "volumes", json_object(), "volumes");
    refuse("volumes", "id", json_string("zz"), "volumes[0].id");
    refuse("volumes", "path", json_string("/other.qcow2"), "volumes[0].chain");
    refuse("volumes", "chain", json_array(), "volumes[0].chain");
    refuse("chain", "path", json_string("x"), "volumes[0].path");
    refuse("chain", "format", json_string("vdi"), "volumes[0].format");
    struct launch_spec d;
    struct yerr err;
    json_t *s = json_string("x");
    assert_int_equal(launch_spec_from_json(s, &d, &err), -1);
    json_decref(s);
}

struct seen {
    int calls;
    enum yerr_code code;
};

static void on_reply(void *ctx, json_t *result, const struct yerr *err)
{
    struct seen *s = ctx;
    s->calls++;
    s->code = err ? err->code : YE_NONE;
}

static void test_verb_refuses_bad_args(void **st)
{
    (void)st;
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    struct agent *a = agent_local_new(base, NULL, &e);
    struct seen bad = {0};
    assert_true(agent_call(a, AV_VM_LAUNCH, json_pack("{s:s}", "vm", VM_ID), on_reply, NULL, &bad) >
                0);
    assert_int_equal(bad.calls, 0); /* never inside the call */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(bad.calls, 1);
    assert_int_equal(bad.code, YE_INVALID_ARGUMENT);
    enum agent_verb v;
    assert_int_equal(agent_verb_parse("vm.launch", &v), 0);
    assert_int_equal(v, AV_VM_LAUNCH);
    agent_free(a);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip),
                                       cmocka_unit_test(test_refusals),
                                       cmocka_unit_test(test_verb_refuses_bad_args)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
