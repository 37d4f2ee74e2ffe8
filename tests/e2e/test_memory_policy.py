"""A VM's memory policy against real QEMU (TCG) and the real cgroup tree:
the balloon's floor (memory_min), swap beyond memory, the soft limit,
memory locked resident and the KSM opt-out, each read back from the VM's
cgroup files, QEMU's /proc/PID/cmdline and /proc/PID/status; and bad input
refused with a 4xx naming the limit, nothing left behind."""
import os

from conftest import qemu_pids_for, wait_for, yund_cgroup_dirs


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


def group_of(y, vm):
    with open(os.path.join(y.state_dir, "yund.id")) as f:
        return f"yun/y-{f.read().strip()}/vm-{vm['id']}"


def cg_read(y, vm, v1_ctl, name):
    """A file of the VM's group: v1 under its controller's mount, v2 in the
    unified tree."""
    host = y.request("GET", "/v1/host")[1]
    base = f"/sys/fs/cgroup/{v1_ctl}" if host["cgroups"] == "v1" else "/sys/fs/cgroup"
    with open(f"{base}/{group_of(y, vm)}/{name}") as f:
        return f.read().strip()


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        line = [l for l in f if l.startswith(field + ":")][0]
    return int(line.split()[1])


def mergeable_kb(pid):
    """KiB of QEMU's mappings madvise'd MADV_MERGEABLE (VmFlags "mg"): the
    guest RAM KSM may scan."""
    total, size = 0, 0
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("VmFlags:") and " mg" in line:
                total += size
    return total


def test_swap_and_soft_limit_reach_the_cgroup(yund):
    y = yund
    y.ensure_tiny()
    host = y.request("GET", "/v1/host")[1]
    create(y, "e2e-swap", "--memory-swap", "64M", "--memory-high", "64M", start=True)
    vm = y.vm("e2e-swap")
    assert vm["memory_swap_mb"] == 64 and vm["memory_high_mb"] == 64
    if host["cgroups"] == "v1":
        limit = int(cg_read(y, vm, "memory", "memory.limit_in_bytes"))
        # memsw is memory + swap; the soft limit is the guest's 64M of its
        # 96M plus QEMU's headroom, as the hard limit has it
        assert int(cg_read(y, vm, "memory", "memory.memsw.limit_in_bytes")) == limit + (64 << 20)
        assert int(cg_read(y, vm, "memory", "memory.soft_limit_in_bytes")) == limit - (32 << 20)
    else:
        limit = int(cg_read(y, vm, "memory", "memory.max"))
        assert int(cg_read(y, vm, "memory", "memory.swap.max")) == 64 << 20
        assert int(cg_read(y, vm, "memory", "memory.high")) == limit - (32 << 20)
    # no swap at all
    create(y, "e2e-noswap", "--memory-swap", "0", start=True)
    vm = y.vm("e2e-noswap")
    assert vm["memory_swap_mb"] == 0
    if host["cgroups"] == "v1":
        limit = int(cg_read(y, vm, "memory", "memory.limit_in_bytes"))
        assert int(cg_read(y, vm, "memory", "memory.memsw.limit_in_bytes")) == limit
        assert cg_read(y, vm, "memory", "memory.swappiness") == "0"
    else:
        assert cg_read(y, vm, "memory", "memory.swap.max") == "0"
    y.check_invariants()


def test_no_merge_keeps_guest_ram_out_of_ksm(yund):
    y = yund
    y.ensure_tiny()
    create(y, "e2e-merge", start=True)
    create(y, "e2e-nomerge", "--no-merge", start=True)
    merged, unmerged = y.vm("e2e-merge"), y.vm("e2e-nomerge")
    assert merged["merge"] is True and unmerged["merge"] is False
    m = [a for a in cmdline(unmerged["pid"]) if a.startswith(b"pc,") or b"accel=" in a]
    assert m and m[0].endswith(b",mem-merge=off"), m
    assert not any(b"mem-merge" in a for a in cmdline(merged["pid"]))
    # what QEMU did with it: the default VM's RAM is offered to KSM, the
    # opted-out VM's is not (QEMU madvises RAM blocks as it makes them, before -S ends)
    assert mergeable_kb(merged["pid"]) >= 96 << 10
    assert mergeable_kb(unmerged["pid"]) == 0


def test_memory_lock_keeps_it_resident(yund):
    y = yund
    y.ensure_tiny()
    host = y.request("GET", "/v1/host")[1]
    create(y, "e2e-lock", "--memory-lock", start=True)
    vm = y.vm("e2e-lock")
    assert vm["memory_lock"] is True and vm["memory_swap_mb"] == 0
    args = cmdline(vm["pid"])
    i = args.index(b"-overcommit")
    assert args[i + 1] == b"mem-lock=on"
    # mlockall: all of guest RAM (96 MiB) locked, and a locked VM never swaps
    assert status_kb(vm["pid"], "VmLck") >= 96 << 10
    if host["cgroups"] == "v1":
        assert cg_read(y, vm, "memory", "memory.swappiness") == "0"
        limit = int(cg_read(y, vm, "memory", "memory.limit_in_bytes"))
        assert int(cg_read(y, vm, "memory", "memory.memsw.limit_in_bytes")) == limit
    else:
        assert cg_read(y, vm, "memory", "memory.swap.max") == "0"
    y.check_invariants()


def left_behind(y):
    """VM rows, VM directories and VM cgroups of this yund."""
    st, r = y.request("GET", "/v1/vms")
    assert st == 200
    dirs = os.listdir(os.path.join(y.state_dir, "vms"))
    groups = [d for base in yund_cgroup_dirs(y.state_dir) for d in os.listdir(base)
              if d.startswith("vm-")]
    return r["vms"], dirs, groups


def test_bad_memory_policy_is_refused_whole(yund):
    y = yund
    y.ensure_tiny()
    body = {"name": "e2e-bad", "image": "tiny", "memory": "96M"}
    cases = [
        ({"memory_min": "200M"}, "memory_min 200 MiB is above memory 96 MiB"),
        ({"memory_min": 0}, "memory_min must be more than 0"),
        ({"memory_high": "97M"}, "memory_high 97 MiB is above memory 96 MiB"),
        ({"memory_swap": 1572864}, "memory_swap must be a whole number of MiB"),
        ({"memory_lock": True, "memory_swap": "64M"}, "memory_swap must be 0, not 64 MiB"),
        ({"memory_lock": True, "memory_high": "64M"}, "cannot have a memory_high"),
        ({"memory_lock": "yes"}, "memory_lock must be true or false"),
        ({"merge": 0}, "merge must be true or false"),
        ({"memory_swap": "64M", "start": True, "memory_high": "100M"}, "memory_high 100 MiB"),
    ]
    for extra, want in cases:
        st, r = y.request("POST", "/v1/vms", dict(body, **extra))
        assert st == 400, (extra, st, r)
        assert r["error"]["code"] == "invalid_argument", r
        assert want in r["error"]["message"], (extra, r)
    p = y.yun("vm", "create", "e2e-bad", "--image", "tiny", "--memory", "96M",
              "--memory-min", "1G", check=False)
    assert p.returncode != 0
    assert "memory_min 1024 MiB is above memory 96 MiB" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = y.yun("vm", "create", "e2e-bad", "--image", "tiny", "--memory-high", "lots", check=False)
    assert p.returncode != 0 and "--memory-high takes a size" in p.stderr, p.stderr
    # nothing of any of them was made
    assert left_behind(y) == ([], [], [])
    assert qemu_pids_for(y.state_dir) == []


def cg_write(y, vm, v1, name, val):
    """Written while yund is down: v1 tells the tree."""
    base = "/sys/fs/cgroup/memory" if v1 else "/sys/fs/cgroup"
    path = f"{base}/{group_of(y, vm)}/{name}"
    with open(path, "w") as f:
        f.write(val)
    with open(path) as f:
        return f.read().strip()


def test_reattach_writes_the_policy_again(yund):
    """A yund restarted under a running VM re-attaches it and writes its
    cgroup limits from the row: the memory policy's too, not defaults."""
    y = yund
    y.ensure_tiny()
    host = y.request("GET", "/v1/host")[1]
    create(y, "e2e-re", "--memory-high", "64M", "--memory-swap", "32M", start=True)
    vm = y.vm("e2e-re")
    v1 = host["cgroups"] == "v1"
    soft, swap = (("memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes") if v1
                  else ("memory.high", "memory.swap.max"))
    want = (cg_read(y, vm, "memory", soft), cg_read(y, vm, "memory", swap))
    y.kill9()
    # someone relaxed them while yund was down
    assert cg_write(y, vm, v1, swap, "-1" if v1 else "max") != want[1]
    assert cg_write(y, vm, v1, soft, "-1" if v1 else "max") != want[0]
    y.start()
    # (the group's files, read once yund answers again)
    wait_for(lambda: (cg_read(y, vm, "memory", soft), cg_read(y, vm, "memory", swap)) == want,
             30, interval=0.2, what="the re-attach to write the memory policy again")
    assert y.vm("e2e-re")["pid"] == vm["pid"]
    y.check_invariants()
