"""Attached volumes move with their VM (docs/cluster.md, "Live migration"):
a volume hot-plugged into a running tiny VM on h1 (so it sits after the NIC
on the PCI bus, where a new argv would not put it) is mirrored into an
empty file in h2's pool while the VM moves, its row follows (host, path),
the data written into it before is on h2, and h1's file is gone; and back.
A linked clone is refused; a file already at the target's path makes the
move roll back without touching that file; kill -9 of the controller
before the commit (the target's file made, or the mirror ready) removes the
target's copy, after it the source's."""
import os
import subprocess

import pytest

from .harness import psql, wait_for
from .test_cluster_migrate import (assert_only_on, heartbeats, make_vm, migrate,
                                   move_with_controller_killed, rows)

pytestmark = pytest.mark.usefixtures("tiny")

PATTERN = "0x5a"


def pool(cl, host):
    return os.path.join(cl.agents[host].state_dir, "pools", "default")


def volume_with_data(cl, name, host="h1"):
    st, v = cl.api("POST", "/v1/volumes", {"name": name, "size": 64 << 20, "host": host})
    assert st == 201, (st, v)
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {PATTERN} 1M 8M", v["path"]],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "wrote" in p.stdout, p
    return v


def has_data(path):
    """The pattern is where it was written (read without the writer's lock)."""
    p = subprocess.run(["qemu-io", "-U", "-r", "-f", "qcow2", "-c",
                        f"read -P {PATTERN} 1M 8M", path], capture_output=True, text=True)
    return p.returncode == 0 and "read " in p.stdout and "failed" not in p.stdout + p.stderr


def cmdline(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")


def test_migrate_moves_a_hot_plugged_volume(cl):
    v = make_vm(cl, "c-mvol")
    vol = volume_with_data(cl, "c-mvold")
    cl.yun("volume", "attach", "c-mvold", "c-mvol")
    assert cl.get("/v1/volumes/c-mvold")["state"] == "attached"
    hb = max(heartbeats(cl, "c-mvol"))
    t = cl.task_wait(migrate(cl, "c-mvol", "h2"))
    assert t["state"] == "succeeded", t
    assert t["detail"]["disk"]["mirrors"] == 2, t["detail"]
    r = assert_only_on(cl, v, "h2", hb)
    got = cl.get("/v1/volumes/c-mvold")
    to = os.path.join(pool(cl, "h2"), "c-mvold.qcow2")
    assert got["path"] == to and got["state"] == "attached" and got["attached_to"] == v["id"], got
    assert got["host"] in ("h2", cl.hosts()["h2"]["id"]), got
    assert not os.path.exists(vol["path"]), "the source's volume file is still there"
    assert has_data(to), "the volume's data is not on h2"
    # h2's QEMU has it at the PCI address h1's had (the source's layout)
    args = cmdline(r["pid"])
    dev = next(a for a in args if a.startswith("virtio-blk-pci,drive=vol-"))
    assert ",addr=" in dev, dev
    print(f"\nvolume on h2: {dev}; task {t['result']['outcome']}")

    # and back: now it came from h2's argv
    hb = max(heartbeats(cl, "c-mvol"))
    t = cl.task_wait(migrate(cl, "c-mvol", "h1"))
    assert t["state"] == "succeeded", t
    assert_only_on(cl, v, "h1", hb)
    got = cl.get("/v1/volumes/c-mvold")
    assert got["path"] == vol["path"], got
    assert not os.path.exists(to) and has_data(vol["path"])
    assert rows(cl, v["id"]).split() == ["done", "done"]
    cl.check_invariants(settled=True)
    cl.delete_all_vms()
    cl.yun("volume", "delete", "c-mvold")


def test_migrate_volume_refusals_and_rollback(cl):
    vol = volume_with_data(cl, "c-mvolr1")
    # a linked clone stays with its base: refused before anything changes
    cl.yun("volume", "clone", "c-mvolr1", "c-mvolr2")
    cl.yun("vm", "create", "c-mvolr", "--image", "tiny", "--memory", "128M", "--host", "h1")
    cl.yun("volume", "attach", "c-mvolr2", "c-mvolr")  # stopped: it is in the argv
    cl.yun("vm", "start", "c-mvolr")
    cl.wait_vm("c-mvolr", "running")
    v = cl.vm("c-mvolr")
    st, b = migrate(cl, "c-mvolr", "h2")
    assert st == 409 and "linked clone of 'c-mvolr1'" in b["error"]["message"], (st, b)
    assert rows(cl, v["id"]) == ""
    cl.yun("vm", "stop", "c-mvolr", "--force")
    cl.wait_vm("c-mvolr", "stopped")
    cl.yun("volume", "detach", "c-mvolr2")
    cl.yun("volume", "delete", "c-mvolr2")
    cl.yun("volume", "attach", "c-mvolr1", "c-mvolr")
    cl.yun("vm", "start", "c-mvolr")
    cl.wait_vm("c-mvolr", "running")
    cl.wait_marker("c-mvolr")
    # a file at the target's path is not ours: the move rolls back, it stays
    planted = os.path.join(pool(cl, "h2"), "c-mvolr1.qcow2")
    os.makedirs(os.path.dirname(planted), exist_ok=True)
    with open(planted, "w") as f:
        f.write("someone else's\n")
    t = cl.task_wait(migrate(cl, "c-mvolr", "h2"))
    assert t["state"] == "failed" and "exists already" in t["error"]["message"], t
    assert_only_on(cl, v, "h1")
    assert open(planted).read() == "someone else's\n"
    got = cl.get("/v1/volumes/c-mvolr1")
    assert got["path"] == vol["path"] and has_data(vol["path"]), got
    assert rows(cl, v["id"]) == "rolled_back"
    os.unlink(planted)
    cl.check_invariants(settled=True)
    cl.delete_all_vms()
    cl.yun("volume", "delete", "c-mvolr1")


@pytest.mark.parametrize("point,host", [("migrate.after_volumes_made", "h1"),
                                        ("migrate.after_mirroring", "h1"),
                                        ("migrate.after_commit", "h2")])
def test_migrate_volume_controller_killed(cl, point, host):
    name = "c-mvolk"
    v = make_vm(cl, name, memory="128M")
    vol = volume_with_data(cl, "c-mvolk1")
    cl.yun("volume", "attach", "c-mvolk1", name)
    move_with_controller_killed(cl, point, name, v["id"])
    assert_only_on(cl, v, host)
    src, dst = vol["path"], os.path.join(pool(cl, "h2"), "c-mvolk1.qcow2")
    keep, gone = (src, dst) if host == "h1" else (dst, src)
    got = cl.get("/v1/volumes/c-mvolk1")
    assert got["path"] == keep and got["state"] == "attached", got
    wait_for(lambda: not os.path.exists(gone), 30, interval=0.2, what=f"{gone} to be removed")
    assert has_data(keep)
    if point == "migrate.after_volumes_made":  # the target's empty copy, counted in the row
        assert psql(cl.pg_url, f"SELECT ports FROM migrations WHERE vm_id='{v['id']}'").find(
            '"made":1') >= 0
    cl.settle(60)
    cl.delete_all_vms()
    cl.yun("volume", "delete", "c-mvolk1")
