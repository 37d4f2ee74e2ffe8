"""Concurrent creates from several clients never overcommit a host: with
host_max_vms=2 on three hosts, twelve creates from four clients at once
(four CLI processes in two namespaces, three creates each, interleaved)
place exactly six VMs, two on each host; the other six get 409 "no valid
host" and leave nothing behind."""
import collections
import subprocess

import pytest

from . import harness

pytestmark = pytest.mark.usefixtures("tiny")


def test_concurrent_creates_never_overcommit(cl):
    cl.restart_controllers(["-o", "host_max_vms=2"])
    try:
        procs = []
        for k in range(4):
            names = [f"c-cc{k}-{i}" for i in range(3)]
            script = " & ".join(
                f"{harness.YUN} --url {cl.controllers[0].url} --token {cl.api_token} vm create {n} "
                f"--image tiny --memory 96M >/dev/null 2>&1; echo {n}=$?" for n in names) + "; wait"
            ns = cl.controllers[0].ns if k % 2 == 0 else cl.agents[f"h{k % 3 + 1}"].ns
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", script],
                                          stdout=subprocess.PIPE, text=True))
        rcs = {}
        for p in procs:
            out, _ = p.communicate(timeout=180)
            for line in out.split():
                n, rc = line.split("=")
                rcs[n] = int(rc)
        assert len(rcs) == 12, rcs
        ok = sorted(n for n, rc in rcs.items() if rc == 0)
        assert len(ok) == 6, rcs
        vms = cl.vms()
        assert sorted(v["name"] for v in vms) == ok
        per = collections.Counter(cl.vm_host(v) for v in vms)
        assert per == {"h1": 2, "h2": 2, "h3": 2}, per
        p = cl.yun("vm", "create", "c-cc-more", "--image", "tiny", "--memory", "96M", check=False)
        assert p.returncode == 1 and "no valid host" in p.stderr, p.stderr
        cl.check_invariants()
    finally:
        cl.delete_all_vms()
        cl.restart_controllers([])
