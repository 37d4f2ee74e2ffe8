"""cgroups when several yunds share a machine (as a cluster's agents will):
each yund has its own parent, each VM a group named by its id, so two VMs of
the same name under two yunds never share a group or its limits. A start's
QEMU runs boosted until the guest is let go, then under the VM's policy."""
import atexit
import os
import shutil
import subprocess
import tempfile

from conftest import YUN, Yund, _cleanup, qemu_pids_for, wait_for

CPU = "/sys/fs/cgroup/cpu"
MEM = "/sys/fs/cgroup/memory"


def cgroup_of(pid, controller):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            if controller in ctls.split(","):
                return path
    raise AssertionError(f"no {controller} cgroup for pid {pid}")


def yund_id(y):
    with open(os.path.join(y.state_dir, "yund.id")) as f:
        return f.read().strip()


def read(path):
    with open(path) as f:
        return f.read().strip()


def test_two_yunds_same_vm_name_get_separate_groups(yund):
    other_dir = tempfile.mkdtemp(prefix="yun-e2e-", dir="/tmp")
    other = Yund(other_dir).start()
    try:
        for y, mem in ((yund, "96M"), (other, "128M")):
            y.ensure_tiny()
            y.yun("vm", "create", "e2e-twin", "--image", "tiny", "--memory", mem,
                  "--cpu-weight", "300", "--start")
        a, b = yund.vm("e2e-twin"), other.vm("e2e-twin")
        ga, gb = cgroup_of(a["pid"], "memory"), cgroup_of(b["pid"], "memory")
        assert ga == f"/yun/y-{yund_id(yund)}/vm-{a['id']}", ga
        assert gb == f"/yun/y-{yund_id(other)}/vm-{b['id']}", gb
        assert yund_id(yund) != yund_id(other)
        # each group has its own VM's limit
        la = int(read(f"{MEM}{ga}/memory.limit_in_bytes"))
        lb = int(read(f"{MEM}{gb}/memory.limit_in_bytes"))
        assert lb - la == 32 << 20 or lb - la == 40 << 20, (la, lb)
        assert read(f"{CPU}{cgroup_of(a['pid'], 'cpu')}/cpu.shares") == str(300 * 1024 // 100)
        # stopping one VM removes only its group
        yund.yun("vm", "stop", "--force", "e2e-twin")
        wait_for(lambda: yund.vm("e2e-twin")["state"] == "stopped", 20, what="stopped")
        # removed on a timer while the kernel still holds it (~1 s at most)
        wait_for(lambda: not os.path.exists(f"{MEM}{ga}"), 5, what="its group to be removed")
        assert os.path.isdir(f"{MEM}{gb}") and cgroup_of(b["pid"], "memory") == gb
        other.check_invariants()
        yund.check_invariants()
    finally:
        other.stop()
        _cleanup(other_dir)


def test_start_runs_boosted_until_the_guest_runs(state_dir):
    """While QEMU starts up (held here before exec, already in its group) the
    group has the highest weight and no quota; once the guest runs, the VM's
    own weight and quota apply."""
    # outside the (root-only) state directory: the wrapper runs as the VM's uid
    gdir = tempfile.mkdtemp(prefix="yun-gate-", dir="/tmp")
    os.chmod(gdir, 0o755)
    atexit.register(shutil.rmtree, gdir, True)
    gate = os.path.join(gdir, "gate")
    os.mkfifo(gate, 0o644)
    wrapper = os.path.join(gdir, "qemu-system-gated")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nread x < {gate}\nexec qemu-system-x86_64 "$@"\n')
    os.chmod(wrapper, 0o755)
    y = Yund(state_dir, ["--set", f"qemu={wrapper}"]).start()
    opened = False

    def release():
        nonlocal opened
        if not opened:
            opened = True
            with open(gate, "w") as f:
                f.write("go\n")
    try:
        y.ensure_tiny()
        y.yun("vm", "create", "e2e-boost", "--image", "tiny", "--memory", "96M",
              "--cpu-weight", "50", "--cpu-max", "50%")
        vid = y.vm("e2e-boost")["id"]
        p = subprocess.Popen([YUN, "--socket", y.sock, "vm", "start", "e2e-boost"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        held = wait_for(lambda: qemu_pids_for(state_dir), 20, what="the held qemu")[0]
        group = f"{CPU}/yun/y-{yund_id(y)}/vm-{vid}"
        assert cgroup_of(held, "cpu") == group[len(CPU):]
        assert read(f"{group}/cpu.shares") == str(10000 * 1024 // 100)  # weight 10000
        assert read(f"{group}/cpu.cfs_quota_us") == "-1"
        release()
        assert p.wait(timeout=60) == 0, p.stderr.read()
        assert read(f"{group}/cpu.shares") == str(50 * 1024 // 100)
        assert read(f"{group}/cpu.cfs_quota_us") == "50000"
        y.check_invariants()
    finally:
        release()  # yund waits for QEMU's start-up: never leave it blocked
        y.stop()
