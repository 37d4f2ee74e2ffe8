"""CPU models across hosts (issue 12, docs/cluster.md "CPU models"): each
agent joins with the models its QEMU runs; the cluster baseline is the
newest every up host runs, and a new VM gets it; a VM's own model keeps it
off hosts that lack it at placement and at a move, which is refused before
anything starts (409 with the host's models), a planned move without --to
never picks such a host, and a VM on max never moves."""
import pytest

from .harness import wait_for

pytestmark = pytest.mark.usefixtures("tiny")


def models(cl, name):
    return cl.hosts()[name]["cpu_models"].split(",")


def test_an_older_host_lowers_the_baseline_and_refuses_newer_vms(cl):
    h3 = cl.agents["h3"]
    full = models(cl, "h1")
    assert full == models(cl, "h3"), cl.hosts()  # one machine: one QEMU, one list
    named = [m for m in full if m not in ("max", "host")]
    newest, older = named[0], named[1]
    cl.yun("vm", "create", "cm-a", "--image", "tiny", "--memory", "128M", "--host", "h1")
    assert cl.vm("cm-a")["cpu_model"] == newest
    # h3 offers only older models from now on (the operator's cpu_models)
    h3.stop_checked()
    try:
        h3.start("-o", f"cpu_models={older},qemu64")
        wait_for(lambda: models(cl, "h3") == [older, "qemu64"], 30, interval=0.25,
                 what="h3 joined with its cut list")
        cl.yun("vm", "create", "cm-b", "--image", "tiny", "--memory", "128M", "--host", "h2")
        assert cl.vm("cm-b")["cpu_model"] == older  # the baseline fell with h3
        # cm-a (the newer model) runs on h1; it may not go to h3
        cl.yun("vm", "start", "cm-a")
        cl.wait_vm("cm-a", "running")
        cl.wait_marker("cm-a")
        st, b = cl.api("POST", "/v1/vms/cm-a/migrate", {"to": "h3"})
        assert st == 409, (st, b)
        msg = b["error"]["message"]
        assert "cpu-model" in msg and f"cannot run CPU model {newest}" in msg and older in msg, msg
        assert cl.vm_host(cl.vm("cm-a")) == "h1"
        assert not [p for p, v in h3.qemus().items() if v == cl.vm("cm-a")["id"]]
        # a move by strategy leaves h3 out: h2 is the one host that can take it
        st, b = cl.api("POST", "/v1/vms/cm-a/migrate/plan", {})
        assert st == 200, (st, b)
        assert b["target"]["name"] == "h2", b
        # placement of a new VM with that model: never h3
        st, b = cl.api("POST", "/v1/placement?explain=1",
                       {"image": "tiny", "cpu_model": newest, "host": "h3"})
        assert st == 409 and "cpu-model" in b["error"]["message"], (st, b)
        # max shows the host's own CPU: it never moves
        cl.yun("vm", "create", "cm-c", "--image", "tiny", "--memory", "128M", "--host", "h1",
               "--cpu-model", "max")
        cl.yun("vm", "start", "cm-c")
        cl.wait_vm("cm-c", "running")
        st, b = cl.api("POST", "/v1/vms/cm-c/migrate", {"to": "h2"})
        assert st == 409 and "CPU model max" in b["error"]["message"], (st, b)
    finally:
        h3.stop_checked()
        h3.start()
    wait_for(lambda: models(cl, "h3") == full, 30, interval=0.25, what="h3 back with all models")
    cl.check_invariants()
