/*
 * test_agent_record.c - the agent's record of its QEMUs (agent_record.c):
 * a round trip through STATE/agent-vms.json, files that are not a record
 * (renamed aside, an empty record), and a pid that is not the recorded
 * QEMU any more (another start time, another command line, gone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent_local.h"
#include "agent/agent_record.h"
#include "compute/engine.h"
#include "lib/config.h"
#include "lib/util.h"
#include "store/records.h"

#define VM_ID "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/yun-test-record-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char p[600];
        if (de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

/* A process whose command line names VM_ID the way QEMU's does. */
static pid_t fake_qemu(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "sleep 30; :", "sh", "-uuid", VM_ID, (char *)NULL);
        _exit(127);
    }
    /* until its exec is done */
    for (int i = 0; i < 200; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        size_t len = 0;
        char *s = read_file(path, 4096, &len);
        bool done = s && len > 0 && memmem(s, len, VM_ID, strlen(VM_ID));
        free(s);
        if (done)
            break;
        usleep(10000);
    }
    return pid;
}

static void end(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static struct vm_rec a_vm(void)
{
    struct vm_rec vm = {0};
    snprintf(vm.id, sizeof vm.id, VM_ID);
    snprintf(vm.name, sizeof vm.name, "web1");
    vm.uid = 100123;
    vm.memory_mb = 512;
    snprintf(vm.accel_used, sizeof vm.accel_used, "tcg");
    vm.cpu_weight = 200;
    vm.cpu_quota_us = 50000;
    vm.cpu_period_us = 100000;
    snprintf(vm.cpuset, sizeof vm.cpuset, "0-1");
    return vm;
}

static void test_round_trip(void **state)
{
    (void)state;
    pid_t pid = fake_qemu();
    struct agent_record *r = agent_record_open(dir);
    assert_non_null(r);
    assert_int_equal(agent_record_count(r), 0);
    struct vm_rec vm = a_vm();
    agent_record_launched(r, &vm, pid);
    agent_record_launched(r, &vm, pid); /* replaced, not twice */
    assert_int_equal(agent_record_count(r), 1);
    agent_record_free(r);

    char path[600];
    snprintf(path, sizeof path, "%s/" AGENT_RECORD_FILE, dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    r = agent_record_open(dir);
    assert_int_equal(agent_record_count(r), 1);
    const struct agent_record_entry *e = agent_record_find(r, VM_ID);
    assert_non_null(e);
    assert_string_equal(e->name, "web1");
    assert_int_equal(e->uid, 100123);
    assert_int_equal(e->pid, pid);
    assert_true(e->start > 0);
    assert_true(e->launched_at > 0);
    assert_int_equal(e->memory_mb, 512);
    assert_string_equal(e->accel, "tcg");
    assert_int_equal(e->cpu_weight, 200);
    assert_int_equal(e->cpu_quota_us, 50000);
    assert_int_equal(e->cpu_period_us, 100000);
    assert_string_equal(e->cpuset, "0-1");
    assert_true(agent_record_alive(e));

    /* an older QEMU's exit leaves a later one's entry */
    agent_record_forget(r, VM_ID, pid + 1);
    assert_int_equal(agent_record_count(r), 1);
    agent_record_forget(r, VM_ID, pid);
    assert_int_equal(agent_record_count(r), 0);
    agent_record_flush(r);
    agent_record_free(r);
    r = agent_record_open(dir);
    assert_int_equal(agent_record_count(r), 0);
    agent_record_free(r);
    end(pid);
}

static void test_pid_reuse(void **state)
{
    (void)state;
    pid_t pid = fake_qemu();
    struct agent_record *r = agent_record_open(dir);
    struct vm_rec vm = a_vm();
    agent_record_launched(r, &vm, pid);
    struct agent_record_entry e = *agent_record_find(r, VM_ID);
    agent_record_free(r);
    assert_true(agent_record_alive(&e));

    struct agent_record_entry other = e;
    other.start = e.start + 1; /* the same pid, started at another time */
    assert_false(agent_record_alive(&other));
    other = e;
    other.pid = getpid(); /* a live pid whose command line names no VM */
    assert_false(agent_record_alive(&other));
    other = e;
    snprintf(other.vm, sizeof other.vm, "00000000-0000-0000-0000-000000000001");
    assert_false(agent_record_alive(&other)); /* it runs, as another VM's */

    end(pid);
    assert_false(agent_record_alive(&e)); /* gone */
}

/* The record at path holds text: opening it gives an empty record, and the
 * file is renamed aside. */
static void corrupt(const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/" AGENT_RECORD_FILE, dir);
    assert_int_equal(write_file_atomic(path, text, strlen(text), 0600), 0);
    struct agent_record *r = agent_record_open(dir);
    assert_non_null(r);
    assert_int_equal(agent_record_count(r), 0);
    agent_record_free(r);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
    int aside = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)))
        aside += !strncmp(de->d_name, AGENT_RECORD_FILE ".bad-", strlen(AGENT_RECORD_FILE) + 5);
    closedir(d);
    assert_int_equal(aside, 1);
    teardown(NULL);
    setup(NULL);
}

static void test_corrupt(void **state)
{
    (void)state;
    corrupt("{\"version\":1,\"vms\":[");
    corrupt("[]");
    corrupt("{\"version\":2,\"vms\":[]}");
    corrupt("{\"version\":1,\"vms\":{}}");
    corrupt("{\"version\":1,\"vms\":[7]}");
    corrupt("{\"version\":1,\"vms\":[],\"vms\":[]}");
}

static const char *entry(const char *vm, const char *pid, const char *mem)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"vm\":\"%s\",\"name\":\"a\",\"uid\":0,\"pid\":%s,\"start\":5,\"launched_at\":1,"
             "\"memory_mb\":%s,\"accel\":\"kvm\",\"cpu_weight\":0,\"cpu_quota_us\":0,"
             "\"cpu_period_us\":0,\"cpuset\":\"\"}",
             vm, pid, mem);
    return buf;
}

static int parse(const char *e1, const char *e2)
{
    char text[4096], why[256];
    snprintf(text, sizeof text, "{\"version\":1,\"vms\":[%s%s%s]}", e1, e2 ? "," : "",
             e2 ? e2 : "");
    struct agent_record_entry *out;
    size_t n;
    int rc = agent_record_parse(text, &out, &n, why, sizeof why);
    if (rc == 0)
        free(out);
    return rc;
}

static void test_parse(void **state)
{
    (void)state;
    char a[1024];
    snprintf(a, sizeof a, "%s", entry(VM_ID, "1234", "512"));
    assert_int_equal(parse(a, NULL), 0);
    assert_int_equal(parse(a, entry("0abc", "99", "1")), 0);
    assert_int_equal(parse(a, a), -1); /* one VM twice */
    assert_int_equal(parse(entry("../etc", "1234", "512"), NULL), -1);
    assert_int_equal(parse(entry("ABC", "1234", "512"), NULL), -1);
    assert_int_equal(parse(entry(VM_ID, "1", "512"), NULL), -1);
    assert_int_equal(parse(entry(VM_ID, "-5", "512"), NULL), -1);
    assert_int_equal(parse(entry(VM_ID, "\"12\"", "512"), NULL), -1);
    assert_int_equal(parse(entry(VM_ID, "99999999999", "512"), NULL), -1);
    assert_int_equal(parse(entry(VM_ID, "1234", "-1"), NULL), -1);

    /* dump and parse agree */
    struct agent_record_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.vm, sizeof e.vm, VM_ID);
    snprintf(e.name, sizeof e.name, "n");
    e.pid = 77;
    e.start = 123456789012ULL;
    e.memory_swap_mb = -1; /* the memory policy vm.attach writes again */
    e.memory_high_mb = 64;
    e.memory_lock = 1;
    char *s = agent_record_dump(&e, 1);
    struct agent_record_entry *out;
    size_t n;
    char why[256];
    assert_int_equal(agent_record_parse(s, &out, &n, why, sizeof why), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(&out[0], &e, sizeof e);
    free(out);
    free(s);
    /* a record from before the memory policy: the host's defaults */
    char text[2048];
    snprintf(text, sizeof text, "{\"version\":1,\"vms\":[%s]}", entry(VM_ID, "1234", "512"));
    assert_int_equal(agent_record_parse(text, &out, &n, why, sizeof why), 0);
    assert_true(out[0].memory_swap_mb == -1 && out[0].memory_high_mb == 0 && !out[0].memory_lock);
    free(out);
    snprintf(text, sizeof text, "{\"version\":1,\"vms\":[%.*s,\"memory_swap_mb\":-2}]}",
             (int)strlen(entry(VM_ID, "1234", "512")) - 1, entry(VM_ID, "1234", "512"));
    assert_int_equal(agent_record_parse(text, &out, &n, why, sizeof why), -1);
}

static int exits, exits_while_down;
static void on_event(void *ctx, const char *type, json_t *ev)
{
    (void)ctx;
    if (strcmp(type, "vm.exited"))
        return;
    exits++;
    exits_while_down += json_is_true(json_object_get(ev, "while_down"));
}

struct got {
    int calls;
    json_t *res;
};

static void on_got(void *ctx, json_t *result, const struct yerr *err)
{
    struct got *g = ctx;
    g->calls++;
    g->res = result ? json_incref(result) : NULL;
    (void)err;
}

/* The record at an agent's start: a live QEMU attached through vm.attach, a
 * gone one (its pid reused by another start) raised as exited while down;
 * host.orphans then names the recorded QEMU whose VM is not known. */
static void test_recover_and_orphans(void **state)
{
    (void)state;
    pid_t pid = fake_qemu();
    struct yun_config cfg;
    config_defaults(&cfg);
    struct event_base *base = event_base_new();
    struct engine e;
    memset(&e, 0, sizeof e);
    e.base = base;
    e.cfg = &cfg;
    snprintf(e.vms_dir, sizeof e.vms_dir, "%s/vms", dir);
    assert_int_equal(mkdir(e.vms_dir, 0700), 0);
    char vmdir[600], pidfile[700], num[32];
    snprintf(vmdir, sizeof vmdir, "%s/" VM_ID, e.vms_dir);
    assert_int_equal(mkdir(vmdir, 0700), 0);
    snprintf(pidfile, sizeof pidfile, "%s/qemu.pid", vmdir);
    snprintf(num, sizeof num, "%d\n", (int)pid);
    assert_int_equal(write_file_atomic(pidfile, num, strlen(num), 0600), 0);

    struct agent_record *r = agent_record_open(dir);
    struct vm_rec vm = a_vm();
    vm.uid = 0;
    agent_record_launched(r, &vm, pid);
    struct vm_rec gone = a_vm();
    snprintf(gone.id, sizeof gone.id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f1");
    agent_record_launched(r, &gone, pid);
    ((struct agent_record_entry *)agent_record_find(r, gone.id))->start++; /* another process */
    assert_int_equal(agent_record_count(r), 2);

    struct agent *a = agent_local_new(base, &cfg, &e);
    agent_local_of(a)->record = r;
    assert_int_equal(agent_subscribe(a, on_event, NULL), 0);
    assert_int_equal(agent_record_recover(r, base, a), 1);
    assert_int_equal(exits, 1);
    assert_int_equal(exits_while_down, 1);
    assert_int_equal(agent_record_count(r), 1);
    assert_non_null(agent_record_find(r, VM_ID));
    struct vm_rt *rt = engine_rt_find(&e, VM_ID);
    assert_non_null(rt);
    assert_int_equal(rt->pid, pid);

    /* the directory gone, the VM unknown: the record names its QEMU */
    unlink(pidfile);
    rmdir(vmdir);
    struct got g = {0};
    assert_true(agent_call(a, AV_HOST_ORPHANS, json_pack("{s:[],s:i}", "known", "pass", 1), on_got,
                           NULL, &g) > 0);
    while (!g.calls)
        event_base_loop(base, EVLOOP_ONCE);
    json_t *o = json_object_get(g.res, "orphans");
    assert_int_equal(json_array_size(o), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0), "vm")), VM_ID);
    assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0), "seen")), "up");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(o, 0), "pid")), pid);
    json_decref(g.res);
    memset(&g, 0, sizeof g);
    /* known: no orphan */
    assert_true(agent_call(a, AV_HOST_ORPHANS, json_pack("{s:[s],s:i}", "known", VM_ID, "pass", 2),
                           on_got, NULL, &g) > 0);
    while (!g.calls)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(json_array_size(json_object_get(g.res, "orphans")), 0);
    json_decref(g.res);

    engine_rt_drop(&e, rt);
    agent_local_of(a)->record = NULL;
    agent_free(a);
    agent_record_free(r);
    event_base_free(base);
    rmdir(e.vms_dir);
    end(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pid_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_and_orphans, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
