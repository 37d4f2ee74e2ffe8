"""The reconcile pass's orphans: a VM directory with no row is removed, and a
process of it (anything with `-uuid ID` naming a file under the directory)
is ended first; the events say so."""
import os
import subprocess
import sys
import uuid

from conftest import wait_for, pid_alive


def orphan_events(y, vid):
    evs = sorted((e for e in y.events(vid) if e["action"] == "orphan"), key=lambda e: e["id"])
    return [e["reason"] for e in evs]


def test_orphan_directory_is_removed(yund):
    vid = str(uuid.uuid4())
    d = os.path.join(yund.state_dir, "vms", vid)
    os.makedirs(d)
    with open(os.path.join(d, "disk.qcow2"), "w") as f:
        f.write("x")
    wait_for(lambda: not os.path.exists(d), 20, what="the orphan directory to go")
    wait_for(lambda: orphan_events(yund, vid), 10, what="the orphan event")
    assert orphan_events(yund, vid) == ["removed directory with no vm record"]
    yund.check_invariants()


def test_orphan_process_is_ended_before_its_directory_goes(yund):
    vid = str(uuid.uuid4())
    d = os.path.join(yund.state_dir, "vms", vid)
    os.makedirs(d)
    # what the process table takes for a QEMU of that VM
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-uuid", vid,
                          os.path.join(d, "disk.qcow2")])
    try:
        wait_for(lambda: p.poll() is not None, 20, what="the orphan's process to be ended")
        wait_for(lambda: not os.path.exists(d), 20, what="the orphan directory to go")
        wait_for(lambda: len(orphan_events(yund, vid)) >= 2, 10, what="the orphan events")
        assert orphan_events(yund, vid) == ["ending the qemu of a directory with no vm record",
                                            "removed directory with no vm record"]
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
    assert not pid_alive(p.pid)
    yund.check_invariants()
