/*
 * test_vm_model.c - unit tests for the VM state machine and the QEMU
 * command line built for a VM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/confine.h"
#include "compute/qemu_argv.h"
#include "compute/qemu_proc.h"
#include "compute/vmstate.h"
#include "lib/config.h"

static struct vm_rec vm_in(enum vm_state s)
{
    struct vm_rec v;
    memset(&v, 0, sizeof(v));
    snprintf(v.name, sizeof(v.name), "web1");
    snprintf(v.id, sizeof(v.id), "11111111-2222-4333-8444-555555555555");
    v.state = s;
    v.cpus = 2;
    v.memory_mb = 512;
    snprintf(v.disk, sizeof(v.disk), "disk.qcow2");
    return v;
}

static void test_actions_allowed(void **state)
{
    char why[256];
    /* expected[state][action]: 1 allowed, 0 refused (force=false) */
    static const int expected[VM_STATE_COUNT][ACT_COUNT] = {
        /*            start stop fstop reboot pause resume delete */
        [VM_CREATING] = {0, 0, 0, 0, 0, 0, 0}, [VM_STOPPED] = {1, 0, 0, 0, 0, 0, 1},
        [VM_STARTING] = {0, 1, 1, 0, 0, 0, 0}, [VM_RUNNING] = {0, 1, 1, 1, 1, 0, 0},
        [VM_PAUSED] = {0, 1, 1, 0, 0, 1, 0},   [VM_STOPPING] = {0, 0, 1, 0, 0, 0, 0},
        [VM_CRASHED] = {1, 0, 0, 0, 0, 0, 1},  [VM_DELETING] = {0, 0, 0, 0, 0, 0, 0},
        [VM_UNKNOWN] = {0, 0, 1, 0, 0, 0, 0},
    };
    for (int s = 0; s < VM_STATE_COUNT; s++)
        for (int a = 0; a < ACT_COUNT; a++) {
            struct vm_rec v = vm_in((enum vm_state)s);
            int rc = vm_action_check(&v, (enum vm_action)a, false, why, sizeof(why));
            if ((rc == 0) != (expected[s][a] == 1))
                fail_msg("state %s action %s: got %d", vm_state_name((enum vm_state)s),
                         vm_action_name((enum vm_action)a), rc);
        }
    struct vm_rec v = vm_in(VM_RUNNING);
    assert_int_equal(vm_action_check(&v, ACT_DELETE, true, why, sizeof(why)), 0);
    assert_int_equal(vm_action_check(&v, ACT_DELETE, false, why, sizeof(why)), -1);
    assert_string_equal(why, "vm 'web1' is running: stop it first or delete with --force");
    v = vm_in(VM_PAUSED);
    assert_int_equal(vm_action_check(&v, ACT_START, false, why, sizeof(why)), -1);
    assert_string_equal(why, "vm 'web1' is paused: resume it instead");
    /* unknown (its host is down): force-stop and delete --force only */
    v = vm_in(VM_UNKNOWN);
    assert_int_equal(vm_action_check(&v, ACT_DELETE, true, why, sizeof(why)), 0);
    assert_int_equal(vm_action_check(&v, ACT_STOP, false, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "is unknown (its host is unreachable)"));
    assert_true(vm_state_has_process(VM_UNKNOWN)); /* it may have one: capacity held */
    assert_false(vm_state_live(VM_UNKNOWN));
    assert_false(vm_state_down(VM_UNKNOWN));
    assert_string_equal(vm_state_name(VM_UNKNOWN), "unknown");
    enum vm_state parsed;
    assert_int_equal(vm_state_parse("unknown", &parsed), 0);
    assert_int_equal(parsed, VM_UNKNOWN);
}

static void test_qmp_events(void **state)
{
    assert_int_equal(vm_state_on_qmp_event(VM_RUNNING, "STOP"), VM_PAUSED);
    assert_int_equal(vm_state_on_qmp_event(VM_PAUSED, "RESUME"), VM_RUNNING);
    assert_int_equal(vm_state_on_qmp_event(VM_STARTING, "RESUME"), VM_RUNNING);
    assert_int_equal(vm_state_on_qmp_event(VM_RUNNING, "SHUTDOWN"), VM_STOPPING);
    assert_int_equal(vm_state_on_qmp_event(VM_RUNNING, "RESET"), VM_RUNNING);
    assert_int_equal(vm_state_on_qmp_event(VM_RUNNING, "GUEST_PANICKED"), VM_CRASHED);
    assert_int_equal(vm_state_on_qmp_event(VM_STOPPING, "STOP"), VM_STOPPING);
    assert_int_equal(vm_state_on_qmp_event(VM_RUNNING, "UNKNOWN_EVENT"), VM_RUNNING);
    assert_int_equal(vm_state_on_exit(VM_RUNNING, false), VM_STOPPED);
    assert_int_equal(vm_state_on_exit(VM_STOPPING, true), VM_STOPPED);
    assert_int_equal(vm_state_on_exit(VM_DELETING, true), VM_DELETING);
    /* an unknown VM's events do not settle it: reconcile does */
    assert_int_equal(vm_state_on_qmp_event(VM_UNKNOWN, "RESUME"), VM_UNKNOWN);
    assert_int_equal(vm_state_on_qmp_event(VM_UNKNOWN, "STOP"), VM_UNKNOWN);
    assert_int_equal(vm_state_on_exit(VM_UNKNOWN, false), VM_STOPPED);
}

/* Disk operations begin only in settled states: every state is exactly one
 * of live, down, or on its way (and then it may or may not have a QEMU). */
static void test_settled_states(void **state)
{
    for (int s = 0; s < VM_STATE_COUNT; s++) {
        bool live = vm_state_live(s), down = vm_state_down(s);
        assert_false(live && down);
        if (live)
            assert_true(vm_state_has_process(s));
        if (down)
            assert_false(vm_state_has_process(s));
    }
    assert_true(vm_state_live(VM_PAUSED) && vm_state_down(VM_CRASHED));
    assert_false(vm_state_live(VM_STARTING) || vm_state_down(VM_STARTING));
    assert_false(vm_state_live(VM_STOPPING) || vm_state_down(VM_DELETING));
}

static void test_restart_policy(void **state)
{
    struct vm_rec v = vm_in(VM_STOPPED);
    v.desired = WANT_RUNNING;
    v.restart = RESTART_NO;
    assert_false(vm_should_restart(&v, false));
    v.restart = RESTART_ON_FAILURE;
    assert_true(vm_should_restart(&v, false));
    assert_false(vm_should_restart(&v, true));
    v.restart = RESTART_ALWAYS;
    assert_true(vm_should_restart(&v, true));
    v.desired = WANT_STOPPED; /* the user stopped it: never restart */
    assert_false(vm_should_restart(&v, true));
    /* crashed (a reset loop yund ended): a restart would replay it */
    v.desired = WANT_RUNNING;
    v.state = VM_CRASHED;
    assert_false(vm_should_restart(&v, false));
    assert_false(vm_should_restart(&v, true));
}

static int has_pair(const struct qemu_argv *a, const char *opt, const char *val)
{
    for (int i = 0; i + 1 < a->argc; i++)
        if (!strcmp(a->argv[i], opt) && !strcmp(a->argv[i + 1], val))
            return 1;
    return 0;
}

static void test_qemu_argv(void **state)
{
    struct vm_rec v = vm_in(VM_STOPPED);
    snprintf(v.machine, sizeof(v.machine), "q35");
    struct image_rec img;
    memset(&img, 0, sizeof(img));
    snprintf(img.kernel, sizeof(img.kernel), "/img/vmlinuz");
    snprintf(img.initrd, sizeof(img.initrd), "/img/initrd.img");
    snprintf(img.cmdline, sizeof(img.cmdline), "console=ttyS0");
    struct qemu_argv a;
    char err[256];
    assert_int_equal(qemu_argv_build("qemu-system-x86_64", &v, &img, "/s/vms/X", "tcg", NULL, 0,
                                     NULL, &a, err, sizeof(err)),
                     0);
    assert_string_equal(a.argv[0], "qemu-system-x86_64");
    assert_null(a.argv[a.argc]);
    assert_true(has_pair(&a, "-machine", "q35,accel=tcg"));
    assert_true(has_pair(&a, "-cpu", "max"));
    assert_true(has_pair(&a, "-smp", "2"));
    assert_true(has_pair(&a, "-m", "512"));
    assert_true(has_pair(&a, "-uuid", v.id));
    assert_true(has_pair(&a, "-pidfile", "/s/vms/X/qemu.pid"));
    assert_true(has_pair(&a, "-kernel", "/img/vmlinuz"));
    assert_true(has_pair(&a, "-initrd", "/img/initrd.img"));
    assert_true(has_pair(&a, "-append", "console=ttyS0"));
    assert_true(has_pair(&a, "-mon", "chardev=qmp,mode=control"));
    assert_true(has_pair(&a, "-mon", "chardev=qmpev,mode=control"));
    assert_true(has_pair(&a, "-chardev",
                         "socket,id=console,path=/s/vms/X/con.sock,server=on,"
                         "wait=off,logfile=/s/vms/X/console.log,logappend=on"));
    char *joined = qemu_argv_join(&a);
    assert_non_null(strstr(joined, " -S "));
    assert_non_null(strstr(joined, " -daemonize "));
    assert_non_null(strstr(joined, " -nodefaults "));
    assert_non_null(strstr(joined, "file=/s/vms/X/disk.qcow2,format=qcow2"));
    free(joined);
    qemu_argv_free(&a);

    /* KVM uses the host CPU model; a VM cmdline overrides the image's */
    snprintf(v.cmdline, sizeof(v.cmdline), "console=ttyS0 yun.burn=1");
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d", "kvm", NULL, 0, NULL, &a, err, sizeof(err)), 0);
    assert_true(has_pair(&a, "-cpu", "host"));
    assert_true(has_pair(&a, "-append", "console=ttyS0 yun.burn=1"));
    qemu_argv_free(&a);

    /* disk-boot images get no -kernel */
    memset(&img, 0, sizeof(img));
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d", "tcg", NULL, 0, NULL, &a, err, sizeof(err)), 0);
    joined = qemu_argv_join(&a);
    assert_null(strstr(joined, "-kernel"));
    assert_null(strstr(joined, "-append"));
    free(joined);
    qemu_argv_free(&a);

    /* attached volumes come as -blockdev nodes named from the volume id; the
     * active disk layer is whatever the VM record says (snapshots move it) */
    struct volume_rec vols[2];
    memset(vols, 0, sizeof(vols));
    snprintf(vols[0].id, sizeof(vols[0].id), "abcdef01-2345-4678-9abc-def012345678");
    snprintf(vols[0].name, sizeof(vols[0].name), "a-rather-long-volume-name");
    snprintf(vols[0].format, sizeof(vols[0].format), "qcow2");
    snprintf(vols[0].path, sizeof(vols[0].path), "/p/a.qcow2");
    vols[1] = vols[0];
    snprintf(vols[1].format, sizeof(vols[1].format), "raw");
    snprintf(vols[1].path, sizeof(vols[1].path), "/p/b,c.raw");
    snprintf(v.disk, sizeof(v.disk), "disk-1234.qcow2");
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d", "tcg", vols, 1, NULL, &a, err, sizeof(err)), 0);
    assert_true(has_pair(&a, "-blockdev",
                         "driver=qcow2,node-name=vol-abcdef012345,discard=unmap,cache.direct=off,"
                         "file.driver=file,file.filename=/p/a.qcow2"));
    assert_true(has_pair(&a, "-device",
                         "virtio-blk-pci,drive=vol-abcdef012345,id=voldev-abcdef012345,"
                         "serial=a-rather-long-volume"));
    joined = qemu_argv_join(&a);
    assert_non_null(strstr(joined, "file=/d/disk-1234.qcow2,format=qcow2"));
    free(joined);
    qemu_argv_free(&a);
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d", "tcg", vols, 2, NULL, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "commas"));
    snprintf(v.disk, sizeof(v.disk), "../x.qcow2");
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d", "tcg", NULL, 0, NULL, &a, err, sizeof(err)), -1);
    snprintf(v.disk, sizeof(v.disk), "disk.qcow2");

    /* refusals */
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d,evil", "tcg", NULL, 0, NULL, &a, err, sizeof(err)), -1);
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d", "hvf", NULL, 0, NULL, &a, err, sizeof(err)), -1);
    v.cpus = 0;
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/d", "tcg", NULL, 0, NULL, &a, err, sizeof(err)), -1);
}

/* Confined: QEMU starts as the VM's uid (no -runas), under the full
 * seccomp filter, not daemonized; every name in the VM's directory relative
 * to it (QEMU's working directory), no -pidfile (yund writes it), and the
 * files outside it by the fds yund's child opened: the image under the
 * disk chain (fdset 1, as the backing of the chain's lowest layer), the
 * kernel and initrd (memfds), a volume and the one it is a clone of. */
static void test_qemu_argv_confined(void **state)
{
    struct vm_rec v = vm_in(VM_STOPPED);
    snprintf(v.disk, sizeof(v.disk), "disk-1234.qcow2");
    v.seed = true;
    struct image_rec img;
    memset(&img, 0, sizeof(img));
    snprintf(img.kernel, sizeof(img.kernel), "/s/images/tiny/vmlinuz");
    snprintf(img.initrd, sizeof(img.initrd), "/s/images/tiny/initrd.img");
    struct volume_rec vol;
    memset(&vol, 0, sizeof(vol));
    snprintf(vol.id, sizeof(vol.id), "abcdef01-2345-4678-9abc-def012345678");
    snprintf(vol.name, sizeof(vol.name), "clone");
    snprintf(vol.format, sizeof(vol.format), "qcow2");
    snprintf(vol.path, sizeof(vol.path), "/s/pools/default/clone.qcow2");
    struct qemu_argv a;
    char err[256];
    static struct vm_confine c;
    memset(&c, 0, sizeof(c));
    c.on = true;
    c.uid = c.gid = 1900000007u;
    c.disk_layers = 2; /* disk-1234.qcow2 <- disk.qcow2 <- the image */
    c.disk_on_image = true;
    c.files[0] = (struct confine_file){"/s/images/tiny/disk.qcow2", "qcow2", false, false};
    c.files[1] = (struct confine_file){"/s/images/tiny/vmlinuz", "", false, true};
    c.files[2] = (struct confine_file){"/s/images/tiny/initrd.img", "", false, true};
    c.files[3] = (struct confine_file){"/s/pools/default/clone.qcow2", "qcow2", true, false};
    c.files[4] = (struct confine_file){"/s/pools/default/base.raw", "raw", false, false};
    c.nfiles = 5;
    c.image = 0, c.kernel = 1, c.initrd = 2;
    c.vols[0] = (struct confine_vol){"abcdef01-2345-4678-9abc-def012345678", 3, 2};
    c.nvols = 1;
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/s/vms/X", "tcg", &vol, 1, &c, &a, err, sizeof(err)), 0);
    assert_true(has_pair(
        &a, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
    assert_true(
        has_pair(&a, "-add-fd", "fd=3,set=1,opaque=/s/vms/X/fd-1:/s/images/tiny/disk.qcow2"));
    assert_true(
        has_pair(&a, "-add-fd", "fd=6,set=4,opaque=/s/vms/X/fd-4:/s/pools/default/clone.qcow2"));
    assert_true(
        has_pair(&a, "-add-fd", "fd=7,set=5,opaque=/s/vms/X/fd-5:/s/pools/default/base.raw"));
    assert_true(has_pair(&a, "-kernel", "/proc/self/fd/4"));
    assert_true(has_pair(&a, "-initrd", "/proc/self/fd/5"));
    assert_true(has_pair(&a, "-drive",
                         "id=disk0,file=disk-1234.qcow2,format=qcow2,if=none,cache=writeback,"
                         "discard=unmap,backing.backing.driver=qcow2,backing.backing.file.driver="
                         "file,backing.backing.file.filename=/dev/fdset/1,backing.backing.read-"
                         "only=on"));
    assert_true(has_pair(&a, "-blockdev",
                         "node-name=vol-abcdef012345,discard=unmap,cache.direct=off,driver=qcow2,"
                         "file.driver=file,file.filename=/dev/fdset/4,backing.driver=raw,"
                         "backing.file.driver=file,backing.file.filename=/dev/fdset/5,backing."
                         "read-only=on"));
    assert_true(has_pair(&a, "-drive", "id=seed,file=seed.iso,format=raw,if=none,readonly=on"));
    assert_true(has_pair(&a, "-chardev", "socket,id=qmp,path=qmp.sock,server=on,wait=off"));
    assert_true(has_pair(&a, "-chardev",
                         "socket,id=console,path=con.sock,server=on,wait=off,logfile=console.log,"
                         "logappend=on"));
    char *joined = qemu_argv_join(&a);
    assert_null(strstr(joined, "-daemonize"));
    assert_null(strstr(joined, "-runas"));
    assert_null(strstr(joined, "-pidfile"));
    assert_null(strstr(joined, "-add-fd fd=4")); /* memfds are not fdsets */
    /* nothing QEMU opens is named by an absolute path */
    for (int i = 1; i < a.argc; i++)
        if (strcmp(a.argv[i - 1], "-add-fd"))
            assert_null(strstr(a.argv[i], "/s/"));
    free(joined);
    qemu_argv_free(&a);
    /* ... but the VM's directory is on the command line, by which yund
     * finds its QEMU (qemu_proc.c) */
    char vmdir[80], cmd[8192];
    snprintf(vmdir, sizeof(vmdir), "/s/vms/%s", v.id);
    assert_int_equal(
        qemu_argv_build("q", &v, &img, vmdir, "tcg", &vol, 1, &c, &a, err, sizeof(err)), 0);
    size_t len = 0;
    for (int i = 0; i < a.argc; i++) {
        size_t l = strlen(a.argv[i]) + 1;
        assert_true(len + l <= sizeof(cmd));
        memcpy(cmd + len, a.argv[i], l);
        len += l;
    }
    assert_true(qemu_cmdline_matches(cmd, len, "/s/vms", v.id));
    assert_false(qemu_cmdline_matches(cmd, len, "/t/vms", v.id));
    qemu_argv_free(&a);

    /* a volume without an fd planned, and a plan that does not hold up,
     * are refused */
    c.nvols = 0;
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/s/vms/X", "tcg", &vol, 1, &c, &a, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no fd"));
    c.nvols = 1;
    c.vols[0].n = 9;
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/s/vms/X", "tcg", &vol, 1, &c, &a, err, sizeof(err)), -1);
    c.vols[0].n = 2;
    c.image = 3;
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/s/vms/X", "tcg", &vol, 1, &c, &a, err, sizeof(err)), -1);
    c.image = 0;

    /* unconfined (qemu_confine=0): as before */
    c.on = false;
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/s/vms/X", "tcg", NULL, 0, &c, &a, err, sizeof(err)), 0);
    joined = qemu_argv_join(&a);
    assert_non_null(strstr(joined, " -daemonize "));
    assert_null(strstr(joined, "-runas"));
    assert_null(strstr(joined, "-sandbox"));
    assert_null(strstr(joined, "-add-fd"));
    assert_true(has_pair(&a, "-pidfile", "/s/vms/X/qemu.pid"));
    assert_true(has_pair(&a, "-kernel", "/s/images/tiny/vmlinuz"));
    assert_non_null(strstr(joined, "id=disk0,file=/s/vms/X/disk-1234.qcow2,format=qcow2"));
    free(joined);
    qemu_argv_free(&a);

    /* never root */
    c.on = true;
    c.uid = c.gid = 0;
    assert_int_equal(
        qemu_argv_build("q", &v, &img, "/s/vms/X", "tcg", NULL, 0, &c, &a, err, sizeof(err)), -1);
}

/* A uid claim names one VM of one yund (its DIR/vms) exactly. */
static void test_uid_claims(void **state)
{
    char text[256];
    confine_claim_text("0badc0de-0000-4000-8000-000000000000", "/var/lib/yun/vms", text,
                       sizeof(text));
    assert_string_equal(text, "0badc0de-0000-4000-8000-000000000000 /var/lib/yun/vms\n");
    assert_true(confine_claim_is(text, "0badc0de-0000-4000-8000-000000000000", "/var/lib/yun/vms"));
    assert_false(confine_claim_is(text, "0badc0de-0000-4000-8000-000000000000", "/srv/yun/vms"));
    assert_false(
        confine_claim_is(text, "0badc0df-0000-4000-8000-000000000000", "/var/lib/yun/vms"));
    assert_false(confine_claim_is("", "0badc0de-0000-4000-8000-000000000000", "/var/lib/yun/vms"));
}

/* The confinement settings: on by default, a uid range that is checked. */
static void test_confine_settings(void **state)
{
    struct yun_config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(c.qemu_confine, 1);
    assert_true(c.qemu_uid_min >= 1000 && c.qemu_uid_min <= c.qemu_uid_max);
    assert_int_equal(config_set(&c, "qemu_confine", "0", err, sizeof(err)), 0);
    assert_int_equal(c.qemu_confine, 0);
    assert_int_equal(config_set(&c, "qemu_confine", "yes", err, sizeof(err)), -1);
    assert_int_equal(config_set(&c, "qemu_uid_min", "0", err, sizeof(err)), -1);
    assert_int_equal(config_set(&c, "qemu_uid_max", "4294967295", err, sizeof(err)), -1);
    assert_int_equal(config_set(&c, "qemu_uid_dir", "run/yun", err, sizeof(err)), -1);
    assert_int_equal(config_set(&c, "qemu_uid_min", "3000000000", err, sizeof(err)), 0);
    assert_int_equal(config_set(&c, "qemu_uid_max", "2000000000", err, sizeof(err)), 0);
    assert_int_equal(config_finish(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "qemu_uid_min"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions_allowed), cmocka_unit_test(test_qmp_events),
        cmocka_unit_test(test_settled_states),  cmocka_unit_test(test_restart_policy),
        cmocka_unit_test(test_qemu_argv),       cmocka_unit_test(test_qemu_argv_confined),
        cmocka_unit_test(test_uid_claims),      cmocka_unit_test(test_confine_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
