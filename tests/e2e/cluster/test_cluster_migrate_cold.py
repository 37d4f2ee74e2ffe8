"""The cold move of a stopped VM (docs/cluster.md, "Cold move"): `yun vm
migrate` of a stopped tiny VM copies its disk overlay and its attached
volume, byte for byte, from h1's agent to h2's (each copy's SHA-256
compared); the rows move in one transaction, h1 keeps no file of it, the
data written into the overlay and the volume is on h2, and the VM boots
there. The plan of a stopped VM says cold. kill -9 of the controller before
the commit leaves the VM on h1 with nothing on h2; after it, on h2 with
nothing on h1."""
import json
import os
import subprocess

import pytest

from .harness import MARKER, wait_for
from .test_cluster_migrate import assert_only_on, move_with_controller_killed, rows
from .test_cluster_migrate_volumes import has_data, pool, volume_with_data

pytestmark = pytest.mark.usefixtures("tiny")


def overlay(cl, host, vid):
    return os.path.join(cl.agents[host].state_dir, "vms", vid, "disk.qcow2")


def write_pattern(path):
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 8M", path],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "wrote" in p.stdout, p


def stopped_vm(cl, name):
    cl.yun("vm", "create", name, "--image", "tiny", "--memory", "128M", "--host", "h1")
    cl.yun("vm", "start", name)
    cl.wait_vm(name, "running")
    cl.wait_marker(name)
    cl.yun("vm", "stop", name, "--force")
    cl.wait_vm(name, "stopped")
    v = cl.vm(name)
    write_pattern(overlay(cl, "h1", v["id"]))
    return v


def test_cold_move_of_a_stopped_vm_with_a_volume(cl):
    v = stopped_vm(cl, "c-cold")
    vol = volume_with_data(cl, "c-coldv")
    cl.yun("volume", "attach", "c-coldv", "c-cold")
    p = cl.yun("vm", "migrate", "c-cold", "--to", "h2", "--dry-run")
    assert "cold: the vm is stopped" in p.stdout and "target: h2" in p.stdout, p.stdout
    p = cl.yun("vm", "migrate", "c-cold", "--to", "h2")
    assert "migrated" in p.stdout, p.stdout
    r = cl.vm("c-cold")
    assert cl.vm_host(r) == "h2" and r["state"] == "stopped" and r["id"] == v["id"], r
    assert v["id"] not in cl.agents["h1"].vm_dirs()
    disk = overlay(cl, "h2", v["id"])
    assert has_data(disk), "the overlay's data is not on h2"
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output", "json", disk],
                                     capture_output=True, text=True, check=True).stdout)
    assert os.path.exists(info["backing-filename"]), info
    got = cl.get("/v1/volumes/c-coldv")
    to = os.path.join(pool(cl, "h2"), "c-coldv.qcow2")
    assert got["path"] == to and got["attached_to"] == v["id"], got
    assert not os.path.exists(vol["path"]) and has_data(to)
    t = next(t for t in cl.get("/v1/tasks?limit=20")["tasks"] if t["kind"] == "vm.migrate")
    assert t["state"] == "succeeded" and t["result"]["outcome"]["cold"] is True, t
    assert t["result"]["outcome"]["disk_bytes"] > 8 << 20, t["result"]
    o = t["result"]["outcome"]
    print(f"\ncold move h1->h2: {o['disk_bytes']} B in {o['yun_ms']} ms (the whole task), "
          f"load {open('/proc/loadavg').read().strip()}")
    assert rows(cl, v["id"]) == "done"
    ev = [e for e in cl.events("c-cold") if e.get("action") == "migrate"]
    assert any("cold" in e["reason"] for e in ev), ev
    # it boots on h2, from the copied overlay, with the volume
    cl.yun("vm", "start", "c-cold")
    cl.wait_vm("c-cold", "running")
    assert_only_on(cl, v, "h2")
    wait_for(lambda: MARKER in cl.console_log("c-cold"), 90, interval=0.25, what="its boot on h2")
    args = open(f"/proc/{cl.vm('c-cold')['pid']}/cmdline", "rb").read().decode()
    assert "node-name=vol-" in args, args
    cl.check_invariants(settled=True)
    cl.delete_all_vms()
    cl.yun("volume", "delete", "c-coldv")


@pytest.mark.parametrize("point,host", [("migrate.after_prepared", "h1"),
                                        ("migrate.after_commit", "h2")])
def test_cold_move_controller_killed(cl, point, host):
    v = stopped_vm(cl, "c-coldk")
    move_with_controller_killed(cl, point, "c-coldk", v["id"])
    r = cl.vm("c-coldk")
    assert cl.vm_host(r) == host and r["state"] == "stopped", r
    other = "h2" if host == "h1" else "h1"
    wait_for(lambda: v["id"] not in cl.agents[other].vm_dirs(), 30, interval=0.2,
             what=f"its directory on {other} to go")
    assert has_data(overlay(cl, host, v["id"]))
    cl.settle(60)
    cl.delete_all_vms()
