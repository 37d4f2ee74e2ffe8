"""The live serial console of a VM on a remote host, through the
controller: the controller's GET /v1/vms/NAME/console upgrade opens an
upgraded connection to h2's agent (GET /agent/v1/console/{vm}, the host's
credential) and splices the two. Output and input both ways, two clients at
once, detach and reconnect, the CLI over --url, and the refusals (unknown
VM 404, stopped VM 409, no token 401, a bad upgrade 400; the agent's route
without the credential 401)."""

import pytest

from . import netns
from .harness import AGENT_PORT, CTL_PORT, MARKER, common

console_upgrade, read_until = common.console_upgrade, common.read_until

pytestmark = pytest.mark.usefixtures("tiny")


def _upgrade(ns, addr, port, path, headers):
    return console_upgrade(netns.connect_in(ns, addr, port, 30), f"{addr}:{port}", path, headers)


def console(cl, name, token=True, upgrade="yun-console"):
    c = cl.leader()
    h = {"Connection": "Upgrade", "Upgrade": upgrade}
    if token:
        h["Authorization"] = f"Bearer {cl.api_token}"
    return _upgrade(c.ns, c.addr, CTL_PORT, f"/v1/vms/{name}/console", h)


def test_console_of_a_vm_on_h2_through_the_controller(cl):
    cl.yun("vm", "create", "c-con", "--image", "tiny", "--memory", "96M", "--host", "h2", "--start")
    v = cl.wait_vm("c-con", "running")
    assert cl.vm_host(v) == "h2", v
    cl.wait_marker("c-con")

    a, pre_a = console(cl, "c-con")
    b, pre_b = console(cl, "c-con")
    a.sendall(b"\necho h2-$((6*7))-ok\n")
    read_until(a, b"h2-42-ok", pre_a)
    read_until(b, b"h2-42-ok", pre_b)
    a.close()
    b.sendall(b"echo b-$((2+3))\n")
    read_until(b, b"b-5")
    b.close()

    # the CLI, over TCP with the token, through the controller
    p = cl.yun("vm", "console", "c-con", input="\necho cli-$((7*6))-ok\n", timeout=60)
    assert "cli-42-ok" in p.stdout, p.stdout[-2000:]

    # reconnect
    c, pre = console(cl, "c-con")
    c.sendall(b"echo again-$((3*3))\n")
    read_until(c, b"again-9", pre)

    # refusals change nothing
    st, raw = console(cl, "c-con", token=False)
    assert st == 401, raw
    st, raw = console(cl, "c-con", upgrade="websocket")
    assert st == 400, raw
    st, raw = console(cl, "c-nope")
    assert st == 404, raw
    h2 = cl.agents["h2"]
    ctl = cl.leader()
    st, raw = _upgrade(ctl.ns, h2.addr, AGENT_PORT, f"/agent/v1/console/{v['id']}",
                       {"Connection": "Upgrade", "Upgrade": "yun-console"})
    assert st == 401, raw

    # the VM stops: the console ends, and a new one is 409
    cl.yun("vm", "stop", "--force", "c-con")
    cl.wait_vm("c-con", "stopped", 30)
    c.settimeout(30)
    while c.recv(65536):
        pass
    c.close()
    st, raw = console(cl, "c-con")
    assert st == 409, raw
    assert MARKER in cl.console_log("c-con")
    cl.yun("vm", "delete", "c-con")


def test_console_while_its_host_is_down_is_503(cl):
    cl.yun("vm", "create", "c-con2", "--image", "tiny", "--memory", "96M", "--host", "h2",
           "--start")
    cl.wait_vm("c-con2", "running")
    cl.wait_marker("c-con2")
    cl.fabric.cut("h2")
    try:
        cl.wait_host("h2", "down", cl.dead_after_ms / 1000 + 10)
        st, raw = console(cl, "c-con2")
        assert st == 503 and b"h2" in raw, raw
    finally:
        cl.fabric.restore("h2")
    cl.wait_host("h2", "up", 20)
    cl.wait_vm("c-con2", "running", 30)
    c, pre = console(cl, "c-con2")
    c.sendall(b"\necho back-$((4*4))\n")
    read_until(c, b"back-16", pre)
    c.close()
    cl.yun("vm", "delete", "--force", "c-con2")
