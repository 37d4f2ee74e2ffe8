"""Draining a host (docs/cluster.md, "Drain"): `yun host drain h1 --parallel
2` moves its three running tiny VMs live to the other hosts (same ids, the
guests keep counting, no second boot), a stopped one moves cold, and h1 is left in
maintenance; a drain where one VM cannot move (it requires zone=a, which only
h1 has) names it with the reason, moves the others and sets h1 back up; bad
input (unknown host, parallel 0 or 1000, a bad strategy, an unknown member)
is 4xx with nothing changed."""
import pytest

from .harness import MARKER
from .test_cluster_migrate import assert_only_on, heartbeats, make_vm, rows, where

pytestmark = pytest.mark.usefixtures("tiny")


def drain_task(cl, tid):
    return cl.task_wait((202, {"task": {"id": tid}}))


def activate(cl, host):
    cl.yun("host", "activate", host)
    cl.wait_host(host, "up", 10)


def test_drain_three_vms(cl):
    names = ["c-dr1", "c-dr2", "c-dr3"]
    vms = {n: make_vm(cl, n, "h1", "96M") for n in names}
    # a stopped VM moves cold (its files copied) with the others
    cl.yun("vm", "create", "c-drstop", "--image", "tiny", "--memory", "96M", "--host", "h1")
    stopped = cl.vm("c-drstop")
    hb = {n: max(heartbeats(cl, n)) for n in names}
    try:
        p = cl.yun("host", "drain", "h1", "--parallel", "2", timeout=600)
        assert "host h1 drained" in p.stdout, p.stdout
        for n in names:
            assert f"vm {n}: moved to h" in p.stdout, p.stdout
        assert "vm c-drstop: moved to h" in p.stdout, p.stdout
        assert cl.host_state("h1") == "maintenance"
        for n, v in vms.items():
            r = cl.vm(n)
            host = cl.vm_host(r)
            assert host in ("h2", "h3"), r
            r = assert_only_on(cl, v, host, hb[n])
            assert r["id"] == v["id"]
            assert MARKER not in cl.console_log(n), f"{n} booted again on {host}"
            assert min(heartbeats(cl, n)) > hb[n] - 2, (n, hb[n])
            assert rows(cl, v["id"]) == "done"
        r = cl.vm("c-drstop")
        assert cl.vm_host(r) in ("h2", "h3") and r["state"] == "stopped", r
        assert stopped["id"] not in cl.agents["h1"].vm_dirs()
        assert stopped["id"] in cl.agents[cl.vm_host(r)].vm_dirs()
        t = next(t for t in cl.get("/v1/tasks?limit=30")["tasks"] if t["kind"] == "host.drain")
        assert t["state"] == "succeeded", t
        res = t["result"]
        assert res["moved"] == 4 and res["failed"] == 0 and res["stays"] == 0, res
        # at most two moves ran at once: the migrations' spans overlap by at most 2
        spans = []
        for v in vms.values():
            tk = next(x for x in cl.get("/v1/tasks?limit=30")["tasks"]
                      if x["kind"] == "vm.migrate" and x["object"]["id"] == v["id"])
            spans.append((tk["started_at"], tk["finished_at"]))
        for s, _ in spans:
            assert sum(1 for a, b in spans if a <= s < b) <= 2, spans
        ev = [e for e in cl.events("h1") if e.get("action") == "drain"]
        assert any(e["result"] == "ok" for e in ev), ev
        # a host in maintenance takes nothing new
        p = cl.yun("vm", "create", "c-drnew", "--image", "tiny", "--memory", "96M", "--host",
                   "h1", check=False)
        assert p.returncode == 1 and "maintenance" in p.stderr, p.stderr
    finally:
        activate(cl, "h1")
    cl.check_invariants(settled=True)


def test_drain_with_a_vm_that_cannot_move(cl):
    v = make_vm(cl, "c-drok", "h1", "96M")
    cl.yun("vm", "create", "c-drzone", "--image", "tiny", "--memory", "96M", "--host", "h1",
           "--require", "zone=a")
    cl.yun("vm", "start", "c-drzone")
    cl.wait_vm("c-drzone", "running")
    stuck = cl.vm("c-drzone")
    try:
        p = cl.yun("host", "drain", "h1", check=False, timeout=600)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "c-drzone" in p.stderr and "no host can take it" in p.stderr, p.stderr
        assert "could not move" in p.stderr and "up again" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert cl.host_state("h1") == "up"
        # the other one moved; the stuck one runs on h1 untouched
        assert cl.vm_host(cl.vm("c-drok")) in ("h2", "h3")
        assert_only_on(cl, v, cl.vm_host(cl.vm("c-drok")))
        assert where(cl, stuck["id"]).keys() == {"h1"}
        assert cl.vm("c-drzone")["pid"] == stuck["pid"]
        assert rows(cl, stuck["id"]) == ""
        t = next(t for t in cl.get("/v1/tasks?limit=30")["tasks"] if t["kind"] == "host.drain")
        assert t["state"] == "failed", t
        d = {x["vm"]: x for x in t["detail"]["vms"]}
        assert d["c-drzone"]["state"] == "failed" and d["c-drzone"]["reason"], d
        assert d["c-drok"]["state"] == "moved", d
    finally:
        if cl.host_state("h1") != "up":
            activate(cl, "h1")
    cl.check_invariants(settled=True)


def test_drain_bad_input_changes_nothing(cl):
    v = make_vm(cl, "c-drbad", "h1", "96M")
    cases = [
        ("nosuchhost", {}, 404),
        ("h1", {"parallel": 0}, 400),
        ("h1", {"parallel": 1000}, 400),
        ("h1", {"parallel": "2"}, 400),
        ("h1", {"strategy": "bogus"}, 400),
        ("h1", {"bogus": 1}, 400),
        ("h1", [], 400),
    ]
    for host, body, want in cases:
        st, b = cl.api("POST", f"/v1/hosts/{host}/drain", body)
        assert st == want and b["error"]["code"] and b["error"]["message"], (host, body, st, b)
    for args in (["--parallel", "0"], ["--parallel", "1000"]):
        p = cl.yun("host", "drain", "h1", *args, check=False)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
    p = cl.yun("host", "drain", "h1", "--strategy", "bogus", check=False)
    assert p.returncode == 1 and "strategy" in p.stderr, (p.stdout, p.stderr)
    p = cl.yun("host", "drain", "nosuchhost", check=False)
    assert p.returncode == 1 and "nosuchhost" in p.stderr, p.stderr
    # nothing changed: h1 up, the VM where it was, no migration, no drain task
    assert cl.host_state("h1") == "up"
    assert where(cl, v["id"]).keys() == {"h1"}
    assert rows(cl, v["id"]) == ""
    assert not [t for t in cl.get("/v1/tasks?limit=50")["tasks"] if t["kind"] == "host.drain"
                and t["object"]["name"] == "h1" and t["state"] == "running"]
    cl.check_invariants(settled=True)
