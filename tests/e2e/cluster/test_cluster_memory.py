"""A VM's memory policy on a remote host: the controller checks it against
the VM's own size (400, nothing made anywhere), and h2's agent gets it in
vm.launch and writes it: the soft limit and swap in h2's cgroup for the VM,
mem-merge=off and mem-lock=on on its QEMU's command line, its memory locked
(VmLck). The cgroup files are read when h2's agent has a cgroup tree (the
test cluster's agents, under `ip netns exec`, usually do not: /sys is
remounted there); test_memory_policy.py reads them on the all-in-one."""
import os

import pytest

pytestmark = pytest.mark.usefixtures("tiny")


def group_dir(pid, vm):
    """The VM's memory cgroup directory, from its QEMU's /proc/PID/cgroup
    (v1: the memory line; v2: the unified one), or None when the agent runs
    without a cgroup tree (`ip netns exec` remounts /sys, hiding it)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctls, path = line.strip().split(":", 2)
            if path.endswith(f"/vm-{vm['id']}") and ("memory" in ctls.split(",") or not ctls):
                d = f"/sys/fs/cgroup/memory{path}" if ctls else f"/sys/fs/cgroup{path}"
                if os.path.isdir(d):
                    return d
    return None


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def test_memory_policy_reaches_the_remote_host(cl):
    ag = cl.agents["h2"]
    st, r = cl.api("POST", "/v1/vms", {"name": "c-mem-bad", "image": "tiny", "memory": "96M",
                                        "memory_min": "128M", "host": "h2"})
    assert st == 400 and "memory_min 128 MiB is above memory 96 MiB" in r["error"]["message"], r
    assert cl.api("GET", "/v1/vms/c-mem-bad")[0] == 404
    assert not ag.vm_dirs()

    cl.yun("vm", "create", "c-mem", "--image", "tiny", "--memory", "96M", "--host", "h2",
           "--memory-min", "64M", "--memory-high", "64M", "--memory-swap", "0", "--no-merge",
           "--start")
    v = cl.wait_vm("c-mem", "running")
    assert (v["memory_min_mb"], v["memory_high_mb"], v["memory_swap_mb"], v["merge"]) == \
        (64, 64, 0, False), v
    assert ag.qemus().get(v["pid"]) == v["id"]
    with open(f"/proc/{v['pid']}/cmdline", "rb") as f:
        args = f.read().split(b"\0")
    assert any(a.endswith(b",mem-merge=off") for a in args), args
    d = group_dir(v["pid"], v)
    if d and os.path.exists(os.path.join(d, "memory.limit_in_bytes")):  # v1
        limit = int(read(d, "memory.limit_in_bytes"))
        assert int(read(d, "memory.soft_limit_in_bytes")) == limit - (32 << 20)
        assert int(read(d, "memory.memsw.limit_in_bytes")) == limit
    elif d:
        limit = int(read(d, "memory.max"))
        assert int(read(d, "memory.high")) == limit - (32 << 20)
        assert read(d, "memory.swap.max") == "0"

    cl.yun("vm", "create", "c-lock", "--image", "tiny", "--memory", "96M", "--host", "h2",
           "--memory-lock", "--start")
    v = cl.wait_vm("c-lock", "running")
    with open(f"/proc/{v['pid']}/cmdline", "rb") as f:
        assert b"mem-lock=on" in f.read().split(b"\0")
    with open(f"/proc/{v['pid']}/status") as f:
        lck = [int(l.split()[1]) for l in f if l.startswith("VmLck:")][0]
    assert lck >= 96 << 10, lck
    cl.check_invariants()
