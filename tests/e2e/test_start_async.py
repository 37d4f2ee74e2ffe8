"""A VM start never blocks yund's loop: while a start waits for its QEMU
(held before exec by a wrapper that reads a FIFO, so nothing here depends on
timing), the API answers, the start holds the VM (a stop is refused, naming
the start's task), a client that leaves does not stop it, and once QEMU runs
the start finishes as usual."""
import os
import subprocess
import threading

from conftest import YUN, pid_alive, qemu_pids_for, wait_for
from test_crash_start import gated_yund


def open_gate(gate):
    with open(gate, "w") as f:
        f.write("go\n")


def test_api_answers_while_a_start_waits_for_qemu(state_dir):
    y, gate = gated_yund(state_dir)
    y.yun("vm", "create", "e2e-slow", "--image", "tiny", "--memory", "96M")
    y.yun("vm", "create", "e2e-other", "--image", "tiny", "--memory", "96M")
    done = {}

    def start():
        done["reply"] = y.request("POST", "/v1/vms/e2e-slow/actions/start", timeout=120)

    t = threading.Thread(target=start)
    t.start()
    held = wait_for(lambda: qemu_pids_for(state_dir), 20, what="the held qemu")
    # The start is pending (its QEMU has not even exec'ed) ...
    assert t.is_alive() and "reply" not in done
    # ... and yund answers: the list, the row, the task holding the VM.
    st, r = y.request("GET", "/v1/vms", timeout=10)
    assert st == 200, r
    states = {v["name"]: v["state"] for v in r["vms"]}
    assert states == {"e2e-slow": "starting", "e2e-other": "stopped"}, states
    st, r = y.request("POST", "/v1/vms/e2e-slow/actions/stop", timeout=10)
    assert st == 409 and "vm.start" in r["error"]["message"], r
    st, r = y.request("POST", "/v1/vms/e2e-slow/actions/start", timeout=10)
    assert st == 409, r
    assert t.is_alive() and "reply" not in done
    open_gate(gate)
    t.join(60)
    assert not t.is_alive()
    st, v = done["reply"]
    assert st == 200 and v["state"] == "running", v
    assert v["pid"] > 0 and pid_alive(v["pid"])
    assert not pid_alive(held[0]) or held[0] == v["pid"]
    y.wait_marker("e2e-slow")
    ev = [e for e in y.events("e2e-slow") if e["action"] == "start"]
    assert ev and ev[-1]["result"] == "ok", ev
    y.check_invariants()
    y.yun("vm", "stop", "--force", "e2e-slow")
    wait_for(lambda: y.vm("e2e-slow")["state"] == "stopped", 30, what="stopped")
    y.check_invariants(settled=True)
    y.stop()


def test_a_client_that_leaves_does_not_stop_the_start(state_dir):
    y, gate = gated_yund(state_dir)
    y.yun("vm", "create", "e2e-left", "--image", "tiny", "--memory", "96M")
    p = subprocess.Popen([YUN, "--socket", y.sock, "vm", "start", "e2e-left"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: qemu_pids_for(state_dir), 20, what="the held qemu")
    p.kill()
    p.wait()
    assert y.vm("e2e-left")["state"] == "starting"
    open_gate(gate)
    v = wait_for(lambda: (lambda v: v if v["state"] == "running" else None)(y.vm("e2e-left")),
                 60, what="the start to finish without its client")
    assert v["pid"] > 0 and pid_alive(v["pid"])
    y.check_invariants()
    y.yun("vm", "stop", "--force", "e2e-left")
    wait_for(lambda: y.vm("e2e-left")["state"] == "stopped", 30, what="stopped")
    y.check_invariants(settled=True)
    y.stop()


def test_create_with_start_answers_when_started(state_dir):
    y, gate = gated_yund(state_dir)
    done = {}

    def create():
        done["reply"] = y.request("POST", "/v1/vms", {"name": "e2e-cs", "image": "tiny",
                                                      "memory_mb": 96, "start": True})

    t = threading.Thread(target=create)
    t.start()
    wait_for(lambda: qemu_pids_for(state_dir), 20, what="the held qemu")
    st, r = y.request("GET", "/v1/vms/e2e-cs", timeout=10)
    assert st == 200 and r["state"] == "starting", r
    open_gate(gate)
    t.join(60)
    st, v = done["reply"]
    assert st == 201 and v["state"] == "running", v
    y.yun("vm", "stop", "--force", "e2e-cs")
    wait_for(lambda: y.vm("e2e-cs")["state"] == "stopped", 30, what="stopped")
    y.check_invariants(settled=True)
    y.stop()


def test_qemu_that_exits_before_qmp_fails_the_start_cleanly(state_dir):
    """The wrapper exits instead of exec'ing QEMU: the start fails with
    nothing left (no process, no cgroup), the row says stopped."""
    y, gate = gated_yund(state_dir)
    y.yun("vm", "create", "e2e-dies", "--image", "tiny", "--memory", "96M")
    # make the wrapper exit with a message once let through
    wrapper = os.path.join(os.path.dirname(gate), "qemu-system-gated")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nread x < {gate}\necho 'wrapper: refusing to run' >&2\nexit 3\n")
    done = {}

    def start():
        done["reply"] = y.request("POST", "/v1/vms/e2e-dies/actions/start", timeout=120)

    t = threading.Thread(target=start)
    t.start()
    wait_for(lambda: qemu_pids_for(state_dir), 20, what="the held wrapper")
    open_gate(gate)
    t.join(60)
    st, r = done["reply"]
    assert st == 500 and "refusing to run" in r["error"]["message"], r
    v = y.vm("e2e-dies")
    assert v["state"] == "stopped" and v["last_error"], v
    assert qemu_pids_for(state_dir) == []
    y.check_invariants(settled=True)
    y.stop()


def test_yund_stopped_mid_start_exits_clean_and_the_next_run_settles(state_dir):
    """SIGTERM while a start waits for its QEMU: yund exits 0 with no leak
    (the launch is abandoned, not answered), the row stays "starting", and
    the next yund adopts the QEMU once it runs and finishes the start."""
    y, gate = gated_yund(state_dir)
    y.yun("vm", "create", "e2e-term", "--image", "tiny", "--memory", "96M")
    p = subprocess.Popen([YUN, "--socket", y.sock, "vm", "start", "e2e-term"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    held = wait_for(lambda: qemu_pids_for(state_dir), 20, what="the held qemu")
    assert y.stop() == 0  # no sanitizer report, exit 0
    p.wait()
    assert pid_alive(held[0])
    y.start()
    assert y.vm("e2e-term")["state"] == "starting"
    open_gate(gate)
    v = wait_for(lambda: (lambda v: v if v["state"] == "running" else None)(y.vm("e2e-term")),
                 60, what="the adopted start to finish")
    seen = []

    def one_qemu():
        seen[:] = qemu_pids_for(state_dir)
        return seen == [v["pid"]]
    try:
        wait_for(one_qemu, 10, what="one qemu")
    except AssertionError:
        raise AssertionError(f"qemus {seen}, the row's pid {v['pid']}; events "
                             f"{[(e['action'], e['result'], e['reason']) for e in y.events('e2e-term')]}")
    y.check_invariants()
    y.yun("vm", "stop", "--force", "e2e-term")
    wait_for(lambda: y.vm("e2e-term")["state"] == "stopped", 30, what="stopped")
    y.check_invariants(settled=True)
    y.stop()
