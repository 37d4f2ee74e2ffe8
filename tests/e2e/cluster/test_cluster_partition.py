"""An agent's link cut (`ip link set down` on its veth): its lease lapses on
the database clock and the host is `down`, its VMs `unknown` (not restarted
elsewhere), while the QEMU itself runs on. The link restored: the host is
`up` again and reconciled: the VM is `running` with the same QEMU, nothing
runs twice, and the other hosts never noticed."""
import time

import pytest

from .harness import pid_alive

pytestmark = pytest.mark.usefixtures("tiny")


def test_link_cut_host_down_vms_unknown_then_reconciled(cl):
    cl.yun("vm", "create", "c-part", "--image", "tiny", "--memory", "96M", "--host", "h2",
           "--start")
    cl.yun("vm", "create", "c-stay", "--image", "tiny", "--memory", "96M", "--host", "h1")
    v = cl.wait_vm("c-part", "running")
    cut_at = time.monotonic()
    cl.fabric.cut("h2")
    cl.wait_host("h2", "down", cl.dead_after_ms / 1000 + 10)
    # not before its lease could lapse
    assert time.monotonic() - cut_at >= (cl.dead_after_ms - cl.heartbeat_ms) / 1000 * 0.9
    u = cl.wait_vm("c-part", "unknown", 15)
    assert cl.vm_host(u) == "h2"
    assert pid_alive(v["pid"])  # the VM itself never stopped
    assert cl.host_state("h1") == "up" and cl.host_state("h3") == "up"
    assert cl.vm("c-stay")["state"] == "stopped"
    # an operation on a VM of a down host is refused, and changes nothing
    p = cl.yun("vm", "stop", "c-part", check=False)
    assert p.returncode != 0, p
    cl.fabric.restore("h2")
    cl.wait_host("h2", "up", 20)
    r = cl.wait_vm("c-part", "running", 30)
    assert r["pid"] == v["pid"], (v, r)
    assert list(cl.agents["h2"].qemus()) == [v["pid"]]
    cl.settle(30)
    ev = cl.events()
    assert any("h2" in str(e) and "down" in str(e) for e in ev), ev[-10:]
