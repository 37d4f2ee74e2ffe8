"""The host's balloon policy (agent/agent_balloon.c, sched/balloon_policy.c)
against real QEMU (TCG): with host pressure forced (balloon_host_reserve far
above MemAvailable) an idle tiny guest's balloon inflates, QMP's
query-balloon actual falling, never below its --memory-min; when the guest
then takes memory (yun-hog, typed on its console) the balloon deflates and
the guest does not run out of memory. The decisions are vm.balloon events
with their reasons, and the targets are metrics. A VM with no minimum below
its size is never ballooned."""
import os
import socket

import pytest

from conftest import Yund, console_upgrade, qmp_reply, read_until, wait_for

MIB = 1 << 20


@pytest.fixture
def pressed(state_dir):
    # pressure always (1T of memory wanted available), a round every 500 ms
    y = Yund(state_dir, ["--set", "balloon_interval_ms=500", "--set", "balloon_host_reserve=1T",
                         "--set", "sample_interval=1"]).start()
    yield y
    y.stop()


def actual(y, name):
    r = qmp_reply(y, name, "query-balloon")
    assert "return" in r, r
    return r["return"]["actual"]


def balloon_events(y, name):
    return [e for e in y.events(name) if e["action"] == "balloon"]


def console(y, name):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(y.sock)
    return console_upgrade(s, "yund", f"/v1/vms/{name}/console",
                           {"Connection": "Upgrade", "Upgrade": "yun-console"})


def test_idle_guest_inflates_then_gets_memory_back(pressed):
    y = pressed
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-bal", "--image", "tiny", "--memory", "256M", "--memory-min", "128M",
          "--start")
    y.yun("vm", "create", "e2e-full", "--image", "tiny", "--memory", "128M", "--start")
    y.wait_marker("e2e-bal")
    y.wait_marker("e2e-full")
    pid = y.vm("e2e-bal")["pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert any(b"free-page-reporting=on" in a for a in argv), argv

    # the guest's own figures reach QEMU (the tiny guest loads virtio_balloon)
    def stats():
        r = qmp_reply(y, "e2e-bal", "qom-get", {"path": "/machine/peripheral/balloon0",
                                                "property": "guest-stats"})
        s = r["return"]["stats"]
        return r["return"]["last-update"] > 0 and s["stat-available-memory"] < 256 * MIB
    wait_for(stats, 60, interval=0.5, what="guest-stats from the tiny guest")

    # inflation: actual falls, in steps, down to the minimum and never below
    seen = []

    def at_minimum():
        a = actual(y, "e2e-bal")
        seen.append(a)
        assert a >= 128 * MIB, seen
        return a == 128 * MIB
    wait_for(at_minimum, 120, interval=0.25, what="the idle guest's balloon to inflate to its min")
    assert len(set(seen)) > 2, seen  # in steps, not at once
    ev = balloon_events(y, "e2e-bal")
    assert any("host pressure: reclaim from idle guest" in e["reason"] for e in ev), ev
    assert any("to its minimum" in e["reason"] for e in ev), ev
    low = actual(y, "e2e-bal")

    # the metrics: the target and the actual of the ballooned VM only
    def metric(text, name, vm):
        for line in text.splitlines():
            if line.startswith(f'{name}{{vm="{vm}"'):
                return float(line.rsplit(" ", 1)[1])
        return None

    def metrics():
        text = y.request("GET", "/metrics")[1].decode()
        ok = metric(text, "yun_vm_balloon_target_bytes", "e2e-bal") == 128 * MIB and \
            metric(text, "yun_vm_balloon_actual_bytes", "e2e-bal") == 128 * MIB
        return ok and text
    text = wait_for(metrics, 30, interval=0.5, what="balloon metrics at the minimum")
    assert metric(text, "yun_vm_balloon_target_bytes", "e2e-full") is None

    # the guest needs memory: 112 MiB more, 4 MiB every 250 ms; at its
    # ballooned size it has less than that available
    c, pre = console(y, "e2e-bal")
    try:
        c.sendall(b"\nyun-hog 112 250\n")
        out = read_until(c, b"yun-hog: holding", pre, timeout=180)
    finally:
        c.close()
    assert b"yun-hog: failed" not in out, out
    assert actual(y, "e2e-bal") > low
    ev = balloon_events(y, "e2e-bal")
    assert any("guest needs memory: give back" in e["reason"] for e in ev), ev
    log = y.console_log("e2e-bal")
    assert "Out of memory" not in log and "oom-kill" not in log, log[-3000:]
    assert actual(y, "e2e-bal") >= 128 * MIB

    # the VM with no minimum below its size: never touched
    assert actual(y, "e2e-full") == 128 * MIB
    assert balloon_events(y, "e2e-full") == []
    assert "YUN-TINY-INIT-OK" in log and os.path.exists(f"/proc/{pid}")


def test_bad_balloon_settings_are_refused(state_dir):
    for kv, words in (("balloon_policy=maybe", "not on or off"),
                      ("balloon_interval_ms=10", "100..600000"),
                      ("balloon_step_pct=0", "1..100"),
                      ("balloon_host_reserve=lots", "not a size")):
        y = Yund(state_dir, ["--set", kv])
        with pytest.raises(AssertionError) as e:
            y.start()
        assert "exited with 2" in str(e.value) and words in str(e.value), e.value


def test_live_update_of_the_minimum_gives_memory_back(pressed):
    """`yun vm update --memory-min` on a running VM: a balloon held below the
    new floor is given back at once (no restart: the same QEMU), a floor at
    the memory size ends the ballooning, and a floor above it is refused
    with nothing changed."""
    y = pressed
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-bmin", "--image", "tiny", "--memory", "256M", "--memory-min",
          "96M", "--start")
    y.wait_marker("e2e-bmin")
    pid = y.vm("e2e-bmin")["pid"]
    wait_for(lambda: actual(y, "e2e-bmin") < 160 * MIB, 120, interval=0.25,
             what="the idle guest's balloon to inflate below 160 MiB")

    # above the memory: refused, the row and the balloon as they were
    p = y.yun("vm", "update", "e2e-bmin", "--memory-min", "512M", check=False)
    assert p.returncode != 0 and "above memory" in p.stderr, p.stderr
    assert y.vm("e2e-bmin")["memory_min_mb"] == 96

    y.yun("vm", "update", "e2e-bmin", "--memory-min", "192M")
    assert y.vm("e2e-bmin")["memory_min_mb"] == 192
    wait_for(lambda: actual(y, "e2e-bmin") >= 192 * MIB, 30, interval=0.25,
             what="the balloon given back to the new minimum")
    ev = balloon_events(y, "e2e-bmin")
    assert any("memory_min raised: given back" in e["reason"] for e in ev), ev
    # the policy still works within the new floor, never below it
    for _ in range(8):
        assert actual(y, "e2e-bmin") >= 192 * MIB

    y.yun("vm", "update", "e2e-bmin", "--memory-min", "256M")
    wait_for(lambda: actual(y, "e2e-bmin") == 256 * MIB, 30, interval=0.25,
             what="the whole memory given back")
    ev = balloon_events(y, "e2e-bmin")
    assert any("given back, not ballooned" in e["reason"] for e in ev), ev
    n = len(ev)

    # three more monitor samples (1 s each; a balloon round is 500 ms): no
    # further balloon decision for it, its QEMU the same
    def samples():
        st, r = y.request("GET", "/v1/vms/e2e-bmin/metrics?name=cpu_wait&since=-120")
        assert st == 200, r
        return len(r["points"])
    base = samples()
    wait_for(lambda: samples() >= base + 3, 30, interval=0.5, what="three more samples")
    assert actual(y, "e2e-bmin") == 256 * MIB
    assert y.vm("e2e-bmin")["pid"] == pid and os.path.exists(f"/proc/{pid}")
    upd = [e for e in y.events("e2e-bmin") if e["action"] == "updated"]
    assert any("memory_min 96 MiB -> 192 MiB" in e["reason"] for e in upd), upd
    assert len(balloon_events(y, "e2e-bmin")) == n
