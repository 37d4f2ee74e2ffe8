"""QEMU confinement with real QEMU: each VM's QEMU runs as a uid of its own
(never root), with no capabilities, a seccomp filter and no_new_privs, and
cannot open another VM's disk; the uid is kept across restarts, claimed
machine-wide and released on delete; qemu_confine=0 runs QEMU as before."""
import json
import os
import subprocess

from conftest import YUND, Yund, qemu_pids_for, qmp_reply, wait_for



def private_uids(state_dir):
    """Claims in the state directory (so a test can look at them) and a uid
    range of their own: a private claim directory does not see the
    machine-wide claims, so the default range could hand out a uid another
    yund's VM runs as, and each yund would take the other's QEMU for its own."""
    return ["--set", f"qemu_uid_dir={os.path.join(state_dir, 'uids')}",
            "--set", "qemu_uid_min=1900100000", "--set", "qemu_uid_max=1900165535"]

def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.split()
    return fields


def qmp(y, vm, command, args=None):
    """The whole reply (return or error)."""
    return qmp_reply(y, vm, command, args)


def claim_dir(y):
    return os.path.join(y.state_dir, "uids")


UID_MIN = 1900150000  # inside private_uids()'s range, outside the default one


def test_each_qemu_runs_as_its_own_unprivileged_uid(state_dir):
    # stale claims are taken over: one cut short by a crash (empty), one
    # whose VM directory is gone (its yund's state was wiped)
    os.makedirs(os.path.join(state_dir, "uids"))
    open(os.path.join(state_dir, "uids", str(UID_MIN)), "w").close()
    with open(os.path.join(state_dir, "uids", str(UID_MIN + 1)), "w") as f:
        f.write("0badc0de-0000-4000-8000-000000000000 /nonexistent/vms\n")
    y = Yund(state_dir, [*private_uids(state_dir),
                         "--set", f"qemu_uid_min={UID_MIN}",
                         "--set", f"qemu_uid_max={UID_MIN + 99}"]).start()
    y.ensure_tiny()
    names = ["e2e-confine-a", "e2e-confine-b"]
    for n in names:
        y.yun("vm", "create", n, "--image", "tiny", "--memory", "96M", "--start")
    vms = [y.vm(n) for n in names]
    st = [status(v["pid"]) for v in vms]
    uids = []
    for s in st:
        assert s["Uid"][0] != "0" and len(set(s["Uid"])) == 1, s["Uid"]  # real = effective = saved
        assert s["Gid"][0] != "0" and len(set(s["Gid"])) == 1, s["Gid"]
        assert s["Groups"] == [s["Gid"][0]]
        assert int(s["CapEff"][0], 16) == 0 and int(s["CapPrm"][0], 16) == 0
        assert int(s["CapInh"][0], 16) == 0 and int(s["CapAmb"][0], 16) == 0
        assert s["Seccomp"] == ["2"] and s["NoNewPrivs"] == ["1"]
        uids.append(int(s["Uid"][0]))
    assert uids == [UID_MIN, UID_MIN + 1]
    # the uid is recorded, claimed in the machine-wide directory, and owns
    # the VM's directory and the files QEMU writes (only those)
    for v, uid in zip(vms, uids):
        vmdir = os.path.join(state_dir, "vms", v["id"])
        with open(os.path.join(claim_dir(y), str(uid))) as f:
            assert f.read() == f"{v['id']} {os.path.join(state_dir, 'vms')}\n"
        for f in ("", v["disk"], "console.log", "qemu.log"):
            sb = os.stat(os.path.join(vmdir, f))
            assert (sb.st_uid, sb.st_gid) == (uid, uid), f
            assert sb.st_mode & 0o077 == 0, f
    img = os.stat(os.path.join(state_dir, "images", "tiny", "disk.qcow2"))
    assert img.st_uid == 0

    # QEMU A cannot open B's disk, whatever the path; it can open a file of
    # its own directory (by the name relative to it: its working directory)
    bdisk = os.path.join(state_dir, "vms", vms[1]["id"], vms[1]["disk"])
    for path in (bdisk, f"../{vms[1]['id']}/{vms[1]['disk']}",
                 os.path.join(state_dir, "images", "tiny", "disk.qcow2")):
        r = qmp(y, names[0], "blockdev-add", {
            "driver": "qcow2", "node-name": "e2e-probe", "read-only": True,
            "file": {"driver": "file", "filename": path}})
        assert "error" in r and "Permission denied" in r["error"]["desc"], (path, r)
    adir = os.path.join(state_dir, "vms", vms[0]["id"])
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                    os.path.join(adir, "probe.qcow2"), "1M"], check=True)
    os.chown(os.path.join(adir, "probe.qcow2"), uids[0], uids[0])
    r = qmp(y, names[0], "blockdev-add", {
        "driver": "qcow2", "node-name": "e2e-probe",
        "file": {"driver": "file", "filename": "probe.qcow2"}})
    assert r == {"return": {}}, r
    assert qmp(y, names[0], "blockdev-del", {"node-name": "e2e-probe"}) == {"return": {}}
    os.unlink(os.path.join(adir, "probe.qcow2"))

    # a confined QEMU is still stopped (quit) and killed by yund, and sits
    # in its cgroup
    with open(f"/proc/{vms[0]['pid']}/cgroup") as f:
        assert f"/vm-{vms[0]['id']}" in f.read()
    y.yun("vm", "stop", "--force", names[0])
    assert y.vm(names[0])["state"] == "stopped"
    # it keeps its uid across a restart of the VM and of yund
    y.yun("vm", "start", names[0])
    assert int(status(y.vm(names[0])["pid"])["Uid"][0]) == uids[0]
    y.stop()
    y.start()
    y.yun("vm", "stop", "--force", names[0])
    y.yun("vm", "start", names[0])
    assert int(status(y.vm(names[0])["pid"])["Uid"][0]) == uids[0]
    y.check_invariants()

    # a claim held by another yund's VM is never taken: B's uid is claimed
    # for a VM elsewhere (its directory exists), so B gets a new uid
    y.yun("vm", "stop", "--force", names[1])
    other = os.path.join(state_dir, "other", "vms", "0badc0de-0000-4000-8000-000000000000")
    os.makedirs(other)
    with open(os.path.join(claim_dir(y), str(uids[1])), "w") as f:
        f.write(f"0badc0de-0000-4000-8000-000000000000 {os.path.dirname(other)}\n")
    y.yun("vm", "start", names[1])
    nb = int(status(y.vm(names[1])["pid"])["Uid"][0])
    assert nb not in (uids[0], uids[1])
    assert os.stat(os.path.join(state_dir, "vms", vms[1]["id"])).st_uid == nb

    # delete releases the claim and removes the directory
    for n in names:
        y.yun("vm", "delete", "--force", n)
    assert sorted(os.listdir(claim_dir(y))) == [".lock", str(uids[1])]  # only the other's
    assert os.listdir(os.path.join(state_dir, "vms")) == []
    y.check_invariants()
    y.stop()


def test_confinement_off_runs_qemu_as_before(state_dir):
    y = Yund(state_dir, ["--set", "qemu_confine=0",
                         *private_uids(state_dir)]).start()
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-confine-off", "--image", "tiny", "--memory", "96M", "--start")
    s = status(y.vm("e2e-confine-off")["pid"])
    assert s["Uid"][0] == "0" and s["Seccomp"] == ["0"]
    # snapshots work as for a confined QEMU (yund writes the headers)
    y.yun("snapshot", "create", "e2e-confine-off", "s1")
    y.yun("snapshot", "delete", "e2e-confine-off", "s1")
    wait_for(lambda: json.loads(y.yun("-o", "json", "snapshot", "list",
                                      "e2e-confine-off").stdout) == [],
             30, interval=0.2, what="the merge of s1")
    y.yun("vm", "delete", "--force", "e2e-confine-off")
    y.check_invariants()
    y.stop()
    p = subprocess.run([YUND, "-s", state_dir, "--set",
                        "qemu_uid_min=70000", "--set", "qemu_uid_max=60000"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "qemu_uid_min" in p.stderr


def test_confined_qemu_keeps_its_disk_work(state_dir):
    """What a confined QEMU must open after start-up: a hot-plugged linked
    clone (and the volume under it, both outside its directory), a live
    snapshot's new layer, and an intermediate layer reopened read-write by a
    merge after the VM restarted (it was opened by the name in its child's
    header)."""
    y = Yund(state_dir, [*private_uids(state_dir)]).start()
    y.ensure_tiny()
    vm = "e2e-confine-disks"
    y.yun("vm", "create", vm, "--image", "tiny", "--memory", "96M")
    y.yun("snapshot", "create", vm, "s1")
    y.yun("snapshot", "create", vm, "s2")
    y.yun("vm", "start", vm)
    # chain: image <- s1's file <- s2's file <- active; deleting s1 streams
    # into s2's file, which QEMU opened read-only as a backing file
    y.yun("snapshot", "delete", vm, "s1")
    wait_for(lambda: [s["name"] for s in json.loads(
        y.yun("-o", "json", "snapshot", "list", vm).stdout)] == ["s2"], 30, interval=0.2,
        what="the merge of s1")
    assert ("snapshot-delete", "ok") in [(e["action"], e["result"]) for e in y.events(vm)]
    # live snapshot: QEMU makes the new layer itself, as the VM's uid
    y.yun("snapshot", "create", vm, "live")
    v = y.vm(vm)
    uid = int(status(v["pid"])["Uid"][0])
    layer = os.stat(os.path.join(state_dir, "vms", v["id"], v["disk"]))
    assert (layer.st_uid, layer.st_mode & 0o777) == (uid, 0o600)
    # hot-plug a linked clone: both files come to QEMU as fds
    y.yun("volume", "create", "e2e-confine-base", "--size", "16M")
    y.yun("volume", "clone", "e2e-confine-base", "e2e-confine-clone")
    y.yun("volume", "attach", "e2e-confine-clone", vm)
    st, c = y.request("GET", "/v1/volumes/e2e-confine-clone")
    assert c["state"] == "attached"
    nodes = qmp(y, vm, "query-named-block-nodes")["return"]
    node = [n for n in nodes if n["node-name"] == "vol-" + c["id"].replace("-", "")[:12]]
    assert node and '"filename": "/dev/fdset/' in node[0]["file"]
    assert node[0]["backing_file"].startswith("/dev/fdset/")  # the base volume, read-only
    assert node[0]["image"]["backing-image"]["virtual-size"] == 16 << 20
    # the clone's header still names the base volume by its path
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", c["path"]],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"].endswith("/e2e-confine-base.qcow2")
    # the guest still runs; yund restarts and finds everything as it was
    y.stop()
    y.start()
    assert y.vm(vm)["state"] == "running"
    y.yun("vm", "stop", "--force", vm)
    subprocess.run(["qemu-img", "check", os.path.join(state_dir, "vms", v["id"], v["disk"])],
                   check=True, capture_output=True)
    y.check_invariants()
    y.yun("vm", "delete", vm)
    y.check_invariants()
    y.stop()


def fd_targets(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def test_qemu_starts_unprivileged_under_the_full_filter(state_dir):
    """QEMU never runs as root: yund's child drops to the VM's uid before
    exec, so the filter forbids setuid too (elevateprivileges=deny). What it
    needs from outside its directory it inherits as fds: the image under its
    disk, the kernel and initrd (memfd copies), a cold-plugged volume; and
    nothing else: not another VM's disk, not an image it does not use."""
    y = Yund(state_dir, [*private_uids(state_dir)]).start()
    y.ensure_tiny()
    other_img = os.path.join(state_dir, "exchange", "other.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", other_img, "16M"], check=True)
    y.yun("image", "import", other_img, "--name", "e2e-other")
    y.yun("volume", "create", "e2e-unpriv-vol", "--size", "16M")
    names = ["e2e-unpriv-a", "e2e-unpriv-b"]
    for n in names:
        y.yun("vm", "create", n, "--image", "tiny", "--memory", "96M")
    y.yun("volume", "attach", "e2e-unpriv-vol", names[0])  # cold-plugged at the start
    for n in names:
        y.yun("vm", "start", n)
    a, b = y.vm(names[0]), y.vm(names[1])
    st, vol = y.request("GET", "/v1/volumes/e2e-unpriv-vol")
    s = status(a["pid"])
    uid = os.stat(os.path.join(state_dir, "vms", a["id"])).st_uid
    assert uid != 0
    assert s["Uid"] == [str(uid)] * 4 and s["Gid"] == [str(uid)] * 4 and s["Groups"] == [str(uid)]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(s[cap][0], 16) == 0, (cap, s[cap])
    # no_new_privs, a seccomp filter that forbids setuid/setgid (no way back
    # to root: no capability left, none to be had, and the call is denied)
    assert s["NoNewPrivs"] == ["1"] and s["Seccomp"] == ["2"]
    with open(f"/proc/{a['pid']}/cmdline", "rb") as f:
        args = f.read().decode().split("\0")
    assert args[args.index("-sandbox") + 1] == \
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
    assert "-runas" not in args and "-daemonize" not in args
    # what it holds: its image and volume (by fd), kernel and initrd (memfd)
    tiny = os.path.join(state_dir, "images", "tiny", "disk.qcow2")
    fds = fd_targets(a["pid"])
    assert tiny in fds and vol["path"] in fds, fds
    assert len([t for t in fds if t.startswith("/memfd:yun-boot")]) == 2, fds
    bdisk = os.path.join(state_dir, "vms", b["id"], b["disk"])
    assert bdisk not in fds and not [t for t in fds if "e2e-other" in t], fds
    # and by name it can open neither another VM's disk nor an image it
    # does not use
    st, other = y.request("GET", "/v1/images/e2e-other")
    for path in (bdisk, f"../{b['id']}/{b['disk']}", other["path"]):
        r = qmp(y, names[0], "blockdev-add", {
            "driver": "qcow2", "node-name": "e2e-probe", "read-only": True,
            "file": {"driver": "file", "filename": path}})
        assert "error" in r and "Permission denied" in r["error"]["desc"], (path, r)
    # the guest runs; a live snapshot's layer names the old one relatively
    # (yund writes it, not QEMU, whose name for it would be a json: chain)
    y.wait_marker(names[0])
    y.yun("snapshot", "create", names[0], "live")
    a = y.vm(names[0])
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json",
         os.path.join(state_dir, "vms", a["id"], a["disk"])],
        capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"] == "disk.qcow2", info
    # merging it into the image streams through the image's fd; the header
    # then names the image by its path again
    y.yun("snapshot", "delete", names[0], "live")
    wait_for(lambda: json.loads(y.yun("-o", "json", "snapshot", "list", names[0]).stdout) == [],
             30, interval=0.2, what="the merge into the image")
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json",
         os.path.join(state_dir, "vms", a["id"], a["disk"])],
        capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"] == tiny, info
    # detached, the volume is closed for good (its fdset went after the start)
    y.yun("volume", "detach", "e2e-unpriv-vol")
    wait_for(lambda: vol["path"] not in fd_targets(a["pid"]), 10, what="the volume's fd to close")
    y.check_invariants()
    for n in names:
        y.yun("vm", "delete", "--force", n)
    y.check_invariants()
    y.stop()


def test_disk_headers_are_checked_before_qemu_gets_fds(state_dir):
    """The layers of a VM's disk are written by its (unprivileged) QEMU, and
    yund opens the file under them as root: a header naming anything but the
    VM's own directory or its image is refused. A layer of an older yund,
    naming one in the directory by absolute path, is made relative."""
    y = Yund(state_dir, [*private_uids(state_dir)]).start()
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-hdr", "--image", "tiny", "--memory", "96M")
    y.yun("vm", "create", "e2e-hdr-other", "--image", "tiny", "--memory", "96M")
    y.yun("snapshot", "create", "e2e-hdr", "s1")
    v, o = y.vm("e2e-hdr"), y.vm("e2e-hdr-other")
    vdir = os.path.join(state_dir, "vms", v["id"])
    active = os.path.join(vdir, v["disk"])
    foreign = os.path.join(state_dir, "vms", o["id"], o["disk"])
    subprocess.run(["qemu-img", "rebase", "-u", "-F", "qcow2", "-b", foreign, active], check=True)
    st, r = y.request("POST", "/v1/vms/e2e-hdr/actions/start")
    assert st == 409 and "neither in its directory nor its image" in r["error"]["message"], r
    assert y.vm("e2e-hdr")["state"] == "stopped"
    assert qemu_pids_for(state_dir) == []  # no QEMU was started, no file opened for it
    # as an older yund wrote it: the snapshot's file by its absolute path
    subprocess.run(["qemu-img", "rebase", "-u", "-F", "qcow2", "-b",
                    os.path.join(vdir, "disk.qcow2"), active], check=True)
    y.yun("vm", "start", "e2e-hdr")
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", active],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["backing-filename"] == "disk.qcow2", info
    y.wait_marker("e2e-hdr")
    y.check_invariants()
    y.yun("vm", "delete", "--force", "e2e-hdr")
    y.yun("vm", "delete", "e2e-hdr-other")
    y.stop()
