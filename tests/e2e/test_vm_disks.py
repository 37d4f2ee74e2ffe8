"""A VM's extra disks with tiny VMs and real QEMU: volumes hot-plugged into
running VMs (and kept across VM and yund restarts), detached with the
guest's consent; disk snapshots as a tree of qcow2 overlays (create live or
stopped, revert, delete by merging), with their data checked through
qemu-io; crash recovery of half-done snapshot work; import/export and the
refusals of bad images; a full file system (ENOSPC) that must leave every
disk and row as it was. The Debian guest test does the same from inside a
real guest (test_guest.py)."""
import hashlib
import json
import os
import sqlite3
import subprocess

import pytest

from conftest import Yund, qmp_reply, wait_for


def qmp(y, vm, command, args=None):
    """One QMP command that must succeed: its "return"."""
    r = qmp_reply(y, vm, command, args)
    assert "return" in r, r
    return r["return"]


def volume_node(y, volume):
    """QEMU's block node of a volume (named from its id: hot-plugged volumes
    are opened from fds yund passes, so their file name is /dev/fdset/N)."""
    st, v = y.request("GET", f"/v1/volumes/{volume}")
    return "vol-" + v["id"].replace("-", "")[:12]


def qemu_has_volume(y, vm, volume):
    node = volume_node(y, volume)
    return any(b.get("inserted", {}).get("node-name") == node
               for b in qmp(y, vm, "query-block"))


def active_disk(y, vm):
    v = y.vm(vm)
    return os.path.join(y.state_dir, "vms", v["id"], v["disk"])


def qio(path, cmd):
    """qemu-io on a stopped VM's disk; read -P checks a byte pattern."""
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, path], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def pattern_is(path, offset, length, byte):
    out = subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                          f"read -P {byte:#x} {offset} {length}", path],
                         capture_output=True, text=True).stdout
    return "Pattern verification failed" not in out and "read " in out


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_attach_hotplug_detach_and_persistence(yund):
    y = yund
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-a", "--image", "tiny", "--memory", "128M", "--start")
    y.wait_marker("e2e-a")
    y.yun("volume", "create", "e2e-v1", "--size", "64M")
    y.yun("volume", "attach", "e2e-v1", "e2e-a")
    st, v = y.request("GET", "/v1/volumes/e2e-v1")
    assert v["state"] == "attached" and v["vm"] == "e2e-a"
    assert qemu_has_volume(y, "e2e-a", "e2e-v1")
    assert y.vm("e2e-a")["volumes"] == ["e2e-v1"]
    # refused while attached: delete, compact, a second attachment
    p = y.yun("volume", "delete", "e2e-v1", check=False)
    assert p.returncode == 1 and "attached" in p.stderr
    y.yun("vm", "create", "e2e-b", "--image", "tiny", "--memory", "96M")
    p = y.yun("volume", "attach", "e2e-v1", "e2e-b", check=False)
    assert p.returncode == 1 and "already attached to vm 'e2e-a'" in p.stderr
    # online grow: QEMU sees the new size at once
    y.yun("volume", "resize", "e2e-v1", "--size", "96M")
    sizes = [b["inserted"]["image"]["virtual-size"] for b in qmp(y, "e2e-a", "query-block")
             if b.get("inserted", {}).get("node-name") == volume_node(y, "e2e-v1")]
    assert sizes == [96 << 20]
    # yund killed and restarted: the attachment and the live device stay.
    # Also what a kill mid-attach leaves: e2e-v1 "attaching" although QEMU
    # has it (finish), e2e-v2 "attaching" although QEMU never got it (undo).
    y.yun("volume", "create", "e2e-v2", "--size", "16M")
    y.kill9()
    db = sqlite3.connect(os.path.join(y.state_dir, "yun.db"))
    vid = db.execute("SELECT id FROM vms WHERE name='e2e-a'").fetchone()[0]
    db.execute("UPDATE volumes SET state='attaching' WHERE name='e2e-v1'")
    db.execute("UPDATE volumes SET state='attaching', attached_to=? WHERE name='e2e-v2'", (vid,))
    db.commit()
    db.close()
    y.start()
    st, v = y.request("GET", "/v1/volumes/e2e-v1")
    assert v["state"] == "attached" and qemu_has_volume(y, "e2e-a", "e2e-v1")
    st, v2 = y.request("GET", "/v1/volumes/e2e-v2")
    assert v2["state"] == "ready" and v2["attached_to"] == ""
    assert not qemu_has_volume(y, "e2e-a", "e2e-v2")
    y.yun("volume", "delete", "e2e-v2")
    # detach: the guest releases the device (ACPI hot-unplug), then it is
    # free; a live detach is the task volume.detach, whose result is the volume
    r = y.request("POST", "/v1/volumes/e2e-v1/actions/detach")
    assert r[0] == 202 and r[1]["task"]["kind"] == "volume.detach", r
    t = y.task_wait(r)
    assert t["state"] == "succeeded" and t["result"]["state"] == "ready", t
    assert not qemu_has_volume(y, "e2e-a", "e2e-v1")
    st, v = y.request("GET", "/v1/volumes/e2e-v1")
    assert v["state"] == "ready" and v["attached_to"] == ""
    p = y.yun("volume", "detach", "e2e-v1", check=False)
    assert p.returncode == 1 and "not attached" in p.stderr
    # attached to a stopped VM: it is on the command line from the next start
    y.yun("volume", "attach", "e2e-v1", "e2e-b")
    y.yun("vm", "start", "e2e-b")
    with open(f"/proc/{y.vm('e2e-b')['pid']}/cmdline", "rb") as f:
        assert v["path"].encode() in f.read()  # by path, or (confined) its fd's label
    assert qemu_has_volume(y, "e2e-b", "e2e-v1")
    y.yun("vm", "stop", "--force", "e2e-b")
    st, v = y.request("GET", "/v1/volumes/e2e-v1")
    assert v["state"] == "attached"  # kept across VM restarts
    # deleting the VM frees its volumes (they are the user's data)
    y.yun("vm", "delete", "e2e-b")
    st, v = y.request("GET", "/v1/volumes/e2e-v1")
    assert v["state"] == "ready" and v["attached_to"] == ""
    y.check_invariants()
    y.yun("vm", "delete", "--force", "e2e-a")
    y.yun("volume", "delete", "e2e-v1")
    y.check_invariants()


def test_detach_task_times_out_while_the_guest_holds_on(state_dir):
    """A paused guest cannot release the device: the detach task fails after
    detach_timeout and the volume stays "detaching" (busy for nothing else);
    once the guest runs again it lets go and the volume is free."""
    y = Yund(state_dir, ["--set", "detach_timeout=2"]).start()
    try:
        y.ensure_tiny()
        y.yun("vm", "create", "e2e-dt", "--image", "tiny", "--memory", "128M", "--start")
        y.wait_marker("e2e-dt")
        y.yun("volume", "create", "e2e-dtv", "--size", "16M")
        y.yun("volume", "attach", "e2e-dtv", "e2e-dt")
        y.yun("vm", "pause", "e2e-dt")
        p = y.yun("volume", "detach", "e2e-dtv", "--no-wait")
        tid = p.stdout.split()[-1]
        st, t = y.request("GET", f"/v1/tasks/{tid}")
        assert st == 200 and t["kind"] == "volume.detach", t
        assert y.request("GET", "/v1/volumes/e2e-dtv")[1]["state"] == "detaching"
        # one operation at a time: the task holds the volume
        st, b = y.request("POST", "/v1/volumes/e2e-dtv/actions/detach")
        assert st == 409 and b["error"].get("task") == tid, b
        t = wait_for(lambda: (lambda t: t if t["state"] != "running" else None)(
            y.request("GET", f"/v1/tasks/{tid}")[1]), 30, what="the detach task to end")
        assert t["state"] == "failed" and t["error"]["code"] == "timeout", t
        assert "not released" in t["error"]["message"], t
        assert y.request("GET", "/v1/volumes/e2e-dtv")[1]["state"] == "detaching"
        y.yun("vm", "resume", "e2e-dt")
        wait_for(lambda: y.request("GET", "/v1/volumes/e2e-dtv")[1]["state"] == "ready", 60,
                 what="the guest to release the device")
        assert not qemu_has_volume(y, "e2e-dt", "e2e-dtv")
        y.check_invariants()
        y.yun("vm", "delete", "--force", "e2e-dt")
        y.yun("volume", "delete", "e2e-dtv")
    finally:
        y.stop()


def test_attach_refusals(yund):
    y = yund
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-c", "--image", "tiny", "--memory", "96M")
    y.yun("volume", "create", "e2e-base", "--size", "32M")
    y.yun("volume", "clone", "e2e-base", "e2e-lc")
    st, b = y.request("POST", "/v1/volumes/e2e-nope/actions/attach", {"vm": "e2e-c"})
    assert st == 404
    st, b = y.request("POST", "/v1/volumes/e2e-base/actions/attach", {"vm": "e2e-nope"})
    assert st == 404
    st, b = y.request("POST", "/v1/volumes/e2e-base/actions/attach", {})
    assert st == 400
    st, b = y.request("POST", "/v1/volumes/e2e-base/actions/attach", {"vm": "e2e-c", "x": 1})
    assert st == 400
    # writing to a volume that backs a linked clone would corrupt the clone
    st, b = y.request("POST", "/v1/volumes/e2e-base/actions/attach", {"vm": "e2e-c"})
    assert st == 409 and "linked clone" in b["error"]["message"]
    # and a linked clone of an attached (changing) volume would be corrupt
    y.yun("volume", "attach", "e2e-lc", "e2e-c")
    st, b = y.request("POST", "/v1/volumes/e2e-lc/actions/clone", {"name": "e2e-lc2"})
    assert st == 409
    # a full copy of a stopped VM's volume is fine
    t = y.task_wait(y.request("POST", "/v1/volumes/e2e-lc/actions/clone",
                              {"name": "e2e-full", "full": True}))  # a task
    assert t["state"] == "succeeded", t
    y.check_invariants()
    y.yun("vm", "delete", "e2e-c")
    for name in ("e2e-full", "e2e-lc", "e2e-base"):
        y.yun("volume", "delete", name)
    y.check_invariants()


def test_snapshot_tree_revert_and_merge(yund):
    y = yund
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-s", "--image", "tiny", "--memory", "128M")
    qio(active_disk(y, "e2e-s"), "write -P 0x11 0 1M")
    y.yun("snapshot", "create", "e2e-s", "a")
    qio(active_disk(y, "e2e-s"), "write -P 0x22 0 1M")
    y.yun("snapshot", "create", "e2e-s", "b")
    qio(active_disk(y, "e2e-s"), "write -P 0x33 0 1M")
    snaps = json.loads(y.yun("-o", "json", "snapshot", "list", "e2e-s").stdout)
    assert [s["name"] for s in snaps] == ["a", "b"]
    assert [s["current"] for s in snaps] == [False, True]
    assert all(s["consistency"] == "crash" for s in snaps)  # stopped: nothing to freeze
    # revert goes back, and any snapshot can be reverted to again later
    y.yun("snapshot", "revert", "e2e-s", "a")
    assert pattern_is(active_disk(y, "e2e-s"), 0, 1 << 20, 0x11)
    y.yun("snapshot", "revert", "e2e-s", "b")
    assert pattern_is(active_disk(y, "e2e-s"), 0, 1 << 20, 0x22)
    qio(active_disk(y, "e2e-s"), "write -P 0x44 1M 1M")
    # deleting "a" merges it into "b": b's data (0x22 over 0x11) survives
    y.yun("snapshot", "delete", "e2e-s", "a")
    assert pattern_is(active_disk(y, "e2e-s"), 0, 1 << 20, 0x22)
    assert pattern_is(active_disk(y, "e2e-s"), 1 << 20, 1 << 20, 0x44)
    y.yun("snapshot", "revert", "e2e-s", "b")
    assert pattern_is(active_disk(y, "e2e-s"), 0, 1 << 20, 0x22)
    assert pattern_is(active_disk(y, "e2e-s"), 1 << 20, 1 << 20, 0x00)
    # refusals
    p = y.yun("snapshot", "create", "e2e-s", "b", check=False)
    assert p.returncode == 1 and "already has" in p.stderr
    st, b = y.request("POST", "/v1/vms/e2e-s/snapshots", {"name": "bad name!"})
    assert st == 400
    st, b = y.request("POST", "/v1/vms/e2e-s/snapshots", {})
    assert st == 400
    st, b = y.request("GET", "/v1/vms/e2e-s/snapshots/nope")
    assert st == 404
    st, b = y.request("DELETE", "/v1/vms/e2e-nope/snapshots/b")
    assert st == 404
    # live: snapshot and merge under a running QEMU (a block-stream job)
    y.yun("vm", "start", "e2e-s")
    p = y.yun("snapshot", "revert", "e2e-s", "b", check=False)
    assert p.returncode == 1 and "stop it" in p.stderr
    y.yun("snapshot", "create", "e2e-s", "live1")
    y.yun("snapshot", "delete", "e2e-s", "b")
    y.yun("snapshot", "delete", "e2e-s", "live1")
    assert y.vm("e2e-s")["state"] == "running"
    chain = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", "--output=json", active_disk(y, "e2e-s")],
        capture_output=True, text=True, check=True).stdout)
    assert len(chain) == 2 and chain[1]["filename"].endswith("/images/tiny/disk.qcow2")
    y.yun("vm", "stop", "--force", "e2e-s")
    assert pattern_is(active_disk(y, "e2e-s"), 0, 1 << 20, 0x22)
    subprocess.run(["qemu-img", "check", active_disk(y, "e2e-s")], check=True,
                   capture_output=True)
    y.check_invariants()
    y.yun("vm", "delete", "e2e-s")
    y.check_invariants()


def test_snapshot_work_interrupted_by_a_crash_is_settled(state_dir):
    y = Yund(state_dir).start()
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-r", "--image", "tiny", "--memory", "96M")
    y.yun("snapshot", "create", "e2e-r", "s1")
    y.yun("snapshot", "create", "e2e-r", "s2")
    v = y.vm("e2e-r")
    vmdir = os.path.join(state_dir, "vms", v["id"])
    y.kill9()
    # What a crash can leave: (1) a snapshot row whose new layer was never
    # made (undo); (2) one whose new layer was made but not recorded on the
    # VM (adopt: it is a sound overlay of the snapshot's file); (3) a layer
    # file nothing refers to; (4) a merge that was under way.
    made = os.path.join(vmdir, "disk-0badc0de.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    os.path.join(vmdir, v["disk"]), made], check=True)
    stray = os.path.join(vmdir, "disk-deadbeef.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", stray, "1M"], check=True)
    db = sqlite3.connect(os.path.join(state_dir, "yun.db"))
    parent = db.execute("SELECT disk_parent FROM vms WHERE id=?", (v["id"],)).fetchone()[0]
    db.execute("INSERT INTO snapshots(id,vm_id,name,file,parent,state,consistency,new_disk,"
               "created_at) VALUES('0badc0de-0000-4000-8000-000000000000',?,'made',?,?,"
               "'creating','crash','disk-0badc0de.qcow2',8e12)",
               (v["id"], v["disk"], parent))
    db.execute("INSERT INTO snapshots(id,vm_id,name,file,parent,state,consistency,new_disk,"
               "created_at) VALUES('0badc0df-0000-4000-8000-000000000000',?,'half',?,?,"
               "'creating','crash','disk-0badc0df.qcow2',1)",
               (v["id"], v["disk"], parent))
    db.execute("UPDATE snapshots SET state='deleting' WHERE name='s1'")
    # data in s1's layer makes the merge's rebase copy it into s2's layer for
    # a while: that rebase locks a layer the adoption check of "made" reads
    # through, and must not make the check roll "made" back
    s1_file = db.execute("SELECT file FROM snapshots WHERE name='s1'").fetchone()[0]
    db.commit()
    db.close()
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 7 0 64M",
                    os.path.join(vmdir, s1_file)], check=True, stdout=subprocess.DEVNULL)
    y.start()

    def snapshot_names():
        return [s["name"] for s in
                json.loads(y.yun("-o", "json", "snapshot", "list", "e2e-r").stdout)]
    wait_for(lambda: "s1" not in snapshot_names(), what="the merge of s1 to finish")
    snaps = json.loads(y.yun("-o", "json", "snapshot", "list", "e2e-r").stdout)
    assert [(s["name"], s["current"]) for s in snaps] == [("s2", False), ("made", True)]
    assert y.vm("e2e-r")["disk"] == "disk-0badc0de.qcow2"
    assert not os.path.exists(stray)
    acts = [(e["action"], e["result"]) for e in y.events("e2e-r")]
    assert ("snapshot", "error") in acts and ("snapshot-delete", "ok") in acts
    assert ("orphan", "info") in acts
    y.check_invariants()
    # a create whose switch was recorded on the VM but not on the snapshot
    y.kill9()
    db = sqlite3.connect(os.path.join(state_dir, "yun.db"))
    vid, disk = db.execute("SELECT id, disk FROM vms WHERE name='e2e-r'").fetchone()
    nxt = "disk-c0ffee00.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                    os.path.join(vmdir, disk), os.path.join(vmdir, nxt)], check=True)
    sid = "c0ffee00-0000-4000-8000-000000000000"
    parent = db.execute("SELECT disk_parent FROM vms WHERE id=?", (vid,)).fetchone()[0]
    db.execute("INSERT INTO snapshots(id,vm_id,name,file,parent,state,consistency,new_disk,"
               "created_at) VALUES(?,?,'s3',?,?,'creating','crash',?,9e12)",
               (sid, vid, disk, parent, nxt))
    db.execute("UPDATE vms SET disk=?, disk_parent=? WHERE id=?", (nxt, sid, vid))
    db.commit()
    db.close()
    y.start()
    snaps = json.loads(y.yun("-o", "json", "snapshot", "list", "e2e-r").stdout)
    assert [(s["name"], s["state"], s["current"]) for s in snaps] == \
        [("s2", "ready", False), ("made", "ready", False), ("s3", "ready", True)]
    y.check_invariants()
    # a merge into a running VM's disk that yund was waiting on when killed:
    # on restart it asks QEMU and streams again
    y.yun("vm", "start", "e2e-r")
    y.kill9()
    db = sqlite3.connect(os.path.join(state_dir, "yun.db"))
    db.execute("UPDATE snapshots SET state='deleting' WHERE name='s3'")
    db.commit()
    db.close()
    y.start()
    wait_for(lambda: [s["name"] for s in json.loads(
        y.yun("-o", "json", "snapshot", "list", "e2e-r").stdout)] == ["s2", "made"], 30,
        interval=0.2, what="the merge of s3 to finish")
    assert y.vm("e2e-r")["state"] == "running"
    chain = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", "--output=json", active_disk(y, "e2e-r")],
        capture_output=True, text=True, check=True).stdout)
    # active -> made's file -> s2's file -> the image; s3's file is gone
    assert len(chain) == 4 and chain[3]["filename"].endswith("/images/tiny/disk.qcow2")
    assert not any("0badc0de" in c["filename"] for c in chain)
    assert not os.path.exists(os.path.join(vmdir, "disk-0badc0de.qcow2"))
    y.check_invariants()
    y.yun("vm", "stop", "--force", "e2e-r")
    y.yun("vm", "delete", "e2e-r")
    y.stop()


def make_qcow2(path, size="16M", backing=None, pattern=None):
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing:
        cmd += ["-F", "qcow2", "-b", backing]
    subprocess.run(cmd + [str(path)] + ([] if backing else [size]), check=True)
    if pattern is not None:
        qio(str(path), f"write -P {pattern:#x} 0 1M")


def test_volume_import_export_and_bad_images(state_dir, tmp_path):
    # imports read only from import_dirs, exports write only into export_dirs
    xin, xout = tmp_path / "in", tmp_path / "out"
    xin.mkdir()
    xout.mkdir()
    y = Yund(state_dir, ["--set", f"import_dirs={xin}", "--set", f"export_dirs={xout}"]).start()
    try:
        import_export_and_bad_images(y, tmp_path, xin, xout)
    finally:
        y.stop()


def import_export_and_bad_images(y, tmp_path, xin, xout):
    src = xin / "good.qcow2"
    make_qcow2(src, pattern=0x5a)
    y.yun("volume", "import", "e2e-imp", str(src))
    st, v = y.request("GET", "/v1/volumes/e2e-imp")
    assert v["format"] == "qcow2" and v["virtual_size"] == 16 << 20
    assert pattern_is(v["path"], 0, 1 << 20, 0x5a)
    # a linked clone may come in when its backing file is a volume of the pool
    over = xin / "over.qcow2"
    make_qcow2(over, backing=v["path"])
    qio(str(over), "write -P 0x6b 1M 1M")
    y.yun("volume", "import", "e2e-imp-lc", str(over))
    st, lc = y.request("GET", "/v1/volumes/e2e-imp-lc")
    assert lc["backing"] == "e2e-imp"
    # export flattens the chain into one standalone file
    out = xout / "flat.raw"
    y.yun("volume", "export", "e2e-imp-lc", str(out), "--format", "raw")
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(out)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "raw" and "backing-filename" not in info
    subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw", lc["path"], str(out)],
                   check=True, capture_output=True)
    p = y.yun("volume", "export", "e2e-imp-lc", str(out), check=False)
    assert p.returncode == 1 and "exists" in p.stderr
    # its temporary file is never someone else's (here: a planted symlink)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, str(xout / "other.qcow2.part"))
    st, b = y.request("POST", "/v1/volumes/e2e-imp/actions/export",
                      {"path": str(xout / "other.qcow2")})
    assert st == 409 and victim.read_text() == "keep me"
    assert not (xout / "other.qcow2").exists()
    st, b = y.request("POST", "/v1/volumes/e2e-imp/actions/export", {"path": "rel.qcow2"})
    assert st == 400
    st, b = y.request("POST", "/v1/volumes/e2e-imp/actions/export",
                      {"path": os.path.join(y.state_dir, "x.qcow2")})
    assert st == 400 and f"outside export_dirs ({xout})" in b["error"]["message"], b
    assert not os.path.exists(os.path.join(y.state_dir, "x.qcow2"))

    # refusals: backing file outside the pool, corrupt header, corrupt flag,
    # not whole sectors, a format it is not
    outside = tmp_path / "outside-base.qcow2"
    make_qcow2(outside)
    evil = xin / "evil.qcow2"
    make_qcow2(evil, backing=str(outside))
    bad_version = xin / "badver.qcow2"
    make_qcow2(bad_version)
    with open(bad_version, "r+b") as f:
        f.seek(4)
        f.write((99).to_bytes(4, "big"))
    flagged = xin / "flagged.qcow2"
    make_qcow2(flagged)
    with open(flagged, "r+b") as f:  # incompatible feature bit 1: "corrupt"
        f.seek(72)
        bits = int.from_bytes(f.read(8), "big") | 2
        f.seek(72)
        f.write(bits.to_bytes(8, "big"))
    external = xin / "external.qcow2"  # its data lives in another host file
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    f"data_file={tmp_path / 'host-file.raw'}", str(external), "1M"], check=True)
    ragged = xin / "ragged.raw"
    ragged.write_bytes(b"\1" * 1000)
    cases = [(evil, "outside pool"), (bad_version, "version"), (flagged, "corrupt"),
             (external, "external file"),
             (ragged, "512-byte sectors"), (xin / "missing.qcow2", "cannot read"),
             (outside, "outside import_dirs")]
    for i, (path, why) in enumerate(cases):
        st, b = y.request("POST", "/v1/volumes", {"name": f"e2e-bad{i}", "source": str(path)})
        assert st == 400 and why in b["error"]["message"], (path, b)
    st, b = y.request("POST", "/v1/volumes", {"name": "e2e-bad", "source": str(src),
                                              "format": "raw"})
    assert st == 400
    st, b = y.request("POST", "/v1/volumes", {"name": "e2e-bad", "source": str(src),
                                              "size": "1G"})
    assert st == 400
    st, r = y.request("GET", "/v1/volumes")
    assert sorted(x["name"] for x in r["volumes"]) == ["e2e-imp", "e2e-imp-lc"]
    y.check_invariants()
    y.yun("volume", "delete", "e2e-imp-lc")
    y.yun("volume", "delete", "e2e-imp")


@pytest.fixture
def small_fs_state(state_dir):
    """A state dir whose VM disks and pool live on a 64 MiB tmpfs."""
    fs = os.path.join(state_dir, "fs")
    os.makedirs(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", fs], check=True)
    for d in ("vms", "pools"):
        os.makedirs(os.path.join(fs, d))
        os.symlink(os.path.join(fs, d), os.path.join(state_dir, d))
    yield state_dir, fs
    subprocess.run(["umount", "-l", fs], check=False)


def fill(fs):
    """Takes every free byte of the file system."""
    st = os.statvfs(fs)
    fd = os.open(os.path.join(fs, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, st.f_bavail * st.f_frsize)
    except OSError:
        pass
    try:
        os.lseek(fd, 0, os.SEEK_END)
        while os.write(fd, b"\1" * 4096):
            pass
    except OSError:
        pass
    os.close(fd)
    assert os.statvfs(fs).f_bavail == 0


def test_full_disk_leaves_disks_and_records_intact(small_fs_state):
    state_dir, fs = small_fs_state
    y = Yund(state_dir).start()
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-full", "--image", "tiny", "--memory", "96M")
    y.yun("volume", "create", "e2e-data", "--size", "32M")
    st, data = y.request("GET", "/v1/volumes/e2e-data")
    qio(data["path"], "write -P 0x77 0 8M")
    disk = active_disk(y, "e2e-full")
    before = {p: sha(p) for p in (data["path"], disk)}
    st, vols0 = y.request("GET", "/v1/volumes")
    fill(fs)
    attempts = [
        ("POST", "/v1/volumes", {"name": "e2e-new", "size": "16M"}),
        ("POST", "/v1/volumes/e2e-data/actions/clone", {"name": "e2e-copy", "full": True}),
        ("POST", "/v1/volumes/e2e-data/actions/clone", {"name": "e2e-link"}),
        ("POST", "/v1/vms/e2e-full/snapshots", {"name": "s"}),
        ("POST", "/v1/vms", {"name": "e2e-full2", "image": "tiny", "memory_mb": 96}),
    ]
    for method, path, body in attempts:
        st, b = y.request(method, path, body)
        if st == 202:  # a full clone is a task: the task fails
            t = y.task_wait((st, b))
            st, b = 507, {"error": t.get("error", {})}
            assert t["state"] == "failed", t
        assert st == 507 and b["error"]["code"] == "no_space", (path, st, b)
    # nothing half-made, nothing changed
    st, vols1 = y.request("GET", "/v1/volumes")
    assert vols1 == vols0
    assert [v["name"] for v in y.request("GET", "/v1/vms")[1]["vms"]] == ["e2e-full"]
    assert y.request("GET", "/v1/vms/e2e-full/snapshots")[1]["snapshots"] == []
    assert {p: sha(p) for p in before} == before
    y.check_invariants()
    # with space again, the same requests succeed
    os.unlink(os.path.join(fs, "filler"))
    for method, path, body in attempts:
        st, b = y.request(method, path, body)
        if st == 202:
            st = 201 if y.task_wait((st, b))["state"] == "succeeded" else st
        assert st == 201, (path, st, b)
    assert pattern_is(os.path.join(fs, "pools", "default", "e2e-copy.qcow2"), 0, 8 << 20, 0x77)
    y.check_invariants()
    for vm in ("e2e-full", "e2e-full2"):
        y.yun("vm", "delete", vm)
    for vol in ("e2e-link", "e2e-copy", "e2e-new", "e2e-data"):
        y.yun("volume", "delete", vol)
    y.stop()
