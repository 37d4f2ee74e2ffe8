"""Crash safety of snapshot work, point by point: for every snapshot fault
point the sanitizer build has (`yund --failpoints`), yund is started with
YUN_FAILPOINT naming it, the operation is driven until yund kills itself
there, yund is started again, and once the reconcile pass has settled what
was in flight: the VM's chain opens (qemu-img info --backing-chain), every
snapshot row's file exists and no other layer file is left, no snapshot is
in a transient state, no snapshot task is left unfinished, the data written
before is intact, the VM starts, and the operation can be run again."""
import json
import os
import sqlite3
import subprocess

import tempfile

import pytest

from conftest import YUND, Yund, _cleanup, wait_for

# How each point is reached: the VM's state while the operation runs. A
# point listed under AGENT_ONLY needs a guest agent in the guest (the tiny
# image has none); test_guest.py's Debian guest goes through it.
SCENARIOS = {
    "snapshot_create.after_row": ["stopped", "running"],
    "snapshot_create.after_layer": ["stopped"],
    "snapshot_create.after_live_layer": ["running"],
    "snapshot_create.after_switch": ["running"],
    "snapshot_create.before_vm_row": ["stopped", "running"],
    "snapshot_create.before_ready": ["stopped", "running"],
    "snapshot_revert.after_layer": ["stopped"],
    "snapshot_revert.after_vm_row": ["stopped"],
    "snapshot_delete.after_row": ["stopped", "running"],
    "snapshot_delete.after_rebase": ["stopped"],
    "snapshot_delete.before_remove": ["stopped", "running"],
    "snapshot_delete.after_file_removed": ["stopped", "running"],
    "snapshot_delete.after_stream": ["running"],
    "snapshot_delete.after_streamed": ["running"],
}
AGENT_ONLY = {"snapshot_create.after_freeze", "snapshot_create.after_thaw"}
# Reached only when a merge is run again and finds the stream already done
# (a restart after snapshot_delete.after_stream): walked by
# test_stream_found_done_on_restart below.
ON_RESTART = {"snapshot_delete.after_reparent"}
# Reached only by the settling of rows after a restart: walked by
# test_rollback_interrupted_on_restart below.
ON_SETTLE = {"snapshot_reconcile.after_layer_removed"}

VM = "e2e-sc"


def failpoints():
    out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True,
                         check=True).stdout.split()
    return sorted(p for p in out if p.startswith("snapshot_"))


def start_dying_at(y, point):
    """Starts yund with a fault point it may reach before /healthz answers."""
    os.environ["YUN_FAILPOINT"] = point
    try:
        y.log = open(os.path.join(y.state_dir, "test-yund.log"), "ab")
        y.proc = subprocess.Popen([YUND, "-s", y.state_dir, "--set", "stop_timeout=15",
                                   "--set", "reconcile_interval=2"], stdout=y.log,
                                  stderr=y.log)
    finally:
        del os.environ["YUN_FAILPOINT"]


def test_every_point_is_walked():
    points = set(failpoints())
    if not points:
        pytest.skip("this build has no fault points (build with SAN=1)")
    assert points == set(SCENARIOS) | AGENT_ONLY | ON_RESTART | ON_SETTLE, points


def disk(y):
    v = y.vm(VM)
    return os.path.join(y.state_dir, "vms", v["id"], v["disk"])


def qio(path, cmd):
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, path], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def pattern_is(path, offset, length, byte):
    out = subprocess.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c",
                          f"read -P {byte:#x} {offset} {length}", path],
                         capture_output=True, text=True).stdout
    return "Pattern verification failed" not in out and "read " in out


def snaps(y):
    st, r = y.request("GET", f"/v1/vms/{VM}/snapshots")
    assert st == 200, r
    return r["snapshots"]


def unfinished_tasks(y):
    db = sqlite3.connect(os.path.join(y.state_dir, "yun.db"))
    try:
        return db.execute("SELECT kind, state FROM tasks WHERE kind LIKE 'snapshot.%' AND "
                          "state IN ('queued','running')").fetchall()
    finally:
        db.close()


def settled(y):
    return all(s["state"] == "ready" for s in snaps(y)) and not unfinished_tasks(y)


def check_disks(y):
    """The chain opens, every row's file is there and nothing else is."""
    v = y.vm(VM)
    d = os.path.join(y.state_dir, "vms", v["id"])
    chain = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", "--output=json", disk(y)],
        capture_output=True, text=True, check=True).stdout)
    assert chain[-1]["filename"].endswith("/images/tiny/disk.qcow2"), chain
    files = {s["name"]: None for s in snaps(y)}
    db = sqlite3.connect(os.path.join(y.state_dir, "yun.db"))
    rows = db.execute("SELECT file FROM snapshots WHERE vm_id=?", (v["id"],)).fetchall()
    db.close()
    assert len(rows) == len(files)
    for (f,) in rows:
        assert os.path.exists(os.path.join(d, f)), f
    layers = {f for f in os.listdir(d) if f.startswith("disk") and f.endswith(".qcow2")}
    assert layers == {f for (f,) in rows} | {v["disk"]}, (layers, rows, v["disk"])


def start_with(y, point):
    os.environ["YUN_FAILPOINT"] = point
    try:
        y.start()
    finally:
        del os.environ["YUN_FAILPOINT"]


def drive_until_dead(y, method, path, body=None):
    try:
        y.request(method, path, body, timeout=60)
    except OSError:
        pass  # yund died with the request in hand
    wait_for(lambda: y.proc.poll() is not None, 60, what="yund to die at the fault point")
    assert y.proc.returncode == -9, y.proc.returncode


def set_state(y, want):
    cur = y.vm(VM)["state"]
    if want == "running" and cur != "running":
        y.yun("vm", "start", VM)
    elif want == "stopped" and cur != "stopped":
        y.yun("vm", "stop", VM, "--force")


@pytest.fixture(scope="module")
def crash_dir():
    d = tempfile.mkdtemp(prefix="yun-e2e-", dir="/tmp")
    yield d
    if not os.environ.get("YUN_KEEP"):
        _cleanup(d)


CASES = [(p, m) for p in sorted(SCENARIOS) for m in SCENARIOS[p]]


@pytest.mark.parametrize("point,mode", CASES, ids=[f"{p}-{m}" for p, m in CASES])
def test_crash_at(crash_dir, point, mode):
    if not failpoints():
        pytest.skip("this build has no fault points (build with SAN=1)")
    y = Yund(crash_dir)
    # a fresh VM with data in its disk and one snapshot "a" under it
    y.start()
    y.ensure_tiny()
    if any(v["name"] == VM for v in y.request("GET", "/v1/vms")[1]["vms"]):
        y.yun("vm", "delete", VM, "--force")
    y.yun("vm", "create", VM, "--image", "tiny", "--memory", "96M")
    qio(disk(y), "write -P 0x5a 0 1M")
    y.yun("snapshot", "create", VM, "a")
    qio(disk(y), "write -P 0x6b 1M 1M")
    set_state(y, mode)
    y.stop()

    start_with(y, point)
    op = point.split(".")[0]
    if op == "snapshot_create":
        drive_until_dead(y, "POST", f"/v1/vms/{VM}/snapshots", {"name": "x"})
    elif op == "snapshot_revert":
        drive_until_dead(y, "POST", f"/v1/vms/{VM}/snapshots/a/actions/revert")
    else:
        drive_until_dead(y, "DELETE", f"/v1/vms/{VM}/snapshots/a")

    y.start()
    wait_for(lambda: settled(y), 60, interval=0.2, what="the snapshot work to settle")
    wait_for(lambda: y.vm(VM)["state"] in ("running", "stopped"), 60, what="the vm to settle")
    y.check_invariants()
    check_disks(y)
    names = [s["name"] for s in snaps(y)]
    # what was written before the operation is there: 0x5a under "a" (or
    # merged out of it), and 0x6b unless a revert to "a" went through
    set_state(y, "stopped")
    assert pattern_is(disk(y), 0, 1 << 20, 0x5a)
    reverted = op == "snapshot_revert" and pattern_is(disk(y), 1 << 20, 1 << 20, 0x00)
    assert reverted or pattern_is(disk(y), 1 << 20, 1 << 20, 0x6b)
    # the VM starts
    y.yun("vm", "start", VM)
    assert y.vm(VM)["state"] == "running"
    set_state(y, mode)
    # and the operation can be run again
    if op == "snapshot_create":
        y.yun("snapshot", "create", VM, "again")
        assert "again" in [s["name"] for s in snaps(y)]
    elif op == "snapshot_revert":
        set_state(y, "stopped")
        y.yun("snapshot", "revert", VM, "a")
        assert pattern_is(disk(y), 1 << 20, 1 << 20, 0x00)
    else:
        if "a" not in names:
            y.yun("snapshot", "create", VM, "a")
        y.yun("snapshot", "delete", VM, "a")
        assert "a" not in [s["name"] for s in snaps(y)]
    wait_for(lambda: settled(y), 60, interval=0.2, what="the repeated operation to settle")
    y.check_invariants()
    check_disks(y)
    y.yun("vm", "delete", VM, "--force")
    y.stop()


def test_stream_found_done_on_restart(crash_dir):
    """Killed right after QEMU took the stream; on restart the merge runs
    again, finds the stream done (or waits for it) and finishes; a second
    restart killed where it re-parents the chain's child settles too."""
    if "snapshot_delete.after_reparent" not in failpoints():
        pytest.skip("this build has no fault points (build with SAN=1)")
    y = Yund(crash_dir)
    y.start()
    y.ensure_tiny()
    if any(v["name"] == VM for v in y.request("GET", "/v1/vms")[1]["vms"]):
        y.yun("vm", "delete", VM, "--force")
    y.yun("vm", "create", VM, "--image", "tiny", "--memory", "96M")
    qio(disk(y), "write -P 0x5a 0 1M")
    y.yun("snapshot", "create", VM, "a")
    y.yun("vm", "start", VM)
    y.stop()
    start_with(y, "snapshot_delete.after_stream")
    drive_until_dead(y, "DELETE", f"/v1/vms/{VM}/snapshots/a")
    # the stream of a 1 MiB layer is over by the time yund is back
    os.environ["YUN_FAILPOINT"] = "snapshot_delete.after_reparent"
    try:
        y.log = open(os.path.join(crash_dir, "test-yund.log"), "ab")
        y.proc = subprocess.Popen([YUND, "-s", crash_dir, "--set", "stop_timeout=15",
                                   "--set", "reconcile_interval=2"], stdout=y.log,
                                  stderr=y.log)
    finally:
        del os.environ["YUN_FAILPOINT"]
    wait_for(lambda: y.proc.poll() is not None, 60, what="yund to die re-parenting")
    assert y.proc.returncode == -9
    y.start()
    wait_for(lambda: settled(y) and not snaps(y), 60, interval=0.2,
             what="the merge of a to finish")
    y.check_invariants()
    check_disks(y)
    y.yun("vm", "stop", VM, "--force")
    assert pattern_is(disk(y), 0, 1 << 20, 0x5a)
    y.yun("vm", "delete", VM, "--force")
    y.stop()


@pytest.mark.parametrize("mode", ["stopped", "running"])
def test_rollback_interrupted_on_restart(crash_dir, mode):
    """Killed right after a create wrote its row; on restart the settle rolls
    it back and is killed between removing the new layer and the row; the
    next start rolls it back again and the create can be run again."""
    if "snapshot_reconcile.after_layer_removed" not in failpoints():
        pytest.skip("this build has no fault points (build with SAN=1)")
    y = Yund(crash_dir)
    y.start()
    y.ensure_tiny()
    if any(v["name"] == VM for v in y.request("GET", "/v1/vms")[1]["vms"]):
        y.yun("vm", "delete", VM, "--force")
    y.yun("vm", "create", VM, "--image", "tiny", "--memory", "96M")
    qio(disk(y), "write -P 0x5a 0 1M")
    set_state(y, mode)
    y.stop()
    start_with(y, "snapshot_create.after_row")
    drive_until_dead(y, "POST", f"/v1/vms/{VM}/snapshots", {"name": "x"})
    start_dying_at(y, "snapshot_reconcile.after_layer_removed")
    wait_for(lambda: y.proc.poll() is not None, 60, what="yund to die rolling back")
    assert y.proc.returncode == -9
    y.start()
    wait_for(lambda: settled(y) and not snaps(y), 60, interval=0.2,
             what="the roll-back of x to finish")
    y.check_invariants()
    check_disks(y)
    y.yun("snapshot", "create", VM, "x")
    assert [s["name"] for s in snaps(y)] == ["x"]
    set_state(y, "stopped")
    assert pattern_is(disk(y), 0, 1 << 20, 0x5a)
    y.yun("vm", "delete", VM, "--force")
    y.stop()
