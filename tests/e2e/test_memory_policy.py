"""A VM's memory policy against real QEMU (TCG) and the real cgroup tree:
the balloon's floor (memory_min), swap beyond memory, the soft limit,
memory locked resident and the KSM opt-out, each read back from the VM's
cgroup files, QEMU's /proc/PID/cmdline and /proc/PID/status; and bad input
refused with a 4xx naming the limit, nothing left behind."""
import os

from conftest import qemu_pids_for, yund_cgroup_dirs


def create(y, name, *opts, start=False):
    args = ["vm", "create", name, "--image", "tiny", "--memory", "96M", *opts]
    if start:
        args.append("--start")
    return y.yun(*args)


def test_memory_min_is_kept_and_shown(yund):
    y = yund
    y.ensure_tiny()
    create(y, "e2e-min", "--memory-min", "64M")
    vm = y.vm("e2e-min")
    assert vm["memory_min_mb"] == 64 and vm["memory_mb"] == 96
    # the default: all its memory, no ballooning below
    create(y, "e2e-min-dflt")
    d = y.vm("e2e-min-dflt")
    assert d["memory_min_mb"] == 96
    assert d["memory_swap_mb"] == -1 and d["memory_high_mb"] == 0
    assert d["memory_lock"] is False and d["merge"] is True
    out = y.yun("vm", "show", "e2e-min").stdout
    assert "memory_min_mb   64" in out, out
