"""Shared pools and HA restart (docs/cluster.md, "Shared pools and HA"):
a pool declared --shared (one directory every namespace host sees: the
hosts share the machine's filesystem, as they would an NFS mount) holds a
VM's disk (POOL/vms/ID/disk.qcow2) whatever host runs it; --ha is refused
off a shared pool; an HA VM whose host's link is cut is killed by that
host's own agent before its lease ends (vm.fenced) and started on another
host by the controller once the lease plus ha_restart_margin_ms passed;
the host back, it never runs the old copy."""
import os
import time

import pytest

from .harness import pid_alive, wait_for

pytestmark = pytest.mark.usefixtures("tiny")


@pytest.fixture
def shared_pool(cl):
    path = os.path.join(cl.run_dir, "nfs1")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    cl.yun("pool", "create", "nfs1", "--path", path, "--shared")
    yield path
    cl.delete_all_vms()
    cl.yun("pool", "delete", "nfs1", check=False)


def test_pool_create_refusals_and_a_vm_disk_on_it(cl, shared_pool):
    pools = {p["name"]: p for p in cl.get("/v1/pools")["pools"]}
    assert pools["nfs1"]["shared"] is True and pools["nfs1"]["path"] == shared_pool
    # bad input changes nothing
    for args in (["nfs1", "--path", "/tmp/x"], ["Bad_Name", "--path", "/tmp/x"],
                 ["p2", "--path", "rel/dir"], ["p3", "--path", shared_pool],
                 ["p4", "--path", "/tmp/a,b"], ["p5", "--path", "/tmp/../etc"]):
        p = cl.yun("pool", "create", *args, check=False)
        assert p.returncode != 0 and p.stderr.strip(), (args, p)
    assert len(cl.get("/v1/pools")["pools"]) == len(pools)
    # --ha needs a shared pool
    p = cl.yun("vm", "create", "ha-nopool", "--image", "tiny", "--memory", "96M", "--ha",
               check=False)
    assert p.returncode != 0 and "shared pool" in p.stderr, p
    p = cl.yun("vm", "create", "ha-nopool", "--image", "tiny", "--pool", "nope", check=False)
    assert p.returncode != 0 and "nope" in p.stderr, p
    assert not [v for v in cl.vms() if v["name"] == "ha-nopool"]
    # a VM on the pool: its disk there, its QEMU on h1, all gone on delete
    cl.yun("vm", "create", "pooled", "--image", "tiny", "--memory", "96M", "--host", "h1",
           "--pool", "nfs1", "--start")
    v = cl.wait_vm("pooled", "running")
    disk = os.path.join(shared_pool, "vms", v["id"], "disk.qcow2")
    assert os.path.isfile(disk)
    assert v["pool"] == "nfs1" and v["ha"] is False
    assert list(cl.agents["h1"].qemus().values()) == [v["id"]]
    p = cl.yun("pool", "delete", "nfs1", check=False)
    assert p.returncode != 0 and "holds" in p.stderr, p
    cl.yun("vm", "delete", "--force", "pooled")
    wait_for(lambda: not os.path.exists(os.path.dirname(disk)), 30, what="the disk dir gone")
