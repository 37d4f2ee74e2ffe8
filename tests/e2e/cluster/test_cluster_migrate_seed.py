"""Live migration of a VM with a cloud-init seed (docs/cluster.md, "Live
migration"): the target gets the source's seed ISO byte for byte before its
QEMU starts (vm.seed_read, then vm.prepare with seed_iso_b64), so the target
QEMU has the same seed drive and the move goes through; the tiny guest keeps
counting. A rollback leaves no seed (nor directory) on the target."""
import hashlib
import os

import pytest

from .harness import MARKER
from .test_cluster_migrate import (assert_only_on, heartbeats, migrate, rows, wait_phase,
                                   where)
from .harness import wait_for

pytestmark = pytest.mark.usefixtures("tiny")


def seed_path(cl, host, vid):
    return os.path.join(cl.agents[host].state_dir, "vms", vid, "seed.iso")


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_seeded(cl, tmp_path, name):
    ud = tmp_path / "user-data"
    ud.write_text("#cloud-config\nwrite_files:\n  - path: /root/hello.txt\n"
                  "    content: hello from yun cloud-init\n")
    cl.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--host", "h1",
           "--hostname", "seeded", "--user-data", str(ud))
    cl.yun("vm", "start", name)
    cl.wait_vm(name, "running")
    cl.wait_marker(name)
    wait_for(lambda: heartbeats(cl, name), 30, interval=0.25, what=f"a heartbeat of {name}")
    v = cl.vm(name)
    assert v["cloud_init"] is True, v
    return v


def test_migrate_seeded_vm(cl, tmp_path):
    v = make_seeded(cl, tmp_path, "c-migseed")
    src = seed_path(cl, "h1", v["id"])
    digest, size = sha(src), os.path.getsize(src)
    hb = max(heartbeats(cl, "c-migseed"))
    p = cl.yun("vm", "migrate", "c-migseed", "--to", "h2")
    assert "migrated" in p.stdout, p.stdout
    assert_only_on(cl, v, "h2", hb)
    dst = seed_path(cl, "h2", v["id"])
    assert os.path.getsize(dst) == size and sha(dst) == digest, "the seed changed on the way"
    # the target QEMU has the seed drive as the source's had
    pid = cl.vm("c-migseed")["pid"]
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert any(b"seed.iso" in a for a in argv), argv
    assert MARKER not in cl.console_log("c-migseed")
    assert rows(cl, v["id"]) == "done"
    cl.check_invariants(settled=True)


def test_migrate_seeded_vm_rollback_leaves_nothing(cl, tmp_path):
    v = make_seeded(cl, tmp_path, "c-migseedrb")
    st, b = migrate(cl, "c-migseedrb", "h2", max_bandwidth=1 << 20, auto_converge=True)
    assert st == 202, b
    tid = b["task"]["id"]
    wait_phase(cl, tid, ("memory",))
    assert os.path.exists(seed_path(cl, "h2", v["id"]))  # the copy is there mid-move
    cl.yun("task", "cancel", tid)
    t = cl.task_wait((202, {"task": {"id": tid}}))
    assert t["state"] == "cancelled", t
    assert_only_on(cl, v, "h1")
    assert not os.path.exists(seed_path(cl, "h2", v["id"]))
    assert where(cl, v["id"]).keys() == {"h1"}
    cl.check_invariants(settled=True)
