"""Crash safety of start and stop, with deterministic crash windows.

A start whose yund dies before QEMU has written its pidfile, a graceful stop
whose yund dies during the grace period, and a start that QEMU itself
refuses. The crash window is held open by a wrapper that waits on a FIFO
before it execs QEMU, so nothing here depends on timing."""
import atexit
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile

import pytest

from conftest import YUN, YUND, Yund, pid_alive, qemu_pids_for, wait_for


def write_script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)


def gate_dir():
    """Where the wrapper and its FIFO live: not in the state directory, which
    is root's alone, while QEMU (and so the wrapper) starts as the VM's uid."""
    d = tempfile.mkdtemp(prefix="yun-gate-", dir="/tmp")
    os.chmod(d, 0o755)
    atexit.register(shutil.rmtree, d, True)
    return d


def gated_yund(state_dir, *extra):
    """A yund whose QEMU waits for a line on a FIFO (gate) before it runs.
    The wrapper's name contains "qemu-system" so the invariant checker counts
    it as the VM's process, which it is: it becomes QEMU by exec."""
    d = gate_dir()
    gate = os.path.join(d, "gate")
    os.mkfifo(gate, 0o644)
    wrapper = os.path.join(d, "qemu-system-gated")
    write_script(wrapper, f'read x < {gate}\nexec qemu-system-x86_64 "$@"\n')
    y = Yund(state_dir, ["--set", f"qemu={wrapper}", *extra]).start()
    y.ensure_tiny()
    return y, gate


def kill9_mid_start(y, name):
    """Starts vm name and kills yund while its QEMU is held before exec,
    that is before any pidfile exists. Returns the held process's pid."""
    y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M")
    p = subprocess.Popen([YUN, "--socket", y.sock, "vm", "start", name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids = wait_for(lambda: qemu_pids_for(y.state_dir), 20, what="the held qemu")
    y.kill9()
    p.wait()
    vmdir = os.path.join(y.state_dir, "vms", y_vm_id(y, name))
    assert not os.path.exists(os.path.join(vmdir, "qemu.pid"))
    return pids[0]


def y_vm_id(y, name):
    return [d for d in os.listdir(os.path.join(y.state_dir, "vms"))][0]


def test_kill9_before_pidfile_keeps_one_qemu(state_dir):
    y, gate = gated_yund(state_dir)
    held = kill9_mid_start(y, "e2e-gate")
    y.start()
    # The row must not claim the VM stopped while its QEMU is on its way...
    v = y.vm("e2e-gate")
    assert v["state"] == "starting", v
    # ... so a second start is refused and removes nothing of the first.
    r = y.yun("vm", "start", "e2e-gate", check=False)
    assert r.returncode != 0 and "already starting" in r.stderr, r.stderr
    assert pid_alive(held) and qemu_pids_for(state_dir) == [held]
    # Let that QEMU run: yund adopts it and finishes the start.
    with open(gate, "w") as f:
        f.write("go\n")
    v = wait_for(lambda: (lambda v: v if v["state"] == "running" else None)(y.vm("e2e-gate")),
                 30, what="the adopted start to finish")
    assert v["qmp_status"] == "running"
    y.wait_marker("e2e-gate")
    # QEMU daemonised (a new pid); exactly that one process is left
    wait_for(lambda: qemu_pids_for(state_dir) == [v["pid"]], 10, what="one qemu")
    # found by the process table, it got its pidfile back (the fast path)
    with open(os.path.join(state_dir, "vms", v["id"], "qemu.pid")) as f:
        assert int(f.read()) == v["pid"]
    y.check_invariants()
    y.stop()


def test_delete_force_ends_a_qemu_without_pidfile(state_dir):
    y, gate = gated_yund(state_dir)
    held = kill9_mid_start(y, "e2e-gate-del")
    y.start()
    y.yun("vm", "delete", "--force", "e2e-gate-del")
    # the held process was ended before the directory went
    wait_for(lambda: not pid_alive(held), 10, what="the held qemu to be ended")
    assert qemu_pids_for(state_dir) == []
    assert os.listdir(os.path.join(state_dir, "vms")) == []
    y.check_invariants()
    y.stop()


def test_qemu_error_text_reaches_the_api(yund):
    """QEMU reports its errors in qemu.log once it daemonises; the API error
    must carry that text, not "no message"."""
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-locked", "--image", "tiny", "--memory", "96M")
    vid = yund.vm("e2e-locked")["id"]
    disk = os.path.join(yund.state_dir, "vms", vid, "disk.qcow2")
    # another process holds the disk's write lock, as a leftover QEMU would
    holder = subprocess.Popen(["qemu-io", "-f", "qcow2", disk, "-c", "sleep 120000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # its OFD lock shows in /proc/locks (asking qemu-img would take a
        # lock itself and race qemu-io for it)
        ino = os.stat(disk).st_ino

        def locked():
            with open("/proc/locks") as f:
                return any(f":{ino} " in line for line in f)
        wait_for(lambda: holder.poll() is not None or locked(), 10,
                 what="qemu-io to take the lock")
        assert holder.poll() is None, holder.stderr.read()
        st, r = yund.request("POST", "/v1/vms/e2e-locked/actions/start")
        assert st == 500, r
        msg = r["error"]["message"]
        assert "lock" in msg, msg
        assert yund.vm("e2e-locked")["state"] == "stopped"
    finally:
        holder.kill()
        holder.wait()
    yund.yun("vm", "start", "e2e-locked")
    assert yund.vm("e2e-locked")["state"] == "running"
    yund.check_invariants()


def stopping_then_kill9(y, name, *create_args):
    y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", *create_args, "--start")
    y.wait_marker(name)
    return y


def test_stop_deadline_survives_kill9_of_a_paused_vm(state_dir):
    """pause, stop, kill -9: a paused guest never powers off, so only the
    deadline ends it; it must be re-armed after the restart."""
    y = Yund(state_dir, ["--set", "stop_timeout=3"]).start()
    y.ensure_tiny()
    stopping_then_kill9(y, "e2e-pstop")
    y.yun("vm", "pause", "e2e-pstop")
    st, r = y.request("POST", "/v1/vms/e2e-pstop/actions/stop")
    assert st == 200 and r["state"] == "stopping", r
    y.kill9()
    y.start()
    v = wait_for(lambda: (lambda v: v if v["state"] == "stopped" else None)(y.vm("e2e-pstop")),
                 30, what="the re-armed stop deadline to end the paused vm")
    assert v["desired"] == "stopped" and v["pid"] == 0
    assert qemu_pids_for(state_dir) == []
    y.check_invariants()
    y.stop()


def test_stop_deadline_survives_kill9_when_guest_ignores_acpi(state_dir):
    """A guest without ACPI ignores the power button: after kill -9 and a
    restart the row must neither return to running nor stay stopping."""
    y = Yund(state_dir, ["--set", "stop_timeout=3"]).start()
    y.ensure_tiny()
    stopping_then_kill9(y, "e2e-deaf", "--cmdline", "console=ttyS0 panic=-1 quiet acpi=off")
    st, r = y.request("POST", "/v1/vms/e2e-deaf/actions/stop")
    assert st == 200 and r["state"] == "stopping", r
    y.kill9()
    y.start()
    assert y.vm("e2e-deaf")["state"] == "stopping"
    v = wait_for(lambda: (lambda v: v if v["state"] == "stopped" else None)(y.vm("e2e-deaf")),
                 30, what="the re-armed stop deadline to end the deaf guest")
    assert v["desired"] == "stopped"
    assert any("did not power off" in e["reason"] for e in y.events("e2e-deaf"))
    y.check_invariants()
    y.stop()


def test_unreadable_proc_is_not_a_dead_qemu(yund):
    """With yund out of descriptors, reconcile cannot read /proc: it must say
    "cannot tell" and leave running VMs alone, not call them stopped."""
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-nofd", "--image", "tiny", "--memory", "96M", "--start")
    v = yund.vm("e2e-nofd")
    pid = yund.proc.pid
    # a soft limit below what yund holds: every open() fails with EMFILE
    soft = subprocess.run(["prlimit", f"--pid={pid}", "--nofile", "--raw", "--noheadings",
                           "--output=SOFT"], capture_output=True, text=True, check=True)
    subprocess.run(["prlimit", f"--pid={pid}", "--nofile=3:"], check=True)
    try:
        # either verdict of a pass shows in the log: "cannot tell", or (the
        # defect) the VM's exit
        wait_for(lambda: any(m in yund.logtext(tail=200000)
                             for m in ("cannot tell whether vm e2e-nofd", "e2e-nofd exit")),
                 30, what="a reconcile pass without descriptors")
    finally:
        subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={soft.stdout.strip()}:"],
                       check=True)
    assert "e2e-nofd exit" not in yund.logtext(tail=200000)
    after = yund.vm("e2e-nofd")
    assert after["state"] == "running" and after["pid"] == v["pid"], after
    assert not [e for e in yund.events("e2e-nofd") if e["action"] == "exit"]
    assert pid_alive(v["pid"])
    yund.check_invariants()


def test_force_stop_of_a_start_yund_did_not_finish(state_dir):
    """A restarted yund holds the row "starting" while the earlier start's
    QEMU is on its way; a force-stop then must end that process (QMP does
    not answer yet) and the row must end stopped, not paused or running."""
    y, gate = gated_yund(state_dir)
    held = kill9_mid_start(y, "e2e-gate-stop")
    y.start()
    assert y.vm("e2e-gate-stop")["state"] == "starting"
    y.yun("vm", "stop", "--force", "e2e-gate-stop")
    wait_for(lambda: not pid_alive(held), 10, what="the held qemu to be ended")
    v = wait_for(lambda: (lambda v: v if v["state"] == "stopped" else None)(
        y.vm("e2e-gate-stop")), 30, what="the row to say stopped")
    assert v["desired"] == "stopped" and v["pid"] == 0, v
    assert qemu_pids_for(state_dir) == []
    y.check_invariants()
    y.stop()


def _has_point(point):
    try:
        out = subprocess.run([YUND, "--failpoints"], capture_output=True, text=True,
                             timeout=30).stdout
    except OSError:
        return False
    return point in out.split()


@pytest.mark.skipif(not _has_point("vm_start.after_watch"),
                    reason="yund built without fault points (make SAN=1)")
def test_interrupted_start_of_a_vm_to_be_stopped_is_ended(state_dir):
    """yund dies with the VM's QEMU in prelaunch (vm_start.after_watch), and
    the row says the VM is to be stopped (as a stop recorded then would):
    after the restart reconcile has that QEMU ended (the controller over the
    agent's vm.end), not continued, and the row ends stopped."""
    name = "e2e-ist"
    y = Yund(state_dir).start()
    y.ensure_tiny()
    y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M")
    y.stop()
    os.environ["YUN_FAILPOINT"] = "vm_start.after_watch"
    try:
        y = Yund(state_dir).start()
    finally:
        del os.environ["YUN_FAILPOINT"]
    try:
        y.request("POST", f"/v1/vms/{name}/actions/start", timeout=120)
    except OSError:
        pass  # yund died mid-request
    y.proc.wait(timeout=60)
    assert y.proc.returncode == -signal.SIGKILL, y.proc.returncode
    held = qemu_pids_for(state_dir)
    assert held, "the interrupted start left no qemu"
    db = sqlite3.connect(os.path.join(state_dir, "yun.db"))
    db.execute("UPDATE vms SET desired='stopped' WHERE name=?", (name,))
    db.commit()
    db.close()
    y = Yund(state_dir).start()
    v = wait_for(lambda: (lambda v: v if v["state"] == "stopped" else None)(y.vm(name)), 30,
                 what="the interrupted start's qemu to be ended")
    assert v["desired"] == "stopped" and v["pid"] == 0, v
    assert not any(pid_alive(p) for p in held)
    assert qemu_pids_for(state_dir) == []
    assert any("ending the qemu of an interrupted start" in e["reason"] for e in y.events(name))
    y.check_invariants()
    y.stop()
