"""Volumes on an agent host (docs/cluster.md, "Images and volumes across
hosts"): every test host has a state directory of its own, not the
controller's, so a volume made on h2 must live in h2's pool (its path under
h2's state directory, which h2's agent accepts) and be hot-plugged into a
VM running there; deleting it removes h2's file."""
import os

import pytest

from .harness import wait_for

pytestmark = pytest.mark.usefixtures("tiny")


def test_volume_on_an_agent_host_in_its_own_pool(cl):
    h2 = cl.agents["h2"].state_dir
    assert not h2.startswith(cl.controllers[0].state_dir + "/")
    st, v = cl.api("POST", "/v1/volumes", {"name": "c-vol2", "size": 16 << 20, "host": "h2"})
    assert st == 201, (st, v)
    path = v["path"]
    assert path == os.path.join(h2, "pools", "default", "c-vol2.qcow2"), v
    assert os.path.isfile(path), path
    cl.yun("vm", "create", "c-volvm", "--image", "tiny", "--memory", "128M", "--host", "h2")
    cl.yun("vm", "start", "c-volvm")
    cl.wait_vm("c-volvm", "running")
    cl.wait_marker("c-volvm")
    cl.yun("volume", "attach", "c-vol2", "c-volvm")
    vm = cl.vm("c-volvm")
    got = cl.get("/v1/volumes/c-vol2")
    assert got["state"] == "attached" and got["attached_to"] == vm["id"], got
    # a restart opens it from the argv, on h2
    cl.yun("vm", "stop", "c-volvm", "--force")
    cl.wait_vm("c-volvm", "stopped")
    cl.yun("vm", "start", "c-volvm")
    cl.wait_vm("c-volvm", "running")
    pid = cl.vm("c-volvm")["pid"]
    cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert any(b"node-name=vol-" in a for a in cmd), cmd
    cl.yun("vm", "stop", "c-volvm", "--force")
    cl.wait_vm("c-volvm", "stopped")
    cl.yun("volume", "detach", "c-vol2")
    cl.yun("volume", "delete", "c-vol2")
    wait_for(lambda: not os.path.exists(path), 10, interval=0.1, what=f"{path} to go")
    cl.yun("vm", "delete", "c-volvm")
    cl.check_invariants(settled=True)
