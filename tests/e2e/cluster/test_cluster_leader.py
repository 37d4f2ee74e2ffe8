"""Controller failover: a standby controller c2 on the same database; kill -9
of the leading controller in the middle of a create (the agent's qemu-img is
slow) and in the middle of a start (the agent's QEMU is slow): the standby
serves writes within 10 s, and after it settles the invariants hold on every
host: the VM is whole or gone, runs once or not at all, no orphan directory,
and the CLI (--url naming both) follows the new leader."""
import os
import shutil
import tempfile
import time

import pytest

from . import harness
from .harness import wait_for


def _script(d, name, body):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def _procs_running(path):
    return harness.common._pids_where(lambda argv: path.encode() in argv[:2])


def _failover(cl):
    """kill -9 of the leader; returns (the dead one, seconds until another
    leader serves a write)."""
    old = cl.leader()
    assert old, "no leader"
    old.kill9()
    t0 = time.monotonic()
    new = cl.wait_leader(15)
    assert new is not old
    # a write (the hosts row, through the new leader; h1 is active already)
    wait_for(lambda: cl.api("POST", "/v1/hosts/h1/activate")[0] == 200, 15, interval=0.1,
             what="the new leader to take a write")
    return old, time.monotonic() - t0


def test_standby_takes_over_and_hosts_follow(cl):
    """No VM: the standby refuses writes naming the leader; kill -9 of the
    leader, the standby serves writes within 10 s, every host stays (or
    comes back) up heartbeating it, the CLI with both URLs follows; the old
    leader restarted is a standby."""
    c2 = cl.add_controller("c2")
    try:
        c1 = cl.controllers[0]
        assert cl.leader() is c1
        st, e = c2.request("POST", "/v1/hosts/h1/activate")
        assert st == 503 and e["error"]["code"] == "not_leader", (st, e)
        assert e["error"].get("leader") == c1.url, e
        dead, took = _failover(cl)
        assert dead is c1 and took < 10, f"the standby took {took:.1f} s to serve writes"
        for name in cl.agents:
            cl.wait_host(name, "up", cl.dead_after_ms / 1000 + 10)
        assert "h1" in cl.yun("host", "list").stdout
        c1.start()
        assert cl.leader() is c2
        # a standby just started says "no leader known yet" until it has
        # read the lease once; then it names the leader
        def refusal():
            st, e = c1.request("POST", "/v1/hosts/h1/activate")
            assert st == 503 and e["error"]["code"] == "not_leader", (st, e)
            return e if e["error"].get("leader") else None

        e = wait_for(refusal, 15, interval=0.1, what="the restarted standby to name the leader")
        assert e["error"]["leader"] == c2.url, e
    finally:
        cl.remove_controller(c2)


@pytest.mark.usefixtures("tiny")
def test_leader_kill9_mid_create_and_mid_start(cl):
    d = tempfile.mkdtemp(prefix="yc-slow-", dir="/tmp")
    os.chmod(d, 0o755)
    slow_img = _script(d, "slow-qemu-img", 'case "$1" in create) sleep 3;; esac\n'
                       'exec qemu-img "$@"\n')
    slow_qemu = _script(d, "slow-qemu", 'sleep 3\nexec qemu-system-x86_64 "$@"\n')
    c2 = cl.add_controller("c2")
    try:
        assert cl.leader() is cl.controllers[0]  # the first one keeps leading
        st, e = c2.request("POST", "/v1/hosts/h1/activate")
        assert st == 503 and e["error"]["code"] == "not_leader", (st, e)
        assert cl.controllers[0].url in e["error"]["message"] or \
            cl.controllers[0].url in str(e), e
        cl.restart_agents(h1=["-o", f"qemu_img={slow_img}", "-o", f"qemu={slow_qemu}"])

        # mid-create
        p = cl.yun_popen("vm", "create", "c-lc", "--image", "tiny", "--memory", "96M",
                         "--host", "h1")
        wait_for(lambda: _procs_running(slow_img), 20, interval=0.02, what="the slow qemu-img")
        dead, took = _failover(cl)
        assert took < 10, f"the standby took {took:.1f} s to serve writes"
        p.communicate(timeout=120)
        dead.start()  # back, as a standby
        vms = cl.settle(60)
        lc = [v for v in vms if v["name"] == "c-lc"]
        ag = cl.agents["h1"]
        if lc:
            assert lc[0]["state"] == "stopped" and lc[0]["id"] in ag.vm_dirs(), lc
        else:
            assert ag.vm_dirs() == set()
        # the name is usable either way: made whole, or made again
        if not lc:
            cl.yun("vm", "create", "c-lc", "--image", "tiny", "--memory", "96M", "--host", "h1")

        # mid-start
        p = cl.yun_popen("vm", "start", "c-lc")
        wait_for(lambda: _procs_running(slow_qemu), 30, interval=0.02, what="the slow QEMU")
        dead, took = _failover(cl)
        assert took < 10, f"the standby took {took:.1f} s to serve writes"
        p.communicate(timeout=120)
        dead.start()
        wait_for(lambda: not _procs_running(slow_qemu), 10, what="the wrapper to exec")
        vms = cl.settle(60)
        v = next(x for x in vms if x["name"] == "c-lc")
        mine = [pid for pid, u in ag.qemus().items() if u == v["id"]]
        assert mine == ([v["pid"]] if v["state"] == "running" else []), (v, mine)
        if v["state"] != "running":
            cl.yun("vm", "start", "c-lc")
            v = cl.wait_vm("c-lc", "running", 60)
        cl.wait_marker("c-lc")
        # the CLI follows the leader whichever it is
        assert "c-lc" in cl.yun("vm", "list").stdout
        cl.check_invariants()
    finally:
        cl.delete_all_vms()
        cl.remove_controller(c2)  # and the agents are plain again
        shutil.rmtree(d, ignore_errors=True)
