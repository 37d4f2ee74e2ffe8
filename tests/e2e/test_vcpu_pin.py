"""Per-vCPU pinning, the emulator pin and a live `yun vm update`, on real QEMU
(TCG: one thread per vCPU, named "CPU N/TCG") and the host's real scheduler:
each vCPU thread's Cpus_allowed_list (/proc/PID/task/TID/status) is the pin
asked for, QEMU's other threads carry the emulator pin, an update on the
running VM rewrites its cgroup files and moves the pins while the QEMU pid
stays, a bad value is refused with the limit named and nothing changed, and
a yund restarted puts the pins back on a QEMU it finds again. The machine
has CPUs 0 and 1."""
import os

from conftest import Yund, wait_for


def threads(pid):
    """{tid: (comm, Cpus_allowed_list)} of every thread of pid."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{t}/status") as f:
                allowed = [l for l in f if l.startswith("Cpus_allowed_list")][0].split()[1]
        except OSError:
            continue  # a worker that ended meanwhile
        out[int(t)] = (comm, allowed)
    return out


def vcpu_tid(pid, i):
    tids = [t for t, (comm, _) in threads(pid).items() if comm.startswith(f"CPU {i}/")]
    assert len(tids) == 1, threads(pid)
    return tids[0]


def pins(pid, nvcpu=2):
    """(the vCPUs' lists by index, the set of lists of the other threads)"""
    th = threads(pid)
    v = [th[vcpu_tid(pid, i)][1] for i in range(nvcpu)]
    others = {a for comm, a in th.values() if not comm.startswith("CPU ")}
    return v, others


def cg_read(y, vm, ctl, name):
    with open(os.path.join(y.state_dir, "yund.id")) as f:
        g = f"yun/y-{f.read().strip()}/vm-{vm['id']}"
    host = y.request("GET", "/v1/host")[1]
    if host["cgroups"] == "v1":
        return open(f"/sys/fs/cgroup/{ctl}/{g}/{name}").read().strip()
    v2 = {"cpu.shares": "cpu.weight", "cpu.cfs_quota_us": "cpu.max"}[name]
    return open(f"/sys/fs/cgroup/{g}/{v2}").read().strip()


def create_pinned(y, name, *extra):
    y.ensure_tiny()
    y.yun("vm", "create", name, "--image", "tiny", "--memory", "96M", "--cpus", "2", *extra)


def test_pins_at_start_then_a_live_update_moves_them(yund):
    y = yund
    create_pinned(y, "e2e-pin", "--cpu-pin", "0:0,1:1", "--emulator-pin", "1", "--start")
    vm = y.vm("e2e-pin")
    pid = vm["pid"]
    assert vm["cpu_pin"] == "0:0,1:1" and vm["emulator_pin"] == "1"
    # set right after the launch's reply (the pins wait for query-cpus-fast)
    wait_for(lambda: pins(pid) == (["0", "1"], {"1"}), 10, interval=0.1,
             what="vCPU 0 on CPU 0, vCPU 1 on CPU 1, the rest on CPU 1")
    y.wait_marker("e2e-pin")
    # threads QEMU made after the pin (its workers) come from the main thread
    assert pins(pid)[1] == {"1"}, threads(pid)

    shares0 = cg_read(y, vm, "cpu", "cpu.shares")
    p = y.yun("vm", "update", "e2e-pin", "--cpu-weight", "300", "--cpu-max", "40%",
              "--cpu-pin", "0:1,1:0", "--emulator-pin", "0")
    assert "updated (running)" in p.stdout, p.stdout
    vm2 = y.vm("e2e-pin")
    assert vm2["pid"] == pid and vm2["state"] == "running"  # never restarted
    assert vm2["cpu_weight"] == 300 and vm2["cpu_quota_us"] == 40000
    assert vm2["cpu_pin"] == "0:1,1:0" and vm2["emulator_pin"] == "0"
    if y.request("GET", "/v1/host")[1]["cgroups"] == "v1":
        assert cg_read(y, vm, "cpu", "cpu.shares") == "3072" != shares0
        assert cg_read(y, vm, "cpu", "cpu.cfs_quota_us") == "40000"
    else:
        assert cg_read(y, vm, "cpu", "cpu.shares") == "300"
        assert cg_read(y, vm, "cpu", "cpu.cfs_quota_us") == "40000 100000"
    # the reply came after the pins were set: no waiting here
    assert pins(pid) == (["1", "0"], {"0"}), threads(pid)
    ev = [e for e in y.events("e2e-pin") if e["action"] == "updated"]
    assert ev and ev[-1]["result"] == "ok", ev
    assert "cpu_pin '0:0,1:1' -> '0:1,1:0'" in ev[-1]["reason"], ev[-1]
    assert "cpu_weight" in ev[-1]["reason"] and "-> 300" in ev[-1]["reason"], ev[-1]

    # a pin removed is undone: the threads go back to every host CPU
    y.yun("vm", "update", "e2e-pin", "--cpu-pin", "", "--emulator-pin", "")
    assert pins(pid) == (["0-1", "0-1"], {"0-1"}), threads(pid)
    assert y.vm("e2e-pin")["pid"] == pid


def test_bad_pins_are_refused_naming_the_limit_and_change_nothing(yund):
    y = yund
    create_pinned(y, "e2e-pinbad", "--cpuset", "1", "--cpu-pin", "0:1,1:1", "--start")
    vm = y.vm("e2e-pinbad")
    pid = vm["pid"]
    wait_for(lambda: pins(pid)[0] == ["1", "1"], 10, interval=0.1, what="both vCPUs on CPU 1")
    shares = cg_read(y, vm, "cpu", "cpu.shares")
    cases = [
        ({"cpu_pin": "2:1"}, "vCPU 2 does not exist (the VM has 2 vCPUs: 0-1)"),
        ({"cpu_pin": "0:99"}, "CPU 99 does not exist (host has"),
        ({"cpu_pin": "0:0"}, "CPU 0 is outside the VM's cpuset \"1\""),
        ({"emulator_pin": "0-1"}, "emulator-pin \"0-1\": CPU 0 is outside the VM's cpuset"),
        ({"cpu_pin": "0-1"}, "want VCPU:HOSTCPUS"),
        ({"cpu_pin": "0:1,0:1"}, "vCPU 0 is pinned twice"),
        ({"emulator_pin": "x"}, "emulator-pin \"x\": bad syntax"),
        # a change that would leave the old pin outside the new cpuset
        ({"cpuset": "0"}, "CPU 1 is outside the VM's cpuset \"0\""),
        # the good fields with a bad one: none of them applied
        ({"cpu_weight": 500, "cpu_pin": "0:99"}, "CPU 99 does not exist"),
        ({"cpu_weight": 20000}, "cpu_weight must be in 0..10000"),
        ({"cpu_pinn": "0:1"}, "unknown field"),
        ({}, "nothing to change"),
    ]
    for body, msg in cases:
        st, r = y.request("PATCH", "/v1/vms/e2e-pinbad", body)
        assert st == 400, (body, st, r)
        assert r["error"]["code"] == "invalid_argument", (body, r)
        assert msg in r["error"]["message"], (body, r)
        now = y.vm("e2e-pinbad")
        assert (now["cpu_pin"], now["emulator_pin"], now["cpuset"], now["cpu_weight"]) == (
            "0:1,1:1", "", "1", vm["cpu_weight"]), (body, now)
    assert cg_read(y, vm, "cpu", "cpu.shares") == shares
    assert pins(pid)[0] == ["1", "1"]
    assert y.vm("e2e-pinbad")["pid"] == pid
    # the CLI: non-zero, one line naming the limit
    p = y.yun("vm", "update", "e2e-pinbad", "--cpu-pin", "5:1", check=False)
    assert p.returncode != 0 and "vCPU 5 does not exist" in p.stderr, p.stderr
    p = y.yun("vm", "update", "e2e-pinbad", check=False)
    assert p.returncode != 0 and "nothing to change" in p.stderr, p.stderr
    # a create with a bad pin makes no VM
    for pin, msg in (("1:0", "vCPU 1 does not exist"), ("0:99", "CPU 99 does not exist")):
        p = y.yun("vm", "create", "e2e-pinbad2", "--image", "tiny", "--cpus", "1",
                  "--cpu-pin", pin, check=False)
        assert p.returncode != 0 and msg in p.stderr, p.stderr
        assert y.request("GET", "/v1/vms/e2e-pinbad2")[0] == 404


def test_a_stopped_vm_gets_its_row_and_its_next_start_the_pins(yund):
    y = yund
    create_pinned(y, "e2e-pinstop")
    st, r = y.request("PATCH", "/v1/vms/e2e-pinstop",
                      {"cpu_pin": "0:1,1:0", "emulator_pin": "0", "cpu_weight": 50})
    assert st == 200 and r["state"] == "stopped", r
    assert r["cpu_pin"] == "0:1,1:0" and r["cpu_weight"] == 50
    y.yun("vm", "start", "e2e-pinstop")
    pid = y.vm("e2e-pinstop")["pid"]
    wait_for(lambda: pins(pid) == (["1", "0"], {"0"}), 10, interval=0.1,
             what="the pins set while stopped, applied at start")
    assert cg_read(y, y.vm("e2e-pinstop"), "cpu", "cpu.shares") == (
        "512" if y.request("GET", "/v1/host")[1]["cgroups"] == "v1" else "50")


def test_a_restarted_yund_puts_the_pins_back(state_dir):
    y = Yund(state_dir).start()
    try:
        create_pinned(y, "e2e-pinre", "--cpu-pin", "0:1,1:0", "--emulator-pin", "1", "--start")
        pid = y.vm("e2e-pinre")["pid"]
        wait_for(lambda: pins(pid) == (["1", "0"], {"1"}), 10, interval=0.1,
                 what="the pins at start")
        y.kill9()
        # while yund is down someone moves the threads: the re-attach undoes it
        for t in threads(pid):
            os.sched_setaffinity(t, {0, 1})
        assert pins(pid) == (["0-1", "0-1"], {"0-1"})
        y.start()
        wait_for(lambda: pins(pid) == (["1", "0"], {"1"}), 30, interval=0.2,
                 what="the pins put back by the re-attach")
        assert y.vm("e2e-pinre")["pid"] == pid
        y.yun("vm", "delete", "--force", "e2e-pinre")
    finally:
        y.stop()
