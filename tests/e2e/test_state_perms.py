"""yund's state is for root alone: the state directory is 0700 (an existing
0755 one is tightened, and the log says so), and nothing yund, qemu-img or
QEMU create in it is readable by group or others; only the API socket is
0660, for its group."""
import os
import stat

from conftest import Yund


def modes_under(top):
    """(path, mode) of the directory and everything in it."""
    out = [(top, os.lstat(top).st_mode)]
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            out.append((p, os.lstat(p).st_mode))
    return out


def test_state_files_are_private(state_dir):
    os.chmod(state_dir, 0o755)  # as an older yund or a hand-made directory left it
    y = Yund(state_dir, ["--set", f"log_file={state_dir}/yund.log"]).start()
    try:
        assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
        assert "was mode 0755: now 0700" in y.logtext(tail=10**6)
        y.ensure_tiny()
        y.yun("volume", "create", "e2e-perm-vol", "--size", "16M")
        y.yun("vm", "create", "e2e-perm-vm", "--image", "tiny", "--memory", "96M", "--start")
        y.wait_marker("e2e-perm-vm")
        vm = y.vm("e2e-perm-vm")
        vmdir = os.path.join(state_dir, "vms", vm["id"])
        for f in ("yun.db", "yun.db-wal", "yund.log", "images/tiny/disk.qcow2",
                  "pools/default/e2e-perm-vol.qcow2", f"{vmdir}/disk.qcow2",
                  f"{vmdir}/console.log", f"{vmdir}/qemu.pid"):
            assert os.path.exists(os.path.join(state_dir, f)), f
        sock = os.path.join(state_dir, "yund.sock")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        loose = []
        for p, m in modes_under(state_dir):
            if p == sock or p.endswith("test-yund.log"):  # the test harness's own file
                continue
            # Files and directories are closed to group and others. QEMU's
            # -daemonize sets its own umask 027, so what QEMU creates itself
            # (its sockets, console.log) is closed to others, inside a VM
            # directory that is closed to both.
            by_qemu = stat.S_ISSOCK(m) or p == f"{vmdir}/console.log"
            bits = 0o007 if by_qemu else 0o077
            if stat.S_IMODE(m) & bits:
                loose.append((p, oct(stat.S_IMODE(m))))
        assert not loose, loose
        assert stat.S_IMODE(os.stat(vmdir).st_mode) & 0o077 == 0
        y.yun("vm", "stop", "--force", "e2e-perm-vm")
        y.yun("vm", "delete", "e2e-perm-vm")
    finally:
        y.stop()
