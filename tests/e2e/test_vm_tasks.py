"""Every VM operation is a task, one at a time per VM: a pause waiting for a
frozen QEMU holds its request (the loop serves others meanwhile) and its
task, a stop asked for then is refused with 409 naming that task, and once
QEMU answers the pause completes."""
import os
import signal
import threading
import time

from conftest import wait_for


def tasks_of(y, name):
    st, r = y.request("GET", f"/v1/tasks?object={name}&limit=100")
    assert st == 200, r
    return r["tasks"]


def test_vm_operations_are_tasks_one_at_a_time(yund):
    y = yund
    name = "e2e-vmtask"
    y.ensure_tiny()
    st, v = y.request("POST", "/v1/vms", {"name": name, "image": "tiny", "memory": "96M",
                                          "start": True})
    assert st == 201 and v["state"] == "running", v
    kinds = {(t["kind"], t["state"]) for t in tasks_of(y, name)}
    assert ("vm.create", "succeeded") in kinds and ("vm.start", "succeeded") in kinds, kinds

    pid = v["pid"]
    os.kill(pid, signal.SIGSTOP)
    result = {}
    t = threading.Thread(target=lambda: result.update(
        pause=y.request("POST", f"/v1/vms/{name}/actions/pause")))
    try:
        t.start()
        running = wait_for(lambda: [k for k in tasks_of(y, name)
                                    if k["kind"] == "vm.pause" and k["state"] == "running"],
                           10, what="the pause task to run")
        # the loop is free: a show answers at once, from the cache
        t0 = time.monotonic()
        assert y.vm(name)["qmp_status"] == "running"
        assert time.monotonic() - t0 < 1.0
        st, r = y.request("POST", f"/v1/vms/{name}/actions/stop")
        assert st == 409 and r["error"]["code"] == "conflict", r
        assert r["error"]["task"] == running[0]["id"], r
        assert "vm.pause" in r["error"]["message"], r
    finally:
        os.kill(pid, signal.SIGCONT)
        t.join(30)
    st, v = result["pause"]
    assert st == 200 and v["state"] == "paused", result
    assert y.vm(name)["qmp_status"] == "paused"
    st, v = y.request("POST", f"/v1/vms/{name}/actions/resume")
    assert st == 200 and v["state"] == "running", v
    st, _ = y.request("DELETE", f"/v1/vms/{name}?force=true")
    assert st == 200
    done = {k["kind"] for k in tasks_of(y, name) if k["state"] == "succeeded"}
    assert {"vm.pause", "vm.resume", "vm.delete"} <= done, done
    y.check_invariants(settled=True)
