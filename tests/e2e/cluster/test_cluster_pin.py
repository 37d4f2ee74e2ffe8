"""Thread pins across hosts: a VM's pins set live from the controller reach
its QEMU on an agent host (vm.tune over the agent's API), and a live
migration lands with the pins on the target's QEMU (the target pins its
vCPU threads once its QEMU waits for the stream), and an agent restarted
alone pins the QEMUs of its record again. Every agent runs on the
same machine (CPUs 0 and 1), in its own network namespace."""
import os

import pytest

from .harness import wait_for

pytestmark = pytest.mark.usefixtures("tiny")


def pins(pid):
    """(each vCPU thread's Cpus_allowed_list by index, the set of the other threads')"""
    vc, others = {}, set()
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
            st = open(f"/proc/{pid}/task/{t}/status").read().splitlines()
        except OSError:
            continue
        allowed = [l for l in st if l.startswith("Cpus_allowed_list")][0].split()[1]
        if comm.startswith("CPU ") and "/" in comm:
            vc[int(comm[4:].split("/")[0])] = allowed
        else:
            others.add(allowed)
    return [vc[i] for i in sorted(vc)], others


def qemu_of(cl, host, vid):
    pids = [p for p, v in cl.agents[host].qemus().items() if v == vid]
    assert len(pids) == 1, (host, pids)
    return pids[0]


def test_live_update_and_migration_keep_the_pins(cl):
    cl.yun("vm", "create", "c-pin", "--image", "tiny", "--memory", "128M", "--cpus", "2",
           "--host", "h1", "--cpu-pin", "0:0,1:1", "--emulator-pin", "0")
    cl.yun("vm", "start", "c-pin")
    cl.wait_vm("c-pin", "running")
    v = cl.vm("c-pin")
    pid = qemu_of(cl, "h1", v["id"])
    wait_for(lambda: pins(pid) == (["0", "1"], {"0"}), 20, interval=0.2,
             what="the pins at start on h1")
    # live, from the controller, through h1's agent
    cl.yun("vm", "update", "c-pin", "--cpu-pin", "0:1,1:0", "--emulator-pin", "1")
    assert pins(pid) == (["1", "0"], {"1"})
    assert qemu_of(cl, "h1", v["id"]) == pid
    # bad input from the controller: 400, nothing changed
    st, b = cl.api("PATCH", "/v1/vms/c-pin", {"cpu_pin": "0:7"})
    assert st == 400 and "CPU 7 does not exist" in b["error"]["message"], b
    assert cl.vm("c-pin")["cpu_pin"] == "0:1,1:0"
    # the move: the target's QEMU carries the pins
    t = cl.task_wait(cl.api("POST", "/v1/vms/c-pin/migrate", {"to": "h2"}))
    assert t["state"] == "succeeded", t
    wait_for(lambda: cl.vm_host(cl.vm("c-pin")) == "h2", 30, interval=0.2, what="c-pin on h2")
    pid2 = qemu_of(cl, "h2", v["id"])
    assert pid2 != pid
    wait_for(lambda: pins(pid2) == (["1", "0"], {"1"}), 20, interval=0.2,
             what="the pins on the target's QEMU")

    # the target's agent restarted alone (no controller): its own record
    # puts the pins back on the QEMU it finds again
    ctl, ag = cl.controllers[0], cl.agents["h2"]
    try:
        ctl.kill9()
        ag.kill9()
        for t in os.listdir(f"/proc/{pid2}/task"):
            try:
                os.sched_setaffinity(int(t), {0, 1})
            except OSError:
                pass
        assert pins(pid2) == (["0-1", "0-1"], {"0-1"})
        ag.start(wait_up=False)
        wait_for(lambda: pins(pid2) == (["1", "0"], {"1"}), 30, interval=0.2,
                 what="h2's agent to pin its QEMU again from its record")
    finally:
        if not ctl.running():
            ctl.start()
    cl.wait_leader()
    cl.wait_host("h2", "up", 40, daemon=ag)
    assert qemu_of(cl, "h2", v["id"]) == pid2
