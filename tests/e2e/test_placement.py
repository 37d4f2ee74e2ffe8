"""Placement in the all-in-one (src/sched through ctl/place.c): the one
local host's verdict in --explain, groups with hard anti-affinity refusing
the second VM with the explanation (409), required labels the host lacks
(409 naming them), an unknown forced host or group (404), and the capacity
filter when the VM starts at create."""
from conftest import Yund


def test_explain_groups_labels_and_forced_host(state_dir):
    y = Yund(state_dir, ["--set", "host_cpus=2", "--set", "cpu_overcommit=1",
                         "--set", "host_memory=2G", "--set", "reserved_memory=512M"]).start()
    try:
        y.ensure_tiny()
        # --explain: the local host's verdict, chosen, with its numbers
        p = y.yun("vm", "create", "e2e-p1", "--image", "tiny", "--memory", "96M", "--explain")
        assert "created" in p.stdout, p.stdout
        lines = [l for l in p.stdout.splitlines() if " chosen " in l]
        assert len(lines) == 1 and "score" in lines[0], p.stdout
        assert "spread policy" in p.stdout, p.stdout

        # the API: explain true -> "placement" in the reply; the row names its host
        st, r = y.request("POST", "/v1/vms", {"name": "e2e-p2", "image": "tiny", "memory": "96M",
                                               "explain": True})
        assert st == 201, r
        pl = r["placement"]
        assert pl["hosts_total"] == 1 and pl["passed"] == 1, pl
        assert pl["hosts"][0]["verdict"] == "chosen" and pl["chosen"]["name"], pl
        assert pl["charged"] is False  # not started: only "could it ever fit"
        st, again = y.request("GET", "/v1/vms/e2e-p2/placement")
        assert st == 200 and again["chosen"] == pl["chosen"], again
        host_name = pl["chosen"]["name"]

        # a group with hard anti-affinity: the second member has no host
        p = y.yun("group", "create", "e2e-web", "--anti-affinity", "hard")
        assert "created" in p.stdout
        st, g = y.request("GET", "/v1/groups/e2e-web")
        assert st == 200 and g["policy"] == "anti-affinity" and g["hard"] is True, g
        y.yun("vm", "create", "e2e-web1", "--image", "tiny", "--memory", "96M",
              "--group", "e2e-web")
        assert y.vm("e2e-web1")["group"] == "e2e-web"
        p = y.yun("vm", "create", "e2e-web2", "--image", "tiny", "--memory", "96M",
                  "--group", "e2e-web", "--explain", check=False)
        assert p.returncode == 1, p
        assert "no valid host: 1 host: 1 with a member of group e2e-web" in p.stderr, p.stderr
        assert "anti-affinity" in p.stdout and "rejected" in p.stdout, p.stdout
        st, e = y.request("POST", "/v1/vms", {"name": "e2e-web2", "image": "tiny",
                                              "group": "e2e-web"})
        assert st == 409 and e["error"]["code"] == "conflict", e
        st, _ = y.request("GET", "/v1/vms/e2e-web2")
        assert st == 404  # nothing left behind
        p = y.yun("vm", "explain", "e2e-web2")
        assert "anti-affinity" in p.stdout and "has 1 member(s) here" in p.stdout, p.stdout
        st, gl = y.request("GET", "/v1/groups")
        assert [x["members"] for x in gl["groups"] if x["name"] == "e2e-web"] == [1], gl
        # a group with members is not deleted
        p = y.yun("group", "delete", "e2e-web", check=False)
        assert p.returncode == 1 and "has 1 VM" in p.stderr, p.stderr

        # soft anti-affinity only prefers: one host, so the VM goes there
        y.yun("group", "create", "e2e-soft", "--anti-affinity", "soft")
        y.yun("vm", "create", "e2e-s1", "--image", "tiny", "--memory", "96M", "--group", "e2e-soft")
        y.yun("vm", "create", "e2e-s2", "--image", "tiny", "--memory", "96M", "--group", "e2e-soft")

        # required labels the host lacks: 409 naming them
        p = y.yun("vm", "create", "e2e-gpu", "--image", "tiny", "--require", "gpu=1",
                  "--require", "zone=a", check=False)
        assert p.returncode == 1 and "without labels gpu=1,zone=a" in p.stderr, p.stderr
        st, e = y.request("POST", "/v1/vms", {"name": "e2e-gpu", "image": "tiny",
                                              "requires": ["gpu"]})
        assert st == 400 and "key=value" in e["error"]["message"], e

        # an unknown forced host or group: 404
        p = y.yun("vm", "create", "e2e-h", "--image", "tiny", "--host", "nope", check=False)
        assert p.returncode == 1 and "host 'nope' not found" in p.stderr, p.stderr
        st, e = y.request("POST", "/v1/vms", {"name": "e2e-h", "image": "tiny", "host": "nope"})
        assert st == 404, e
        st, e = y.request("POST", "/v1/vms", {"name": "e2e-h", "image": "tiny", "group": "nope"})
        assert st == 404 and "group 'nope' not found" in e["error"]["message"], e
        # the local host by name: fine
        y.yun("vm", "create", "e2e-h", "--image", "tiny", "--memory", "96M", "--host", host_name)

        # bad groups are refused and leave nothing
        st, e = y.request("POST", "/v1/groups", {"name": "Bad Name", "policy": "affinity"})
        assert st == 400, e
        st, e = y.request("POST", "/v1/groups", {"name": "e2e-x", "policy": "sideways"})
        assert st == 400, e
        st, e = y.request("POST", "/v1/groups", {"name": "e2e-web", "policy": "affinity"})
        assert st == 409, e
        st, gl = y.request("GET", "/v1/groups")
        assert sorted(x["name"] for x in gl["groups"]) == ["e2e-soft", "e2e-web"], gl

        # a create that starts is charged: 2 vCPUs fill the host, the next start-create is refused
        y.yun("vm", "create", "e2e-big", "--image", "tiny", "--cpus", "2", "--memory", "96M",
              "--start")
        p = y.yun("vm", "create", "e2e-more", "--image", "tiny", "--cpus", "1", "--memory", "96M",
                  "--start", check=False)
        assert p.returncode == 1 and "1 without 1 vCPUs free" in p.stderr, p.stderr
        assert "needs 1 vCPUs, 0 of 2 free" in p.stderr, p.stderr
        st, e = y.request("POST", "/v1/vms", {"name": "e2e-more", "image": "tiny", "cpus": 1,
                                              "memory": "96M", "start": True})
        assert st == 409 and e["error"]["code"] == "insufficient_capacity", e
        st, _ = y.request("GET", "/v1/vms/e2e-more")
        assert st == 404
        # once deleted, the group goes
        y.yun("vm", "delete", "e2e-web1")
        y.yun("group", "delete", "e2e-web")
        st, _ = y.request("GET", "/v1/groups/e2e-web")
        assert st == 404
        y.yun("vm", "stop", "--force", "e2e-big")
        y.check_invariants()
    finally:
        y.stop()


def test_concurrent_creates_never_overcommit(state_dir):
    """Six clients create-and-start at once on a host with room for two: the
    reservation is the row, so exactly two get a host, the others 409."""
    import threading
    y = Yund(state_dir, ["--set", "host_cpus=2", "--set", "cpu_overcommit=1",
                         "--set", "host_memory=2G", "--set", "reserved_memory=512M"]).start()
    try:
        y.ensure_tiny()
        out = {}

        def create(i):
            out[i] = y.request("POST", "/v1/vms", {"name": f"e2e-c{i}", "image": "tiny",
                                                   "cpus": 1, "memory": "96M", "start": True})
        ts = [threading.Thread(target=create, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        ok = [i for i, (st, _) in out.items() if st == 201]
        refused = [r for st, r in out.values() if st == 409]
        assert len(ok) == 2 and len(refused) == 4, out
        assert all(r["error"]["code"] == "insufficient_capacity" for r in refused), refused
        st, vms = y.request("GET", "/v1/vms")
        assert sorted(v["name"] for v in vms["vms"]) == sorted(f"e2e-c{i}" for i in ok), vms
        assert all(v["state"] == "running" for v in vms["vms"]), vms
        for i in ok:
            y.yun("vm", "stop", "--force", f"e2e-c{i}")
        y.check_invariants()
    finally:
        y.stop()
