"""Shared pools and HA restart (docs/cluster.md, "Shared pools and HA"):
a pool declared --shared (one directory every namespace host sees: the
hosts share the machine's filesystem, as they would an NFS mount) holds a
VM's disk (POOL/vms/ID/disk.qcow2) whatever host runs it; --ha is refused
off a shared pool; an HA VM whose host's link is cut is killed by that
host's own agent before its lease ends (vm.fenced) and started on another
host by the controller once the lease plus ha_restart_margin_ms passed;
the host back, it never runs the old copy. A VM on a shared pool migrates
with its disk left in the pool (both QEMUs open the one file)."""
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


def _ev(cl, name, action):
    return [e for e in cl.events(obj=name) if e.get("action") == action]


def test_link_cut_ha_vm_fenced_then_restarted_elsewhere(cl, shared_pool):
    cl.yun("vm", "create", "ha1", "--image", "tiny", "--memory", "96M", "--host", "h1",
           "--pool", "nfs1", "--ha", "--start")
    cl.yun("vm", "create", "plain1", "--image", "tiny", "--memory", "96M", "--host", "h1",
           "--start")
    v = cl.wait_vm("ha1", "running")
    p = cl.wait_vm("plain1", "running")
    assert v["ha"] is True
    old_pid = v["pid"]
    t_cut = time.time()
    cl.fabric.cut("h1")
    # the fence: h1's own agent kills the HA QEMU (never the plain one)
    wait_for(lambda: not pid_alive(old_pid), 30, interval=0.05, what="the old QEMU fenced")
    t_fenced = time.time()
    assert pid_alive(p["pid"])

    h1_id = cl.hosts()["h1"]["id"]
    slowest = [0.0]

    def moved():
        t0 = time.monotonic()
        r = cl.vm("ha1")
        slowest[0] = max(slowest[0], time.monotonic() - t0)
        return r if r["state"] == "running" and r["host"] not in ("h1", h1_id) else None

    r = wait_for(moved, 90, interval=0.1, what="ha1 running on another host")
    t_seen = time.time()
    # the figure: cut -> the new QEMU started (its row's started_at), not
    # when a poll happened to see it
    t_running = r["started_at"] / 1000
    new_host = cl.vm_host(r)
    assert new_host in ("h2", "h3") and r["pid"] != old_pid
    assert list(cl.agents[new_host].qemus().values()).count(r["id"]) == 1
    # the old QEMU was gone before the new one started (one machine's clock)
    assert t_fenced <= r["started_at"] / 1000 + 0.05, (t_fenced, r["started_at"])
    # the plain VM is not restarted: still h1's, unknown
    assert cl.vm_host(cl.vm("plain1")) == "h1"
    assert cl.vm("plain1")["state"] == "unknown"
    restarting = _ev(cl, "ha1", "ha.restarting")
    assert restarting and new_host in restarting[-1]["reason"], restarting
    assert _ev(cl, "ha1", "ha.restarted")
    # the link back: h1 tells of the fence and never runs the old copy
    cl.fabric.restore("h1")
    cl.wait_host("h1", "up", 30)
    fenced = wait_for(lambda: _ev(cl, "ha1", "fenced"), 30, what="the vm.fenced event")
    fa = int(fenced[-1]["reason"].split("fenced_at=")[1].split()[0])
    assert fa <= r["started_at"], (fa, r["started_at"])
    cl.wait_vm("plain1", "running", 30)
    cl.settle(30)
    assert r["id"] not in cl.agents["h1"].qemus().values()
    r2 = cl.vm("ha1")
    assert r2["pid"] == r["pid"] and cl.vm_host(r2) == new_host
    print(f"\nHA timeline: cut -> old QEMU dead {t_fenced - t_cut:.2f} s, "
          f"cut -> running on {new_host} {t_running - t_cut:.2f} s (seen by a poll after "
          f"{t_seen - t_cut:.2f} s; slowest GET /v1/vms/ha1 {slowest[0]:.2f} s) "
          f"(lease {cl.dead_after_ms} ms, heartbeat {cl.heartbeat_ms} ms); "
          f"load {os.getloadavg()}")
    for e in cl.events(obj="ha1")[-8:]:
        print("  ", e.get("ts"), e.get("action"), e.get("reason"))


def qemu_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("Uid:"))


def test_migrate_on_a_shared_pool_copies_nothing(cl, shared_pool):
    """A VM whose disk is on a shared pool moves with its disk left where it
    is: both QEMUs open the one file, no mirror runs, the guest keeps
    counting; a cancelled move leaves it and its disk where they were; a
    disk on a pool that is not shared is refused with the reason."""
    from .test_cluster_migrate import (assert_only_on, heartbeats, migrate, rows, wait_phase,
                                       where)
    cl.yun("vm", "create", "shm", "--image", "tiny", "--memory", "96M", "--host", "h1",
           "--pool", "nfs1", "--start")
    v = cl.wait_vm("shm", "running")
    cl.wait_marker("shm")
    wait_for(lambda: heartbeats(cl, "shm"), 30, interval=0.25, what="a heartbeat of shm")
    disk = os.path.join(shared_pool, "vms", v["id"], "disk.qcow2")
    ino = os.stat(disk).st_ino
    hb = max(heartbeats(cl, "shm"))
    p = cl.yun("vm", "migrate", "shm", "--to", "h2")
    assert "migrated" in p.stdout, p.stdout
    r = assert_only_on(cl, v, "h2", hb)
    assert os.stat(disk).st_ino == ino, "the disk was replaced"
    assert os.stat(disk).st_uid == qemu_uid(r["pid"]), "the disk is not the running QEMU's"
    # the target's QEMU has the pool's file open (by the fd its agent gave it)
    fds = [os.readlink(f"/proc/{r['pid']}/fd/{f}") for f in os.listdir(f"/proc/{r['pid']}/fd")]
    assert disk in fds, fds
    t = next(t for t in cl.get("/v1/tasks?limit=20")["tasks"] if t["kind"] == "vm.migrate")
    assert t["state"] == "succeeded" and t["result"]["outcome"]["disk_bytes"] == 0, t
    assert "disk" not in t["detail"], t["detail"]
    assert rows(cl, v["id"]) == "done"
    # a cancelled move back: the VM and its disk stay on h2's side
    st, b = migrate(cl, "shm", "h1", max_bandwidth=1 << 20, auto_converge=True)
    assert st == 202, b
    tid = b["task"]["id"]
    wait_phase(cl, tid, ("memory",))
    cl.yun("task", "cancel", tid)
    t = cl.task_wait((202, {"task": {"id": tid}}))
    assert t["state"] == "cancelled", t
    assert_only_on(cl, v, "h2")
    assert os.stat(disk).st_ino == ino and where(cl, v["id"]).keys() == {"h2"}
    # the cancelled target had been given the disk: it is the source's again
    assert os.stat(disk).st_uid == qemu_uid(cl.vm("shm")["pid"]), "the disk was not given back"
    cl.check_invariants(settled=True)
    # a pool that is not shared: refused, nothing changes
    loc = os.path.join(cl.run_dir, "loc1")
    os.makedirs(loc, exist_ok=True)
    cl.yun("pool", "create", "loc1", "--path", loc)
    try:
        cl.yun("vm", "create", "lpm", "--image", "tiny", "--memory", "96M", "--host", "h1",
               "--pool", "loc1", "--start")
        lv = cl.wait_vm("lpm", "running")
        st, b = cl.api("POST", "/v1/vms/lpm/migrate", {"to": "h2"})
        assert st == 409 and "not shared" in b["error"]["message"], (st, b)
        lr = cl.vm("lpm")
        assert cl.vm_host(lr) == "h1" and lr["pid"] == lv["pid"] and lr["state"] == "running"
        assert lv["id"] not in cl.agents["h2"].qemus().values()
    finally:
        cl.delete_all_vms()
        cl.yun("pool", "delete", "loc1", check=False)


def test_cold_move_on_a_shared_pool_copies_nothing(cl, shared_pool):
    """A stopped VM whose disk is on a shared pool moves cold with its disk
    left in the pool (the same file, untouched), and starts on the target,
    whose QEMU opens the pool's file."""
    cl.yun("vm", "create", "shc", "--image", "tiny", "--memory", "96M", "--host", "h1",
           "--pool", "nfs1")
    v = cl.vm("shc")
    disk = os.path.join(shared_pool, "vms", v["id"], "disk.qcow2")
    before = os.stat(disk)
    p = cl.yun("vm", "migrate", "shc", "--to", "h2")
    assert "migrated" in p.stdout, p.stdout
    r = cl.vm("shc")
    assert cl.vm_host(r) == "h2" and r["state"] == "stopped", r
    after = os.stat(disk)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "copied"
    t = next(t for t in cl.get("/v1/tasks?limit=20")["tasks"] if t["kind"] == "vm.migrate")
    assert t["state"] == "succeeded" and t["result"]["outcome"]["disk_bytes"] == 0, t
    assert v["id"] not in cl.agents["h1"].vm_dirs() and v["id"] in cl.agents["h2"].vm_dirs()
    cl.yun("vm", "start", "shc")
    r = cl.wait_vm("shc", "running")
    cl.wait_marker("shc")
    fds = [os.readlink(f"/proc/{r['pid']}/fd/{f}") for f in os.listdir(f"/proc/{r['pid']}/fd")]
    assert disk in fds, fds
    cl.check_invariants(settled=True)
