"""A VM's whole life on real QEMU: create, boot to the init marker, console,
pause/resume, ACPI stop, delete; plus events and the CLI's output formats."""
import json
import os
import subprocess
import time

from conftest import YUN, MARKER, qemu_pids_for, wait_for, pid_alive


def test_full_lifecycle(yund):
    yund.ensure_tiny()
    out = yund.yun("image", "list").stdout
    assert "tiny" in out and "direct-kernel" in out

    yund.yun("vm", "create", "e2e-life", "--image", "tiny", "--memory", "128M", "--cpus", "1")
    v = yund.vm("e2e-life")
    assert v["state"] == "stopped" and v["pid"] == 0
    assert os.path.exists(os.path.join(v["directory"], "disk.qcow2"))

    yund.yun("vm", "start", "e2e-life")
    v = yund.vm("e2e-life")
    assert v["state"] == "running" and v["qmp_status"] == "running"
    assert v["accel_used"] == "tcg"  # this CPU has no vmx/svm
    assert pid_alive(v["pid"])
    yund.wait_marker("e2e-life")
    # the heartbeat keeps coming: the guest is alive, not just booted
    n = yund.console_log("e2e-life").count("yun-heartbeat")
    wait_for(lambda: yund.console_log("e2e-life").count("yun-heartbeat") > n, 20,
             what="another heartbeat")

    yund.yun("vm", "pause", "e2e-life")
    v = yund.vm("e2e-life")
    assert v["state"] == "paused" and v["qmp_status"] == "paused"
    yund.yun("vm", "resume", "e2e-life")
    v = yund.vm("e2e-life")
    assert v["state"] == "running" and v["qmp_status"] == "running"

    # a running VM cannot be deleted without --force
    p = yund.yun("vm", "delete", "e2e-life", check=False)
    assert p.returncode == 1 and "stop it first" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1

    pid = v["pid"]
    yund.yun("vm", "stop", "e2e-life")  # waits for the ACPI power-off
    v = yund.vm("e2e-life")
    assert v["state"] == "stopped" and v["pid"] == 0 and v["last_error"] == ""
    assert not pid_alive(pid)
    actions = [e["action"] for e in yund.events("e2e-life")]
    for a in ("create", "start", "pause", "resume", "stop", "qmp:shutdown", "exit"):
        assert a in actions, (a, actions)

    vmdir = v["directory"]
    yund.yun("vm", "delete", "e2e-life")
    assert not os.path.exists(vmdir)
    st, _ = yund.request("GET", "/v1/vms/e2e-life")
    assert st == 404
    assert qemu_pids_for(yund.state_dir) == []
    yund.check_invariants()


def test_console_attach_and_reboot(yund):
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-con", "--image", "tiny", "--memory", "96M", "--start")
    yund.wait_marker("e2e-con")
    # Through a pipe (no tty) the console sends input and returns output.
    p = yund.yun("vm", "console", "e2e-con", input="\necho con-$((6*7))-ok\n", timeout=60)
    assert "con-42-ok" in p.stdout, p.stdout[-2000:]
    before = yund.console_log("e2e-con").count(MARKER)
    yund.yun("vm", "reboot", "e2e-con")
    wait_for(lambda: yund.console_log("e2e-con").count(MARKER) > before, 60,
             interval=0.2, what="the marker again after reboot")
    assert "qmp:reset" in [e["action"] for e in yund.events("e2e-con")]
    yund.yun("vm", "stop", "--force", "e2e-con")
    assert yund.vm("e2e-con")["state"] == "stopped"
    # logs survive the VM stopping
    assert MARKER in yund.console_log("e2e-con")
    yund.check_invariants()


def test_json_output_and_list(yund):
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-a", "--image", "tiny", "--memory", "96M")
    yund.yun("vm", "create", "e2e-b", "--image", "tiny", "--memory", "96M", "--disk", "128M")
    vms = json.loads(yund.yun("vm", "list", "-o", "json").stdout)
    assert [v["name"] for v in vms] == ["e2e-a", "e2e-b"]
    assert vms[1]["disk_bytes"] == 128 << 20
    table = yund.yun("vm", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "STATE", "CPUS"]
    assert len(table) == 3
    shown = json.loads(yund.yun("vm", "show", "e2e-b", "-o", "json").stdout)
    assert shown["memory_mb"] == 96 and shown["state"] == "stopped"
    ev = yund.yun("events", "-o", "json").stdout.splitlines()
    assert any(json.loads(l)["object"] == "e2e-b" for l in ev)
    assert "complete -F _yun yun" in yund.yun("completion", "bash").stdout
    for group in ("vm", "image", "events"):
        assert yund.yun(group, "--help").returncode == 0


def test_events_follow_wakes_on_new_event(yund):
    yund.ensure_tiny()
    p = subprocess.Popen([YUN, "--socket", yund.sock, "events", "-f", "--vm", "e2e-ev"],
                         stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        yund.yun("vm", "create", "e2e-ev", "--image", "tiny", "--memory", "96M")
        line = p.stdout.readline()
        assert "e2e-ev" in line and "create" in line
    finally:
        p.kill()
        p.wait()


def test_sigterm_leaves_vms_running_and_restart_reattaches(yund):
    yund.ensure_tiny()
    yund.yun("vm", "create", "e2e-keep", "--image", "tiny", "--memory", "96M", "--start")
    pid = yund.vm("e2e-keep")["pid"]
    assert yund.stop() == 0
    assert pid_alive(pid), "SIGTERM of yund must not stop VMs"
    yund.start()
    v = yund.vm("e2e-keep")
    assert v["state"] == "running" and v["pid"] == pid and v["qmp_status"] == "running"
    yund.wait_marker("e2e-keep")
    # the re-attached event watch still sees the guest stop
    yund.yun("vm", "stop", "e2e-keep")
    assert yund.vm("e2e-keep")["state"] == "stopped"
    yund.check_invariants()


def test_log_file_rotates_and_reopens_on_sighup(state_dir):
    from conftest import Yund
    log = os.path.join(state_dir, "yund.log")
    y = Yund(state_dir, ["--set", f"log_file={log}", "--set", "log_max_size=4K"]).start()
    try:
        y.ensure_tiny()
        for i in range(40):
            y.yun("vm", "create", f"e2e-log{i}", "--image", "tiny")
            y.yun("vm", "delete", f"e2e-log{i}")
        assert os.path.exists(log + ".1"), "the log was never rotated"
        assert os.path.getsize(log) < 4096 + 600
        assert "vm e2e-log" in open(log + ".1").read()
        os.rename(log, log + ".old")  # an outside rotation, as logrotate does
        y.proc.send_signal(__import__("signal").SIGHUP)
        wait_for(lambda: os.path.exists(log) and "reopened" in open(log).read(), 10,
                 what="the reopened log")
    finally:
        y.stop()
