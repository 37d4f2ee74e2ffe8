"""The agent's own record of its QEMUs (docs/cluster.md, "The agent's
record"), with no controller to help: three VMs run on h1; the controller
is killed (-9), then h1's agent; one QEMU is killed while both are down;
the agent restarts alone, finds the two left in STATE/agent-vms.json and
watches them again; a second QEMU is killed while the controller is still
down (the agent sees it go: its record drops it); the controller comes back.
Each dead VM's row ends stopped or crashed with its exit recorded once, the
VM left alone keeps running with its one QEMU, and the invariants hold."""
import json
import os
import signal

import pytest

from .harness import pid_alive, wait_for

pytestmark = pytest.mark.usefixtures("tiny")

NAMES = ("c-rec-down", "c-rec-away", "c-rec-keep")


def _record(ag):
    """{vm id: pid} of h1's record file."""
    path = os.path.join(ag.state_dir, "agent-vms.json")
    try:
        with open(path) as f:
            return {e["vm"]: e["pid"] for e in json.load(f)["vms"]}
    except (OSError, ValueError):
        return None


def _kill(pid):
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10, what=f"qemu pid {pid} to be gone")


def test_agent_record_without_the_controller(cl):
    ctl = cl.controllers[0]
    assert len(cl.controllers) == 1
    try:
        _without_the_controller(cl, ctl)
    finally:
        if not ctl.running():  # the fixture puts the rest back
            ctl.start()


def _without_the_controller(cl, ctl):
    ag = cl.agents["h1"]
    for n in NAMES:
        cl.yun("vm", "create", n, "--image", "tiny", "--memory", "96M", "--host", "h1", "--start")
    vms = {n: cl.wait_vm(n, "running") for n in NAMES}
    ids = {n: v["id"] for n, v in vms.items()}
    # the record names each QEMU as the rows do, with a permission for root only
    wait_for(lambda: _record(ag) == {v["id"]: v["pid"] for v in vms.values()}, 10,
             what="h1's record to hold the three QEMUs")
    assert os.stat(os.path.join(ag.state_dir, "agent-vms.json")).st_mode & 0o777 == 0o600

    ctl.kill9()
    ag.kill9()
    _kill(vms["c-rec-down"]["pid"])  # dies with nobody watching
    ag.start(wait_up=False)          # no controller to join
    wait_for(lambda: "2 of 3 QEMUs attached again" in ag.logtext(tail=10**6), 30,
             what="the agent to attach the two live QEMUs from its record")
    assert _record(ag) == {ids["c-rec-away"]: vms["c-rec-away"]["pid"],
                           ids["c-rec-keep"]: vms["c-rec-keep"]["pid"]}

    # the agent watches it: its exit is seen while the controller is away
    _kill(vms["c-rec-away"]["pid"])
    wait_for(lambda: _record(ag) == {ids["c-rec-keep"]: vms["c-rec-keep"]["pid"]}, 15,
             what="the agent to see c-rec-away's QEMU exit")
    assert ag.running()

    ctl.start()
    cl.wait_leader()
    cl.wait_host("h1", "up", 40, daemon=ag)
    for n in ("c-rec-down", "c-rec-away"):
        v = cl.wait_vm(n, ("stopped", "crashed"), 60)
        assert not v.get("pid"), v
    vms_now = cl.settle(60)
    keep = next(v for v in vms_now if v["name"] == "c-rec-keep")
    assert keep["state"] == "running" and keep["pid"] == vms["c-rec-keep"]["pid"], keep
    assert sorted(ag.qemus().items()) == [(keep["pid"], keep["id"])], ag.qemus()
    for n in ("c-rec-down", "c-rec-away"):
        exits = [e for e in cl.events(n) if e.get("action") == "exit"]
        assert len(exits) == 1, (n, exits)
    down = cl.vm("c-rec-down")
    assert "while yund was down" in (down.get("last_error") or ""), down
    # a repeated reconcile pass finds c-rec-keep watched, and changes nothing
    cl.settle(30)
    assert [p for p, u in ag.qemus().items() if u == keep["id"]] == [keep["pid"]]
    assert "attached again from the agent's record" in ag.logtext(tail=10**6)
