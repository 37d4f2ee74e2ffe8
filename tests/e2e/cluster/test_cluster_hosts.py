"""Hosts joining a controller (docs/cluster.md): the three agents are up
with their labels and facts; `yun host list|show|maintenance|activate|remove`;
joins with a wrong token, a wrong protocol, impossible facts or a taken name
are refused with a clear error and change nothing; a host removed with a call
in flight answers it at once."""
import json
import os
import stat
import threading
import time

import pytest

from . import harness


def test_hosts_join_and_list_up(cl):
    hosts = cl.hosts()
    assert sorted(hosts) == ["h1", "h2", "h3"], hosts
    for name, h in hosts.items():
        assert h["state"] == "up", h
        assert h["cpus"] >= 1 and h["memory"] > 0, h
        assert h.get("id"), h
    assert hosts["h3"]["labels"].get("gpu") == "1", hosts["h3"]
    assert hosts["h1"]["labels"] == {"zone": "a"}, hosts["h1"]
    out = cl.yun("host", "list").stdout
    for name in ("h1", "h2", "h3"):
        line = next(x for x in out.splitlines() if x.split()[:1] == [name])
        assert " up" in line, out
    show = cl.yun("host", "show", "h3").stdout
    assert "gpu=1" in show and cl.agents["h3"].addr in show, show
    # the agent keeps its credential, private
    p = os.path.join(cl.agents["h1"].state_dir, "cluster.json")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    with open(p) as f:
        rec = json.load(f)
    assert rec["host_id"] == hosts["h1"]["id"] and len(rec["credential"]) == 64, rec


def _join(cl, **over):
    ag = cl.agents["h1"]
    body = {"token": cl.join_token, "protocol": 1, "name": "hx", "address": "10.0.0.9",
            "agent_url": "http://10.0.0.9:7781", "run": "r-test", "cpus": 2, "memory": 1 << 30,
            "accel": "tcg", "cpu_model": "qemu64", "cpu_flags": "", "labels": {},
            "vms_dir": "/nonexistent/vms", "images_dir": cl.images_dir}
    body.update(over)
    # from an agent's namespace, as an agent would, with no API token
    conn = harness._NsHTTP(ag.ns, cl.controllers[0].addr, harness.CTL_PORT, 10)
    conn.request("POST", "/v1/cluster/join", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data) if data else None


def test_bad_joins_change_nothing(cl):
    before = cl.hosts()
    st, e = _join(cl, token="not-the-join-token-at-all")
    assert st == 401, (st, e)
    st, e = _join(cl, protocol=2)
    assert st == 400, (st, e)
    assert "speaks protocol 1 only" in e["error"]["message"], e
    st, e = _join(cl, cpus=0)
    assert st == 400 and "cpus" in e["error"]["message"], (st, e)
    st, e = _join(cl, memory=-5)
    assert st == 400 and "memory" in e["error"]["message"], (st, e)
    st, e = _join(cl, name="Not A Name")
    assert st == 400 and "name" in e["error"]["message"], (st, e)
    st, e = _join(cl, agent_url="ftp://x")
    assert st == 400 and "agent_url" in e["error"]["message"], (st, e)
    st, e = _join(cl, images_dir="images")  # not an absolute path
    assert st == 400 and "images_dir" in e["error"]["message"], (st, e)
    st, e = _join(cl, name="h2")  # held by another host id
    assert st == 409, (st, e)
    after = cl.hosts()
    assert sorted(after) == sorted(before)
    assert {n: h["id"] for n, h in after.items()} == {n: h["id"] for n, h in before.items()}
    # a request with a made-up credential is refused
    conn = harness._NsHTTP(cl.agents["h1"].ns, cl.controllers[0].addr, harness.CTL_PORT, 10)
    conn.request("POST", "/v1/cluster/heartbeat", body='{"run":"x","cpu_load":0,"mem_used":0}',
                 headers={"Authorization": "Bearer " + "0" * 64, "X-Yun-Host": before["h1"]["id"],
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 401


@pytest.mark.usefixtures("tiny")
def test_maintenance_activate_and_remove_refused(cl):
    cl.yun("host", "maintenance", "h2")
    cl.wait_host("h2", "maintenance", 10)
    for i in range(2):
        cl.yun("vm", "create", f"c-m{i}", "--image", "tiny", "--memory", "96M")
    vms = {v["name"]: cl.vm_host(v) for v in cl.vms()}
    assert "h2" not in vms.values(), vms
    p = cl.yun("vm", "create", "c-m9", "--image", "tiny", "--memory", "96M", "--host", "h2",
               check=False)
    assert p.returncode != 0 and "maintenance" in p.stderr, p.stderr
    cl.yun("host", "activate", "h2")
    cl.wait_host("h2", "up", 10)
    # a host with VMs is not removed
    busy = next(iter(vms.values()))
    p = cl.yun("host", "remove", busy, check=False)
    assert p.returncode != 0 and "VM" in p.stderr, p.stderr
    assert cl.host_state(busy) == "up"
    cl.check_invariants()


def test_link_cut_lease_lapses_and_restore_rejoins(cl):
    """A host whose link is cut goes down once its lease lapses (not
    before), the others stay up; the link back, it is up with its id."""
    before = cl.hosts()
    t0 = time.monotonic()
    cl.fabric.cut("h1")
    assert not cl.fabric.link_up("h1")
    cl.wait_host("h1", "down", cl.dead_after_ms / 1000 + 10)
    assert time.monotonic() - t0 >= (cl.dead_after_ms - cl.heartbeat_ms) / 1000 * 0.9
    assert cl.host_state("h2") == "up" and cl.host_state("h3") == "up"
    assert cl.agents["h1"].running()  # the agent itself lives on
    cl.wait_event(lambda e: "h1" in json.dumps(e) and "down" in json.dumps(e), what="host h1 down")
    cl.fabric.restore("h1")
    cl.wait_host("h1", "up", 20)
    assert cl.hosts()["h1"]["id"] == before["h1"]["id"]


def test_agent_kill9_and_restart_keeps_its_id(cl):
    before = cl.hosts()["h2"]
    cl.agents["h2"].kill9()
    cl.wait_host("h2", "down", cl.dead_after_ms / 1000 + 10)
    cl.agents["h2"].start()
    after = cl.hosts()["h2"]
    assert after["id"] == before["id"] and after["state"] == "up", (before, after)
    assert sorted(cl.hosts()) == ["h1", "h2", "h3"]


def test_removed_host_answers_its_pending_call(cl):
    """A call in flight on a host's agent when the host is removed is
    answered at once, 503 unavailable ("its agent left"), not left to its
    deadline: h3's link is cut so its agent never answers a volume's
    disk.create, then h3 is removed; the link back, its agent joins again
    with its id."""
    before = cl.hosts()["h3"]
    got = {}
    cl.fabric.cut("h3")
    try:
        def create():
            got["reply"] = cl.api("POST", "/v1/volumes",
                                  {"name": "c-vleft", "size": 16 << 20, "host": "h3"}, timeout=120)
        t = threading.Thread(target=create)
        t.start()
        harness.wait_for(lambda: any(v["name"] == "c-vleft" for v in cl.get("/v1/volumes")["volumes"]),
                         10, interval=0.05, what="the volume's row (its disk.create out)")
        cl.yun("host", "remove", "h3")
        t.join(120)
        assert not t.is_alive(), "the volume's create is still waiting"
        st, body = got["reply"]
        assert st == 503 and body["error"]["code"] == "unavailable", (st, body)
        assert "its agent left" in body["error"]["message"], body
        assert not any(v["name"] == "c-vleft" for v in cl.get("/v1/volumes")["volumes"])
    finally:
        cl.fabric.restore("h3")
    cl.wait_host("h3", "up", 30)
    assert cl.hosts()["h3"]["id"] == before["id"]
