"""Placement across the three hosts through src/sched: spread puts one VM on
each host, pack (the controller restarted with placement_policy=pack) puts
them all on one; a hard anti-affinity group refuses a fourth member with the
explanation (409 with counts per reason); --require picks the host with the
labels; --host forces a host and is still checked."""
import os

import pytest

pytestmark = pytest.mark.usefixtures("tiny")


def _placed(cl, names):
    hosts = cl.hosts()
    return {n: cl.vm_host(cl.vm(n), hosts) for n in names}


def test_spread_one_vm_on_each_host(cl):
    names = [f"c-sp{i}" for i in range(3)]
    for n in names:
        cl.yun("vm", "create", n, "--image", "tiny", "--memory", "96M", "--start")
    where = _placed(cl, names)
    assert sorted(where.values()) == ["h1", "h2", "h3"], where
    for n in names:
        cl.wait_vm(n, "running")
    cl.check_invariants()
    # each QEMU runs in its host's network namespace
    for n in names:
        v = cl.vm(n)
        ag = cl.agents[where[n]]
        assert v["pid"] in ag.qemus(), (n, v["pid"], ag.qemus())
        assert _netns_of(v["pid"]) == _netns_of(ag.proc.pid)


def _netns_of(pid):
    return os.readlink(f"/proc/{pid}/ns/net")


def test_pack_puts_all_on_one_host(cl):
    cl.restart_controllers(["-o", "placement_policy=pack"])
    try:
        names = [f"c-pk{i}" for i in range(3)]
        for n in names:
            cl.yun("vm", "create", n, "--image", "tiny", "--memory", "96M")
        where = _placed(cl, names)
        assert len(set(where.values())) == 1, where
        p = cl.yun("vm", "create", "c-pkx", "--image", "tiny", "--memory", "96M", "--explain")
        assert "pack policy" in p.stdout, p.stdout
        cl.check_invariants()
    finally:
        cl.delete_all_vms()
        cl.restart_controllers([])


def test_hard_anti_affinity_refuses_a_fourth(cl):
    cl.yun("group", "create", "c-web", "--anti-affinity", "hard")
    try:
        names = [f"c-web{i}" for i in range(1, 4)]
        for n in names:
            cl.yun("vm", "create", n, "--image", "tiny", "--memory", "96M", "--group", "c-web")
        where = _placed(cl, names)
        assert sorted(where.values()) == ["h1", "h2", "h3"], where
        p = cl.yun("vm", "create", "c-web4", "--image", "tiny", "--memory", "96M", "--group",
                   "c-web", "--explain", check=False)
        assert p.returncode == 1, p
        assert "no valid host: 3 hosts: 3 with a member of group c-web" in p.stderr, p.stderr
        for h in ("h1", "h2", "h3"):
            line = next((x for x in p.stdout.splitlines() if h in x.split()), "")
            assert "rejected" in line and "anti-affinity" in line, p.stdout
        st, e = cl.api("POST", "/v1/vms", {"name": "c-web4", "image": "tiny", "group": "c-web"})
        assert st == 409 and "no valid host" in e["error"]["message"], e
        st, _ = cl.api("GET", "/v1/vms/c-web4")
        assert st == 404
        p = cl.yun("vm", "explain", "c-web4")
        assert "anti-affinity" in p.stdout, p.stdout
        cl.check_invariants()
    finally:
        cl.delete_all_vms()
        cl.yun("group", "delete", "c-web", check=False)


def test_require_labels_and_forced_host(cl):
    cl.yun("vm", "create", "c-gpu", "--image", "tiny", "--memory", "96M", "--require", "gpu=1")
    cl.yun("vm", "create", "c-za", "--image", "tiny", "--memory", "96M", "--require", "zone=a")
    cl.yun("vm", "create", "c-h2", "--image", "tiny", "--memory", "96M", "--host", "h2")
    assert _placed(cl, ["c-gpu", "c-za", "c-h2"]) == {"c-gpu": "h3", "c-za": "h1", "c-h2": "h2"}
    # forced, but still checked: h1 has no gpu
    p = cl.yun("vm", "create", "c-bad", "--image", "tiny", "--host", "h1", "--require", "gpu=1",
               check=False)
    assert p.returncode == 1 and "gpu=1" in p.stderr, p.stderr
    p = cl.yun("vm", "create", "c-none", "--image", "tiny", "--require", "gpu=2", check=False)
    assert p.returncode == 1 and "no valid host: 3 hosts: 3 without labels gpu=2" in p.stderr, \
        p.stderr
    for n in ("c-bad", "c-none"):
        assert cl.api("GET", f"/v1/vms/{n}")[0] == 404
    # the row says which host and why
    st, pl = cl.api("GET", "/v1/vms/c-gpu/placement")
    assert st == 200 and pl["chosen"]["name"] == "h3", pl
    out = cl.yun("vm", "list").stdout
    assert "HOST" in out.splitlines()[0], out
    line = next(x for x in out.splitlines() if x.startswith("c-gpu"))
    assert "h3" in line.split(), out
    only = cl.yun("vm", "list", "--host", "h1").stdout
    assert "c-za" in only and "c-gpu" not in only and "c-h2" not in only, only
    cl.check_invariants()


def _placement_count(cl, kind):
    st, body = cl.api("GET", "/metrics")
    assert st == 200, st
    text = body.decode() if isinstance(body, bytes) else str(body)
    for line in text.splitlines():
        if line.startswith(f'yun_placement_seconds_count{{kind="{kind}"}} '):
            return int(line.split()[-1])
    raise AssertionError(f"no yun_placement_seconds_count for {kind} in /metrics:\n{text[-3000:]}")


def test_dry_run_placement(cl):
    """POST /v1/placement answers where a create's body would go and makes
    nothing: no row, no task, the next create still free to go anywhere."""
    vms0 = cl.get("/v1/vms")["vms"]
    tasks0 = cl.get("/v1/tasks")
    dry0, create0 = _placement_count(cl, "dry-run"), _placement_count(cl, "create")
    st, r = cl.api("POST", "/v1/placement", {"cpus": 1, "memory": "96M", "requires": ["gpu=1"],
                                             "start": True})
    assert st == 200 and r["host"]["name"] == "h3", (st, r)
    assert r["hosts_total"] == 3 and r["passed"] == 1 and "placement" not in r, r
    assert isinstance(r["score"], float) and r["took_us"] >= 0, r
    # a create's whole body (name, image) is taken and checked too
    st, r = cl.api("POST", "/v1/placement", {"name": "c-dry", "image": "tiny", "memory": "96M",
                                             "host": "h2"})
    assert st == 200 and r["host"]["name"] == "h2", (st, r)
    st, r = cl.api("POST", "/v1/placement?explain=1", {"requires": "zone=b"})
    assert st == 200 and r["host"]["name"] in ("h2", "h3"), (st, r)
    verdicts = {h["name"]: h for h in r["placement"]["hosts"]}
    assert set(verdicts) == {"h1", "h2", "h3"}, r
    assert verdicts["h1"]["verdict"] == "rejected" and verdicts["h1"]["filter"] == "labels", r
    assert verdicts[r["host"]["name"]]["verdict"] == "chosen", r
    # nothing was made
    assert cl.get("/v1/vms")["vms"] == vms0
    assert cl.get("/v1/tasks") == tasks0
    assert cl.api("GET", "/v1/vms/c-dry")[0] == 404
    # no valid host: the create's 409 with counts per reason, the verdicts beside it
    st, e = cl.api("POST", "/v1/placement?explain=1", {"requires": ["gpu=2"]})
    assert st == 409 and e["error"]["code"] == "conflict", (st, e)
    assert "no valid host: 3 hosts: 3 without labels gpu=2" in e["error"]["message"], e
    assert len(e["placement"]["hosts"]) == 3 and e["placement"]["chosen"] is None, e
    st, e = cl.api("POST", "/v1/placement", {"memory": "100T", "start": True})
    assert st == 409 and e["error"]["code"] == "insufficient_capacity", (st, e)
    assert "no valid host: 3 hosts: 3 without" in e["error"]["message"], e
    # bad bodies are 400 (as create's), unknown names 404
    for bad in ({"cpus": "two"}, {"cpus": 0}, {"memory": "lots"}, {"bogus": 1},
                {"requires": ["no-equals"]}, {"start": "yes"}, [1, 2], "x"):
        st, e = cl.api("POST", "/v1/placement", bad)
        assert st == 400 and e["error"]["code"] in ("invalid_argument", "invalid_json"), \
            (bad, st, e)
    st, e = cl.api("POST", "/v1/placement", None)
    assert st == 400, (st, e)
    st, e = cl.api("POST", "/v1/placement?explain=maybe", {})
    assert st == 400, (st, e)
    for bad in ({"host": "h9"}, {"group": "c-nogroup"}, {"image": "c-noimage"}):
        st, e = cl.api("POST", "/v1/placement", bad)
        assert st == 404 and e["error"]["code"] == "not_found", (bad, st, e)
    assert cl.get("/v1/vms")["vms"] == vms0
    # the decisions are timed in /metrics: dry runs apart from creates
    assert _placement_count(cl, "dry-run") >= dry0 + 5
    assert _placement_count(cl, "create") == create0
    cl.yun("vm", "create", "c-dry2", "--image", "tiny", "--memory", "96M")
    assert _placement_count(cl, "create") == create0 + 1
    # the CLI
    p = cl.yun("vm", "place", "--memory", "96M", "--require", "gpu=1")
    assert p.stdout.startswith("would go to h3 "), p.stdout
    p = cl.yun("vm", "place", "--require", "zone=a", "--explain")
    assert "would go to h1" in p.stdout and "labels" in p.stdout, p.stdout
    p = cl.yun("vm", "place", "--require", "gpu=2", check=False)
    assert p.returncode == 1 and "no valid host" in p.stderr, p.stderr
    assert [v["name"] for v in cl.get("/v1/vms")["vms"]] == sorted(
        [v["name"] for v in vms0] + ["c-dry2"])
    cl.check_invariants()


def test_dry_run_moves_no_cursor(cl):
    """Round-robin: dry runs answer the host the next create takes, again and
    again; only the create moves the cursor on."""
    cl.restart_controllers(["-o", "placement_policy=round-robin"])
    try:
        def dry():
            st, r = cl.api("POST", "/v1/placement", {"memory": "96M"})
            assert st == 200, (st, r)
            return r["host"]["name"]
        for i in range(2):
            ask = [dry() for _ in range(4)]
            assert len(set(ask)) == 1, ask
            cl.yun("vm", "create", f"c-rr{i}", "--image", "tiny", "--memory", "96M")
            assert _placed(cl, [f"c-rr{i}"])[f"c-rr{i}"] == ask[0]
            assert dry() != ask[0]  # the create moved it on
        cl.check_invariants()
    finally:
        cl.delete_all_vms()
        cl.restart_controllers([])
