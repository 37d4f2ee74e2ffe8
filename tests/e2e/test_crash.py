"""Crash safety: yund killed with -9 at awkward moments, QEMU killed from
outside. After every restart the invariants hold: every QEMU has a row, every
running row has its QEMU, no orphan directories, never a duplicate QEMU."""
import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time

from conftest import YUN, pid_alive, qemu_pids_for, wait_for, yund_cgroup_dirs


def write_script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)


def test_kill9_mid_run_reattaches_and_notices_deaths(yund):
    yund.ensure_tiny()
    for n in ("e2e-k1", "e2e-k2"):
        yund.yun("vm", "create", n, "--image", "tiny", "--memory", "96M", "--start")
    p1, p2 = yund.vm("e2e-k1")["pid"], yund.vm("e2e-k2")["pid"]
    yund.kill9()
    assert pid_alive(p1) and pid_alive(p2)
    os.kill(p2, signal.SIGKILL)  # dies while nobody watches
    wait_for(lambda: not pid_alive(p2), 10, what="qemu 2 to die")
    yund.start()
    v1, v2 = yund.vm("e2e-k1"), yund.vm("e2e-k2")
    assert v1["state"] == "running" and v1["pid"] == p1 and v1["qmp_status"] == "running"
    assert v2["state"] == "stopped" and v2["pid"] == 0
    assert "while yund was down" in v2["last_error"]
    assert len(qemu_pids_for(yund.state_dir)) == 1  # no duplicate was started
    yund.check_invariants()
    # a second kill/restart changes nothing
    yund.kill9()
    yund.start()
    assert yund.vm("e2e-k1")["pid"] == p1
    yund.check_invariants()


def test_kill9_mid_create_rolls_back(state_dir):
    from conftest import Yund
    slow = os.path.join(state_dir, "slow-qemu-img")
    write_script(slow, 'case "$1" in create) sleep 3;; esac\nexec qemu-img "$@"\n')
    y = Yund(state_dir, ["--set", f"qemu_img={slow}"]).start()
    y.ensure_tiny()
    p = subprocess.Popen([YUN, "--socket", y.sock, "vm", "create", "e2e-half", "--image", "tiny"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    vmdir = os.path.join(state_dir, "vms")
    wait_for(lambda: os.listdir(vmdir), 10, what="the half-created vm directory")
    y.kill9()
    p.wait()
    assert p.returncode != 0
    time.sleep(3.5)  # let the orphaned qemu-img finish writing its file
    y2 = Yund(state_dir).start()
    st, _ = y2.request("GET", "/v1/vms/e2e-half")
    assert st == 404
    assert os.listdir(vmdir) == []
    ev = [e for e in y2.events("e2e-half") if e["action"] == "create"]
    assert ev and ev[-1]["result"] == "error" and "rolled back" in ev[-1]["reason"]
    y2.check_invariants()
    y2.stop()


def test_kill9_mid_start_finishes_or_reverts(state_dir):
    from conftest import Yund
    # outside the (root-only) state directory: the wrapper runs as the VM's uid
    sdir = tempfile.mkdtemp(prefix="yun-slow-", dir="/tmp")
    os.chmod(sdir, 0o755)
    atexit.register(shutil.rmtree, sdir, True)
    slow = os.path.join(sdir, "slow-qemu")
    write_script(slow, "sleep 2\nexec qemu-system-x86_64 \"$@\"\n")
    y = Yund(state_dir, ["--set", f"qemu={slow}"]).start()
    y.ensure_tiny()
    y.yun("vm", "create", "e2e-mid", "--image", "tiny", "--memory", "96M")
    p = subprocess.Popen([YUN, "--socket", y.sock, "vm", "start", "e2e-mid"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)  # yund is now waiting for the (slow) QEMU to come up
    y.kill9()
    p.wait()
    # the QEMU launched by the dead yund comes up on its own, paused (-S)
    wait_for(lambda: qemu_pids_for(state_dir), 15, what="the orphaned start's qemu")
    y2 = Yund(state_dir).start()
    # The reconcile loop finishes the interrupted start as soon as that QEMU
    # answers on QMP (it may still be initialising when yund comes back).
    v = wait_for(lambda: (lambda v: v if v["state"] == "running" else None)(y2.vm("e2e-mid")),
                 15, what="the interrupted start to be finished")
    assert v["qmp_status"] == "running"
    y2.wait_marker("e2e-mid")
    y2.check_invariants()
    y2.stop()


def test_qemu_killed_from_outside_shows_stopped_with_event(yund):
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-victim", "--image", "tiny", "--memory", "96M", "--start")
    pid = yund.vm("e2e-victim")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: yund.vm("e2e-victim")["state"] == "stopped", 5, what="state stopped")
    v = yund.vm("e2e-victim")
    assert "unexpectedly" in v["last_error"]
    exits = [e for e in yund.events("e2e-victim") if e["action"] == "exit"]
    assert exits and exits[-1]["result"] == "error"
    yund.check_invariants()
    # and it starts again cleanly
    yund.yun("vm", "start", "e2e-victim")
    assert yund.vm("e2e-victim")["state"] == "running"


def test_restart_policy_always_brings_it_back(yund):
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-phoenix", "--image", "tiny", "--memory", "96M",
             "--restart", "always", "--start")
    pid = yund.vm("e2e-phoenix")["pid"]
    os.kill(pid, signal.SIGKILL)
    v = wait_for(lambda: (lambda v: v if v["state"] == "running" and v["pid"] != pid else None)(
        yund.vm("e2e-phoenix")), 20, what="the restart")
    assert v["restarts"] == 1
    assert "restart" in [e["action"] for e in yund.events("e2e-phoenix")]
    # the exit's cgroup removal (on a timer) did not take the group the
    # restarted QEMU runs in
    for base in yund_cgroup_dirs(yund.state_dir):
        with open(os.path.join(base, f"vm-{v['id']}", "cgroup.procs")) as f:
            assert str(v["pid"]) in f.read().split(), base
    yund.check_invariants()
