"""kill -9 of an agent, and its restart: while it is dead its running VMs
keep running; the restarted agent re-attaches to them from its own record
(no second QEMU); a kill -9 in the middle of a start (a QEMU wrapper that
sleeps first) ends, after the restart and reconcile, with the VM running
exactly once or stopped with nothing left, and a start afterwards runs it
once. The invariants hold on every host. An agent's restart gets a reconcile
pass of its own host only."""
import os
import shutil
import tempfile

import pytest

from . import harness
from .harness import pid_alive, wait_for

pytestmark = pytest.mark.usefixtures("tiny")


def _slow_qemu():
    # outside the (private) state directories: the wrapper runs as the VM's uid
    d = tempfile.mkdtemp(prefix="yc-slow-", dir="/tmp")
    os.chmod(d, 0o755)
    path = os.path.join(d, "slow-qemu")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nsleep 2\nexec qemu-system-x86_64 \"$@\"\n")
    os.chmod(path, 0o755)
    return d, path


def _wrapper_pids(path):
    return harness.common._pids_where(lambda argv: path.encode() in argv[:2])


def test_agent_kill9_keeps_vms_and_reattaches(cl):
    ag = cl.agents["h1"]
    cl.yun("vm", "create", "c-k1", "--image", "tiny", "--memory", "96M", "--host", "h1", "--start")
    v = cl.wait_vm("c-k1", "running")
    ag.kill9()
    assert pid_alive(v["pid"])
    ag.start()
    cl.settle(30)
    v2 = cl.vm("c-k1")
    assert v2["state"] == "running" and v2["pid"] == v["pid"], (v, v2)
    assert list(ag.qemus()) == [v["pid"]]


def test_agent_kill9_mid_start_then_restart(cl):
    ag = cl.agents["h1"]
    d, slow = _slow_qemu()
    try:
        ag.stop_checked()
        ag.start("-o", f"qemu={slow}")
        cl.yun("vm", "create", "c-mid", "--image", "tiny", "--memory", "96M", "--host", "h1")
        p = cl.yun_popen("vm", "start", "c-mid")
        wait_for(lambda: _wrapper_pids(slow), 20, interval=0.02, what="the slow QEMU wrapper")
        ag.kill9()
        p.wait(timeout=120)
        ag.start()  # the plain QEMU again
        vid = cl.vm("c-mid")["id"]
        # the wrapper goes on to exec its QEMU with nobody watching: after
        # reconcile it is the row's QEMU or it is gone, never a second one
        wait_for(lambda: not _wrapper_pids(slow), 10, what="the wrapper to exec or exit")
        vms = cl.settle(60)
        v = next(x for x in vms if x["name"] == "c-mid")
        running = [pid for pid, u in ag.qemus().items() if u == vid]
        assert v["state"] in ("running", "stopped"), v
        assert running == ([v["pid"]] if v["state"] == "running" else []), (v, running)
        if v["state"] == "stopped":
            cl.yun("vm", "start", "c-mid")
        v = cl.wait_vm("c-mid", "running")
        assert [pid for pid, u in ag.qemus().items() if u == vid] == [v["pid"]]
        cl.wait_marker("c-mid")
        cl.check_invariants()
    finally:
        shutil.rmtree(d, ignore_errors=True)
        if not ag.running():
            ag.start()


def _reconciles(cl, host, after):
    return [e for e in cl.events(host, after) if e.get("action") == "reconcile"]


def test_agent_restart_reconciles_its_host_only(cl):
    """An agent's restart ("host.reconcile", and its re-join) gets a reconcile
    pass of its own host: the pass asks about that host's VMs only (its event
    counts them), and no other host gets a pass of its own."""
    for name, host in (("c-o1", "h1"), ("c-o2", "h1"), ("c-o3", "h2")):
        cl.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--host", host)
    mark = {h: max([e["id"] for e in cl.events(h)], default=0) for h in cl.agents}
    ag = cl.agents["h1"]
    ag.stop_checked()
    ag.start()
    cl.wait_event(lambda e: e.get("action") == "reconcile", obj="h1", after=mark["h1"],
                  what="h1's own reconcile pass")
    cl.settle(30)
    passes = _reconciles(cl, "h1", mark["h1"])
    assert passes and all("2 vms asked" in e["reason"] for e in passes), passes
    for h in cl.agents:
        if h != "h1":
            assert not _reconciles(cl, h, mark[h]), (h, _reconciles(cl, h, mark[h]))
