/* test_ctl_events.c - the controller's side of the host's events
 * (ctl/vms_events.c) on a real store and a recording agent: a QMP event
 * moves the row (not during a launch), an exit makes it stopped or crashed
 * by the policy, a guest reset loop is ended through vm.end with SIGKILL
 * and crashes the VM with its cause, the guest agent's notes and a failed
 * power-off are worded, and malformed events from the agent change nothing. */
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
#include "ctl/vms_int.h"
#include "lib/util.h"
#include "store/store.h"
#include "rec_agent.h"
#include "store_backend.h"

/* ---- an agent that records its calls and never answers ---- */

/* ---- fixture ---- */

struct fx {
    struct ctl c;
    struct yun_config cfg;
    struct rec_agent agent;
    struct event_base *base;
    struct vm_rec vm;
};

static int setup(void **state)
{
    if (tb_fresh("ctl-events") < 0)
        return -1;
    struct fx *f = calloc(1, sizeof *f);
    char err[256];
    config_defaults(&f->cfg);
    f->cfg.reset_loop_max = 3;
    f->cfg.reset_loop_window_s = 60;
    f->base = event_base_new();
    rec_agent_init(&f->agent, "test");
    f->c.base = f->base;
    f->c.cfg = &f->cfg;
    f->c.agent = &f->agent.pub;
    if (store_open(tb_spec(), &f->c.store, err, sizeof err) != 0)
        return -1;
    uuid_generate_str(f->vm.id);
    snprintf(f->vm.name, sizeof f->vm.name, "alpha");
    snprintf(f->vm.image, sizeof f->vm.image, "tiny");
    f->vm.cpus = 1;
    f->vm.memory_mb = 96;
    f->vm.state = VM_RUNNING;
    f->vm.desired = WANT_RUNNING;
    f->vm.pid = 4242;
    f->vm.uid = 1900100007;
    f->vm.restart = RESTART_NO;
    if (store_vm_insert(f->c.store, &f->vm) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->agent.done) { /* the vm.end of a reset loop: its ctx is freed by the reply */
        json_t *r = json_pack("{s:b}", "ended", 1);
        f->agent.done(f->agent.ctx, r, NULL);
        json_decref(r);
    }
    ctl_vm_events_shutdown(&f->c);
    rec_agent_done(&f->agent);
    store_close(f->c.store);
    event_base_free(f->base);
    free(f);
    tb_cleanup();
    return 0;
}

static struct vm_rec row(struct fx *f)
{
    struct vm_rec v;
    assert_int_equal(store_vm_get(f->c.store, f->vm.id, &v), 0);
    return v;
}

/* The newest event of the VM with this action, or false. */
static bool last_event(struct fx *f, const char *action, struct event_rec *out)
{
    struct event_rec *evs;
    size_t n;
    assert_int_equal(store_event_list(f->c.store, 0, 1000, NULL, &evs, &n), 0);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(evs[i].action, action)) {
            *out = evs[i];
            found = true;
        }
    free(evs);
    return found;
}

static void qmp(struct fx *f, const char *event, json_t *data, bool launching)
{
    json_t *ev = json_pack("{s:s,s:s,s:o?,s:b}", "vm", f->vm.id, "event", event, "data", data,
                           "launching", launching);
    assert_true(ctl_vm_host_event(&f->c, "vm.qmp_event", ev));
    json_decref(ev);
}

static void exited(struct fx *f, bool shutdown_seen)
{
    json_t *ev = json_pack("{s:s,s:i,s:b,s:b}", "vm", f->vm.id, "pid", 4242, "shutdown_seen",
                           shutdown_seen, "while_down", 0);
    assert_true(ctl_vm_host_event(&f->c, "vm.exited", ev));
    json_decref(ev);
}

/* ---- tests ---- */

static void test_qmp_event_moves_the_row(void **state)
{
    struct fx *f = *state;
    struct event_rec ev;
    qmp(f, "STOP", json_object(), false);
    assert_int_equal(row(f).state, VM_PAUSED);
    assert_true(last_event(f, "qmp:stop", &ev));
    assert_string_equal(ev.object, "alpha");
    qmp(f, "RESUME", json_object(), false);
    assert_int_equal(row(f).state, VM_RUNNING);
}

static void test_launch_keeps_the_row(void **state)
{
    struct fx *f = *state;
    qmp(f, "STOP", json_object(), true);
    assert_int_equal(row(f).state, VM_RUNNING); /* the launch's reply moves it */
}

static void test_malformed_events_change_nothing(void **state)
{
    struct fx *f = *state;
    struct vm_rec before = row(f);
    const char *bad[] = {
        "{\"event\":\"STOP\"}",                                  /* no vm */
        "{\"vm\":5,\"event\":\"STOP\"}",                         /* vm not a string */
        "{\"vm\":\"\",\"event\":\"STOP\"}",                      /* empty */
        "{\"vm\":\"0123456789012345678901234567890123456789\"}", /* too long */
        "{\"vm\":\"no-such-vm-id\",\"event\":\"STOP\"}",         /* unknown */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *ev = json_loads(bad[i], 0, NULL);
        assert_non_null(ev);
        ctl_vm_host_event(&f->c, "vm.qmp_event", ev);
        ctl_vm_host_event(&f->c, "vm.exited", ev);
        ctl_vm_host_event(&f->c, "vm.guest", ev);
        json_decref(ev);
    }
    /* the right vm with an event that is no string, data that is no object */
    json_t *ev = json_pack("{s:s,s:i}", "vm", f->vm.id, "event", 7);
    ctl_vm_host_event(&f->c, "vm.qmp_event", ev);
    json_decref(ev);
    ev = json_pack("{s:s,s:s,s:s}", "vm", f->vm.id, "event", "STOP", "data", "x");
    ctl_vm_host_event(&f->c, "vm.qmp_event", ev);
    json_decref(ev);
    struct vm_rec after = row(f);
    assert_int_equal(after.state, before.state);
    assert_int_equal(after.pid, before.pid);
    assert_false(ctl_vm_host_event(&f->c, "vm.nonsense", NULL));
}

static void test_clean_exit_stops(void **state)
{
    struct fx *f = *state;
    struct event_rec ev;
    exited(f, true);
    struct vm_rec v = row(f);
    assert_int_equal(v.state, VM_STOPPED);
    assert_int_equal(v.desired, WANT_STOPPED);
    assert_int_equal(v.pid, 0);
    assert_true(last_event(f, "exit", &ev));
    assert_string_equal(ev.result, "ok");
    assert_string_equal(ev.reason, "guest stopped (was running)");
}

static int count_events(struct fx *f, const char *action)
{
    struct event_rec *evs;
    size_t n;
    assert_int_equal(store_event_list(f->c.store, 0, 1000, NULL, &evs, &n), 0);
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += !strcmp(evs[i].action, action);
    free(evs);
    return k;
}

/* One exit is told once: a second report of it (the reconcile pass and the
 * watch both), or an exit of a QEMU the row does not name, changes nothing. */
static void test_exit_told_twice_counts_once(void **state)
{
    struct fx *f = *state;
    json_t *other = json_pack("{s:s,s:i,s:b,s:b}", "vm", f->vm.id, "pid", 999, "shutdown_seen", 0,
                              "while_down", 0);
    assert_true(ctl_vm_host_event(&f->c, "vm.exited", other));
    json_decref(other);
    assert_int_equal(row(f).state, VM_RUNNING); /* pid 999 is not its QEMU */
    assert_int_equal(count_events(f, "exit"), 0);
    exited(f, true);
    exited(f, false);
    struct vm_rec v = row(f);
    assert_int_equal(v.state, VM_STOPPED);
    assert_string_equal(v.last_error, ""); /* the clean exit, not a second unclean one */
    assert_int_equal(count_events(f, "exit"), 1);
}

static void test_unclean_exit_says_so(void **state)
{
    struct fx *f = *state;
    struct event_rec ev;
    exited(f, false);
    struct vm_rec v = row(f);
    assert_int_not_equal(v.state, VM_RUNNING);
    assert_string_equal(v.last_error, "qemu exited unexpectedly");
    assert_true(last_event(f, "exit", &ev));
    assert_string_equal(ev.result, "error");
}

static void test_reset_loop_is_ended_and_crashes(void **state)
{
    struct fx *f = *state;
    struct event_rec ev;
    /* resets the user asked for never count */
    for (int i = 0; i < 5; i++)
        qmp(f, "RESET", json_pack("{s:b}", "guest", 0), false);
    assert_int_equal(f->agent.calls, 0);
    for (int i = 0; i < 3; i++)
        qmp(f, "RESET", json_pack("{s:b,s:s}", "guest", 1, "reason", "guest-reset"), false);
    assert_int_equal(f->agent.calls, 1);
    assert_int_equal(f->agent.last_verb, AV_VM_END);
    assert_true(json_is_true(json_object_get(f->agent.last_args, "kill")));
    assert_string_equal(json_string_value(json_object_get(f->agent.last_args, "vm")), f->vm.id);
    assert_int_equal(json_integer_value(json_object_get(f->agent.last_args, "uid")), f->vm.uid);
    assert_true(last_event(f, "reset-loop", &ev));
    assert_string_equal(ev.result, "error");
    /* the QEMU it ended exits: crashed with the cause, even with a
     * SHUTDOWN seen (it is not a clean stop) */
    exited(f, true);
    struct vm_rec v = row(f);
    assert_int_equal(v.state, VM_CRASHED);
    assert_non_null(strstr(v.last_error, "a reset loop"));
    assert_int_equal(v.desired, WANT_RUNNING);
    assert_false(ctl_vm_restart_pending(&f->c, f->vm.id)); /* crashed: no restart */
}

static void test_restart_policy_arms_a_restart(void **state)
{
    struct fx *f = *state;
    f->vm.restart = RESTART_ON_FAILURE;
    assert_int_equal(store_vm_update(f->c.store, &f->vm), 0);
    exited(f, false);
    struct vm_rec v = row(f);
    assert_int_equal(v.state, VM_STOPPED);
    assert_int_equal(v.desired, WANT_RUNNING);
    assert_true(ctl_vm_restart_pending(&f->c, f->vm.id));
}

static void test_guest_notes_and_powerdown(void **state)
{
    struct fx *f = *state;
    struct event_rec ev;
    json_t *g = json_pack("{s:s,s:s,s:s}", "vm", f->vm.id, "agent", "silent", "error", "timeout");
    assert_true(ctl_vm_host_event(&f->c, "vm.guest", g));
    json_decref(g);
    assert_true(last_event(f, "guest-agent", &ev));
    assert_string_equal(ev.reason, "not answering: timeout");
    /* a failed power-off is only worded while the VM is stopping */
    json_t *p = json_pack("{s:s,s:s}", "vm", f->vm.id, "agent_error", "no agent");
    assert_true(ctl_vm_host_event(&f->c, "vm.powerdown", p));
    assert_false(last_event(f, "stop", &ev));
    f->vm.state = VM_STOPPING;
    assert_int_equal(store_vm_update(f->c.store, &f->vm), 0);
    assert_true(ctl_vm_host_event(&f->c, "vm.powerdown", p));
    json_decref(p);
    assert_true(last_event(f, "stop", &ev));
    assert_string_equal(ev.result, "ok");
    assert_string_equal(ev.reason, "no power-off through the agent (no agent): ACPI power button "
                                   "pressed");
}

static void test_balloon_event(void **state)
{
    struct fx *f = *state;
    struct event_rec ev;
    /* malformed: a missing figure, a negative one, no reason: nothing recorded */
    json_t *bad[3] = {
        json_pack("{s:s,s:I,s:I,s:I,s:s}", "vm", f->vm.id, "target", (json_int_t)64 << 20, "actual",
                  (json_int_t)96 << 20, "min", (json_int_t)64 << 20, "reason", "x"),
        json_pack("{s:s,s:I,s:I,s:I,s:I,s:s}", "vm", f->vm.id, "target", (json_int_t)-1, "actual",
                  (json_int_t)0, "min", (json_int_t)0, "size", (json_int_t)0, "reason", "x"),
        json_pack("{s:s,s:I,s:I,s:I,s:I}", "vm", f->vm.id, "target", (json_int_t)1, "actual",
                  (json_int_t)1, "min", (json_int_t)1, "size", (json_int_t)1),
    };
    for (int i = 0; i < 3; i++) {
        assert_true(ctl_vm_host_event(&f->c, "vm.balloon", bad[i]));
        json_decref(bad[i]);
    }
    assert_false(last_event(f, "balloon", &ev));
    json_t *b =
        json_pack("{s:s,s:I,s:I,s:I,s:I,s:s}", "vm", f->vm.id, "target", (json_int_t)80 << 20,
                  "actual", (json_int_t)96 << 20, "min", (json_int_t)64 << 20, "size",
                  (json_int_t)96 << 20, "reason", "host pressure: reclaim from idle guest");
    assert_true(ctl_vm_host_event(&f->c, "vm.balloon", b));
    json_decref(b);
    assert_true(last_event(f, "balloon", &ev));
    assert_string_equal(ev.result, "info");
    assert_string_equal(ev.reason, "target 80 MiB, actual 96 MiB (min 64 MiB of 96 MiB): host "
                                   "pressure: reclaim from idle guest");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_qmp_event_moves_the_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_launch_keeps_the_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_events_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_exit_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unclean_exit_says_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_told_twice_counts_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_loop_is_ended_and_crashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_policy_arms_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_notes_and_powerdown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_balloon_event, setup, teardown),
    };
    return TB_RUN_GROUPS(tests);
}
