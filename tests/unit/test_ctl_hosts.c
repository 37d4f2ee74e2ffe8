/* test_ctl_hosts.c - the controller with more than one host, on a real
 * store: a call to a host with no agent fails later with 503 (and not at
 * all once forgotten), operations on its VMs are refused with 503 and
 * change no row, a host going down makes its VMs with a QEMU "unknown"
 * (and no others), an agent's event about a VM on another host is
 * ignored, and capacity counts each host's own VMs. The local host's agent
 * records its calls; host "h2" has none (it is down). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "ctl/ctl.h"
#include "ctl/hosts.h"
#include "ctl/vms_int.h"
#include "lib/util.h"
#include "store/store.h"
#include "rec_agent.h"
#include "store_backend.h"

struct fx {
    struct ctl c;
    struct yun_config cfg;
    struct rec_agent agent;
    struct event_base *base;
    struct vm_rec local, remote, remote_stopped;
};

static void vm_make(struct fx *f, struct vm_rec *vm, const char *name, const char *host,
                    enum vm_state st)
{
    memset(vm, 0, sizeof *vm);
    uuid_generate_str(vm->id);
    snprintf(vm->name, sizeof vm->name, "%s", name);
    snprintf(vm->image, sizeof vm->image, "tiny");
    snprintf(vm->host, sizeof vm->host, "%s", host);
    vm->cpus = 2;
    vm->memory_mb = 256;
    vm->state = st;
    vm->desired = st == VM_RUNNING ? WANT_RUNNING : WANT_STOPPED;
    vm->pid = st == VM_RUNNING ? 4242 : 0;
    assert_int_equal(store_vm_insert(f->c.store, vm), 0);
}

static int setup(void **state)
{
    if (tb_fresh("ctl-hosts") < 0)
        return -1;
    struct fx *f = calloc(1, sizeof *f);
    char err[256];
    config_defaults(&f->cfg);
    f->base = event_base_new();
    rec_agent_init(&f->agent, "local");
    f->c.base = f->base;
    f->c.cfg = &f->cfg;
    f->c.agent = &f->agent.pub;
    f->c.facts.cpus = 4;
    f->c.facts.memory = 8ULL << 30;
    snprintf(f->c.facts.vms_dir, sizeof f->c.facts.vms_dir, "/nonexistent/vms");
    if (store_open(tb_spec(), &f->c.store, err, sizeof err) != 0)
        return -1;
    vm_make(f, &f->local, "here", "", VM_RUNNING);
    vm_make(f, &f->remote, "there", "h2", VM_RUNNING);
    vm_make(f, &f->remote_stopped, "there-off", "h2", VM_STOPPED);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    ctl_vm_events_shutdown(&f->c);
    ctl_vms_hosts_shutdown(&f->c);
    ctl_host_calls_shutdown(&f->c);
    rec_agent_done(&f->agent);
    store_close(f->c.store);
    event_base_free(f->base);
    free(f);
    tb_cleanup();
    return 0;
}

static struct vm_rec row(struct fx *f, const char *id)
{
    struct vm_rec v;
    assert_int_equal(store_vm_get(f->c.store, id, &v), 0);
    return v;
}

struct reply {
    int n;
    struct yerr err;
};

static void on_reply(void *ctx, json_t *res, const struct yerr *err)
{
    struct reply *r = ctx;
    r->n++;
    if (err)
        r->err = *err;
}

static void test_call_to_a_down_host_fails_later(void **state)
{
    struct fx *f = *state;
    struct reply r = {0};
    uint64_t id = ctl_vm_call(&f->c, &f->remote, AV_VM_STATUS, json_object(), on_reply, NULL, &r);
    assert_true(id > 0);
    assert_int_equal(r.n, 0); /* never inside the call */
    assert_int_equal(f->agent.calls, 0);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.err.code, YE_UNAVAILABLE);
    assert_non_null(strstr(r.err.message, "h2"));
    /* forgotten before the loop runs: no reply at all */
    struct reply r2 = {0};
    assert_true(ctl_vm_call(&f->c, &f->remote, AV_VM_STATUS, NULL, on_reply, NULL, &r2) > 0);
    ctl_agents_forget(&f->c, &r2);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(r2.n, 0);
    /* the local host's VM goes to the local agent */
    assert_true(ctl_vm_call(&f->c, &f->local, AV_VM_STATUS, NULL, on_reply, NULL, &r) > 0);
    assert_int_equal(f->agent.calls, 1);
}

static void test_operations_on_a_down_host_are_refused(void **state)
{
    struct fx *f = *state;
    struct yerr err = {0};
    assert_int_equal(ctl_vm_stop(&f->c, "there", false, NULL, NULL, &err), -1);
    assert_int_equal(err.code, YE_UNAVAILABLE);
    struct vm_rec v = row(f, f->remote.id);
    assert_int_equal(v.state, VM_RUNNING); /* nothing changed */
    assert_int_equal(v.desired, WANT_RUNNING);
    memset(&err, 0, sizeof err);
    assert_int_equal(ctl_vm_start(&f->c, "there-off", 0, NULL, NULL, &err), -1);
    assert_int_equal(err.code, YE_UNAVAILABLE);
    assert_int_equal(row(f, f->remote_stopped.id).state, VM_STOPPED);
    memset(&err, 0, sizeof err);
    assert_int_equal(ctl_vm_delete(&f->c, "there-off", false, NULL, NULL, &err), -1);
    assert_int_equal(err.code, YE_UNAVAILABLE);
    assert_int_equal(row(f, f->remote_stopped.id).state, VM_STOPPED);
    assert_int_equal(f->agent.calls, 0);
}

static void test_host_down_makes_its_vms_unknown(void **state)
{
    struct fx *f = *state;
    ctl_vms_host_down(&f->c, "h2");
    assert_int_equal(row(f, f->remote.id).state, VM_UNKNOWN);
    assert_int_equal(row(f, f->remote.id).pid, 4242); /* kept for the re-attach */
    assert_int_equal(row(f, f->remote_stopped.id).state, VM_STOPPED);
    assert_int_equal(row(f, f->local.id).state, VM_RUNNING);
    struct event_rec *evs;
    size_t n;
    assert_int_equal(store_event_list(f->c.store, 0, 100, "there", &evs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(evs[0].action, "host-down");
    assert_non_null(strstr(evs[0].reason, "running -> unknown"));
    free(evs);
    /* told twice: nothing more */
    ctl_vms_host_down(&f->c, "h2");
    assert_int_equal(store_event_list(f->c.store, 0, 100, "there", &evs, &n), 0);
    assert_int_equal(n, 1);
    free(evs);
    /* an unknown VM: only force-stop and delete --force, and those need the host */
    struct yerr err = {0};
    assert_int_equal(ctl_vm_stop(&f->c, "there", false, NULL, NULL, &err), -1);
    assert_int_equal(err.code, YE_CONFLICT);
    memset(&err, 0, sizeof err);
    assert_int_equal(ctl_vm_stop(&f->c, "there", true, NULL, NULL, &err), -1);
    assert_int_equal(err.code, YE_UNAVAILABLE);
    assert_int_equal(row(f, f->remote.id).state, VM_UNKNOWN);
}

static void test_event_about_another_hosts_vm_is_ignored(void **state)
{
    struct fx *f = *state;
    assert_int_equal(ctl_vms_host_attached(&f->c, "", &f->agent.pub), 0);
    assert_int_equal(ctl_vms_host_attached(&f->c, "", &f->agent.pub), 0); /* once */
    assert_int_equal(f->agent.pub.nsubs, 1);
    json_t *ev = json_pack("{s:s,s:s}", "vm", f->remote.id, "event", "STOP");
    agent_emit(&f->agent.pub, "vm.qmp_event", ev);
    json_decref(ev);
    assert_int_equal(row(f, f->remote.id).state, VM_RUNNING); /* not this agent's VM */
    ev = json_pack("{s:s,s:s}", "vm", f->local.id, "event", "STOP");
    agent_emit(&f->agent.pub, "vm.qmp_event", ev);
    json_decref(ev);
    assert_int_equal(row(f, f->local.id).state, VM_PAUSED);
}

static void test_capacity_is_per_host(void **state)
{
    struct fx *f = *state;
    struct host_usage u;
    struct yerr err = {0};
    assert_int_equal(ctl_host_usage(&f->c, "", &u, &err), 0);
    assert_int_equal(u.vms_total, 1); /* the local VM only */
    assert_int_equal(u.cpus_used, 2);
    assert_int_equal(u.cpus_total, 4);
    /* a host whose facts are not known */
    assert_int_equal(ctl_host_usage(&f->c, "h2", &u, &err), -1);
    assert_int_equal(err.code, YE_UNAVAILABLE);
    /* the store's per-host totals; an unknown VM's QEMU may run: it counts */
    ctl_vms_host_down(&f->c, "h2");
    struct vm_totals t;
    assert_int_equal(store_vm_totals_host(f->c.store, "h2", false, &t), 0);
    assert_int_equal(t.vms, 2);
    assert_int_equal(t.running, 1);
    assert_int_equal((int)t.memory_mb, 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_call_to_a_down_host_fails_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operations_on_a_down_host_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_host_down_makes_its_vms_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_about_another_hosts_vm_is_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_capacity_is_per_host, setup, teardown),
    };
    return TB_RUN_GROUPS(tests); /* on SQLite, and on PostgreSQL when YUN_TEST_PG_URL is set */
}
