"""A VM's whole life on a remote host, through the controller: create on
h2, start (the QEMU runs in h2's namespace, under h2's agent), its console
log read through the controller, stop, start again, delete; the invariants
on every host after each step, and the events name the host."""
import json
import os

import pytest

from .harness import MARKER, wait_for

pytestmark = pytest.mark.usefixtures("tiny")


def test_vm_lifecycle_on_a_remote_host(cl):
    ag = cl.agents["h2"]
    cl.yun("vm", "create", "c-life", "--image", "tiny", "--memory", "96M", "--host", "h2")
    v = cl.vm("c-life")
    assert cl.vm_host(v) == "h2" and v["state"] == "stopped", v
    assert v["id"] in ag.vm_dirs()
    assert all(v["id"] not in a.vm_dirs() for n, a in cl.agents.items() if n != "h2")
    cl.check_invariants()

    cl.yun("vm", "start", "c-life")
    v = cl.wait_vm("c-life", "running")
    assert ag.qemus().get(v["pid"]) == v["id"], (v, ag.qemus())
    assert os.readlink(f"/proc/{v['pid']}/ns/net") == os.readlink(f"/proc/{ag.proc.pid}/ns/net")
    cl.wait_marker("c-life")
    cl.check_invariants()

    cl.yun("vm", "stop", "c-life")
    v = cl.wait_vm("c-life", "stopped", 30)
    wait_for(lambda: not ag.qemus(), 15, what="the QEMU on h2 to be gone")
    cl.check_invariants(settled=True)

    # again: a second start on the same host, the log survives it
    cl.yun("vm", "start", "c-life")
    cl.wait_vm("c-life", "running")
    cl.wait_marker("c-life")
    assert cl.console_log("c-life").count(MARKER) >= 1

    cl.yun("vm", "delete", "--force", "c-life")
    wait_for(lambda: cl.api("GET", "/v1/vms/c-life")[0] == 404, 30, what="the row to go")
    wait_for(lambda: not ag.qemus() and v["id"] not in ag.vm_dirs(), 15,
             what="h2 to have nothing of c-life")
    cl.check_invariants(settled=True)
    ev = cl.events("c-life")
    starts = [e for e in ev if e.get("action") == "start"]
    assert starts and any("h2" in json.dumps(e) for e in starts), starts
