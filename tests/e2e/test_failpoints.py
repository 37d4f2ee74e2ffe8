"""Crash safety, exactly: every VM fault point (vm_create.*, vm_start.*,
vm_stop.*, vm_delete.*, as `yund --failpoints` lists them) is walked. yund
runs with YUN_FAILPOINT=<point>, the operation is driven until yund dies
there (by SIGKILL, as kill -9 at that instant would), yund is restarted
without it, reconcile settles the VM, the invariants hold with nothing in
flight, and a follow-up operation on the same VM works."""
import os
import signal
import subprocess

import pytest

from conftest import YUND, Yund, wait_for

PREFIXES = ("vm_create.", "vm_start.", "vm_stop.", "vm_delete.")


def _points():
    try:
        out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError:
        return []
    return [p for p in out.split() if p.startswith(PREFIXES)]


POINTS = _points()
SPEC = {"name": "e2e-fp", "image": "tiny", "memory": "96M"}


def start_with(state_dir, point):
    os.environ["YUN_FAILPOINT"] = point
    try:
        return Yund(state_dir).start()
    finally:
        del os.environ["YUN_FAILPOINT"]


def drive_until_death(y, method, path, body=None):
    """The request never gets its answer: yund dies at the point."""
    try:
        st, r = y.request(method, path, body, timeout=120)
    except OSError:
        pass  # connection reset or closed: yund died mid-request
    else:
        raise AssertionError(f"yund answered {st} {r}: the fault point was not reached")
    y.proc.wait(timeout=60)
    assert y.proc.returncode == -signal.SIGKILL, (y.proc.returncode, y.logtext())


def settled(y, name):
    """The VM's row in a state of rest (reconcile finished what it does),
    or None once it is gone."""
    def rest():
        st, v = y.request("GET", f"/v1/vms/{name}")
        if st == 404:
            return "gone"
        assert st == 200, v
        return v if v["state"] not in ("creating", "starting", "stopping", "deleting") else None
    r = wait_for(rest, 90, interval=0.2, what=f"vm {name} to settle")
    return None if r == "gone" else r


def prepare(state_dir, running):
    y = Yund(state_dir).start()
    y.ensure_tiny()
    st, v = y.request("POST", "/v1/vms", dict(SPEC, start=running))
    assert st == 201, v
    y.stop()


@pytest.mark.skipif(not POINTS, reason="yund built without fault points (make SAN=1)")
@pytest.mark.parametrize("point", POINTS)
def test_failpoint(state_dir, point):
    op = point.split(".")[0]
    name = SPEC["name"]
    if op == "vm_create":
        y = Yund(state_dir).start()
        y.ensure_tiny()
        y.stop()
        y = start_with(state_dir, point)
        drive_until_death(y, "POST", "/v1/vms", SPEC)
    elif op == "vm_start":
        prepare(state_dir, running=False)
        y = start_with(state_dir, point)
        drive_until_death(y, "POST", f"/v1/vms/{name}/actions/start")
    elif op == "vm_stop":
        prepare(state_dir, running=True)
        y = start_with(state_dir, point)
        action = "force-stop" if "force" in point else "stop"
        if point == "vm_stop.before_quit":
            # reached when the guest does not power off in time: a short
            # grace, and a guest that ignores the button (paused)
            y.stop()
            os.environ["YUN_FAILPOINT"] = point
            try:
                y = Yund(state_dir, ["--set", "stop_timeout=1"]).start()
            finally:
                del os.environ["YUN_FAILPOINT"]
            st, _ = y.request("POST", f"/v1/vms/{name}/actions/pause")
            assert st == 200
            st, _ = y.request("POST", f"/v1/vms/{name}/actions/stop")
            assert st == 200
            y.proc.wait(timeout=60)
            assert y.proc.returncode == -signal.SIGKILL, (y.proc.returncode, y.logtext())
        else:
            drive_until_death(y, "POST", f"/v1/vms/{name}/actions/{action}")
    else:
        prepare(state_dir, running=True)
        y = start_with(state_dir, point)
        drive_until_death(y, "DELETE", f"/v1/vms/{name}?force=true")

    y = Yund(state_dir).start()
    v = settled(y, name)
    y.check_invariants(settled=True)

    # the follow-up: the VM (or its name) is usable again
    if v is None:
        st, v = y.request("POST", "/v1/vms", SPEC)
        assert st == 201, v
    if v["state"] in ("stopped", "crashed"):
        st, v = y.request("POST", f"/v1/vms/{name}/actions/start")
        assert st == 200, v
    assert y.vm(name)["state"] in ("running", "paused")
    st, v = y.request("DELETE", f"/v1/vms/{name}?force=true")
    assert st == 200, v
    y.check_invariants(settled=True)
    y.stop()
