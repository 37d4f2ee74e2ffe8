"""The monitor across hosts (docs/cluster.md, issue 11 points 1 and 6): every
agent samples itself and pushes the sample to the controller, which keeps
each host's series: /metrics on the controller has a `host` label on every
host and VM series (h1..h3 each its own), a VM's series carry the host it
runs on, `yun top -o json` lists every host and the VMs with their host, and
an alert rule with scope host:h2 evaluates h2's series only."""
import json
import os
import re

import pytest

from . import harness

HOSTS = ("h1", "h2", "h3")


def _metrics(cl):
    st, body = cl.api("GET", "/metrics")
    assert st == 200, (st, body)
    return body.decode() if isinstance(body, bytes) else str(body)


def _series(text, family):
    """{labels-string: value} of one family's samples."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^" + re.escape(family) + r"\{([^}]*)\} (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def _hosts_in(text, family):
    return {re.search(r'host="([^"]*)"', k).group(1) for k in _series(text, family)}


def test_every_host_has_its_series(cl):
    # memory comes with the first pushed sample, CPU with the second (a rate)
    harness.wait_for(lambda: _hosts_in(_metrics(cl), "yun_host_memory_used_bytes") >= set(HOSTS),
                     40, interval=0.5, what="every host's memory series on /metrics")
    text = harness.wait_for(
        lambda: (lambda t: t if _hosts_in(t, "yun_host_cpu_percent") >= set(HOSTS) else None)(
            _metrics(cl)), 40, interval=0.5, what="every host's CPU series on /metrics")
    for fam in ("yun_host_memory_used_bytes", "yun_host_memory_available_bytes", "yun_host_load1",
                "yun_host_cpu_percent"):
        s = _series(text, fam)
        assert all('host="' in k for k in s), (fam, s)
        for h in HOSTS:
            v = [x for k, x in s.items() if f'host="{h}"' in k]
            assert len(v) == 1, (fam, h, s)  # one series per host, not a shared one
            assert v[0] >= 0, (fam, h, v)
    cpu = _series(text, "yun_host_cpu_percent")
    assert all(0 <= v <= 100 for v in cpu.values()), cpu
    # the controller (no host of its own) adds no unlabelled host series
    assert not re.search(r"^yun_host_\w+ ", text, re.M), text
    # KSM is the machine's: every agent reads it and pushes it (the test hosts
    # share one kernel, so every host shows the same run value)
    text = harness.wait_for(
        lambda: (lambda t: t if _hosts_in(t, "yun_host_ksm_run") >= set(HOSTS) else None)(
            _metrics(cl)), 40, interval=0.5, what="every host's KSM series on /metrics")
    with open("/sys/kernel/mm/ksm/run") as f:
        run = int(f.read())
    ksm = _series(text, "yun_host_ksm_run")
    assert sorted(ksm) == sorted(f'host="{h}"' for h in HOSTS), ksm
    assert all(v == run for v in ksm.values()), (run, ksm)
    assert _hosts_in(text, "yun_host_ksm_saved_bytes") >= set(HOSTS), text

    # yun top, non-interactive: every host, with its figures
    p = cl.yun("top", "-n", "1", "-o", "json")
    top = json.loads(p.stdout)
    names = sorted(h["name"] for h in top["hosts"])
    assert names == sorted(HOSTS), top["hosts"]
    for h in top["hosts"]:
        assert h["mem_used"] > 0 and h["mem_available"] > 0, h


@pytest.mark.usefixtures("tiny")
def test_vm_series_carry_their_host(cl):
    cl.yun("vm", "create", "c-mon1", "--image", "tiny", "--memory", "96M", "--start")
    cl.wait_vm("c-mon1", ("running",), 120)
    host = cl.vm("c-mon1")["host"]
    assert host in HOSTS, cl.vm("c-mon1")

    def vm_line():
        s = _series(_metrics(cl), "yun_vm_cpu_seconds_total")
        return [k for k in s if 'vm="c-mon1"' in k] or None

    lines = harness.wait_for(vm_line, 40, interval=0.5, what="c-mon1's counters on /metrics")
    assert lines == [f'vm="c-mon1",host="{host}"'], lines
    # every VM family has the host label, the VM's own host
    text = _metrics(cl)
    for line in text.splitlines():
        if line.startswith("yun_vm_") and 'vm="c-mon1"' in line:
            assert f'host="{host}"' in line, line
    top = json.loads(cl.yun("top", "-n", "1", "-o", "json").stdout)
    v = next(x for x in top["vms"] if x["name"] == "c-mon1")
    assert v["host"] == host, v
    # the host's memory view, from its pushed samples: the VM's size is
    # committed, its RSS resident
    st, h = cl.api("GET", f"/v1/hosts/{host}")
    assert st == 200, h
    mv = h["memory_view"]
    assert mv["sampled"] is True and mv["committed"] == 96 << 20, mv
    assert 0 < mv["resident"] and mv["swapped"] == 0 and mv["shared"] >= 0, mv
    assert "vm memory    committed 96M" in cl.yun("host", "show", host).stdout
    cl.yun("vm", "delete", "c-mon1", "--force")


def test_host_scoped_rule_fires_for_that_host(cl):
    # load1 >= 0 always holds: h2's fires, and only h2's (not h1 or h3)
    cl.yun("alert", "rule", "add", "c-h2-load", "--scope", "host:h2", "--metric", "load1",
           "--op", ">=", "--threshold", "0", "--window", "30s")
    try:
        rule = json.loads(cl.yun("alert", "rule", "list", "-o", "json").stdout)
        assert [r["scope"] for r in rule if r["name"] == "c-h2-load"] == ["host:h2"], rule

        def firing():
            st, b = cl.api("GET", "/v1/alerts?state=firing")
            assert st == 200, (st, b)
            return [a for a in b["alerts"] if a["rule"] == "c-h2-load"] or None

        alerts = harness.wait_for(firing, 40, interval=0.5, what="the host:h2 rule to fire")
        assert [a["object"] for a in alerts] == ["host/h2"], alerts
        # a rule on a host that does not exist is taken, and never fires
        cl.yun("alert", "rule", "add", "c-hx-load", "--scope", "host:hx", "--metric", "load1",
               "--op", ">=", "--threshold", "0", "--window", "30s")
        st, b = cl.api("GET", "/v1/alerts?state=firing")
        assert not [a for a in b["alerts"] if a["rule"] == "c-hx-load"], b
        # a VM metric on a host scope is refused
        p = cl.yun("alert", "rule", "add", "c-bad", "--scope", "host:h2", "--metric", "mem_rss",
                   "--op", ">", "--threshold", "1", check=False)
        assert p.returncode != 0 and "unknown metric" in (p.stderr + p.stdout), p
    finally:
        cl.yun("alert", "rule", "rm", "c-h2-load", check=False)
        cl.yun("alert", "rule", "rm", "c-hx-load", check=False)


def _push(cl, agent, events):
    """One events batch to the controller as agent's host (its credential),
    from its namespace, under a run of its own."""
    with open(os.path.join(agent.state_dir, "cluster.json")) as f:
        rec = json.load(f)
    conn = harness._NsHTTP(agent.ns, cl.leader().addr, harness.CTL_PORT, 10)
    conn.request("POST", "/v1/cluster/events",
                 body=json.dumps({"run": "r-mon-test-" + os.urandom(4).hex(), "events": events}),
                 headers={"Content-Type": "application/json", "X-Yun-Host": rec["host_id"],
                          "Authorization": f"Bearer {rec['credential']}"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, json.loads(data) if data else None


def test_bad_pushed_samples_change_nothing(cl):
    harness.wait_for(lambda: "h2" in _hosts_in(_metrics(cl), "yun_host_load1"), 40, interval=0.5,
                     what="h2's load on /metrics")
    good_host = {"clk_tck": 100, "memory": {"total": 1 << 30, "available": 1 << 29},
                 "load1": 12345.0}
    bad = [
        {"at": 0, "host": good_host, "vms": []},                        # no time
        {"host": good_host, "vms": []},                                 # no time at all
        {"at": 1, "host": dict(good_host, memory={"total": 10, "available": 11}), "vms": []},
        {"at": 1, "host": dict(good_host, cpu={"busy": 11, "total": 10}), "vms": []},
        {"at": 1, "host": dict(good_host, clk_tck=0), "vms": []},
        {"at": 1, "host": good_host, "vms": "all"},
        {"at": 1, "host": good_host,                                    # one VM twice
         "vms": [{"vm": "00000000-0000-4000-8000-000000000001", "pid": 5}] * 2},
    ]
    ctl = cl.leader()
    before = ctl.logtext(tail=200000).count("its host.sample is refused")
    st, b = _push(cl, cl.agents["h2"],
                  [{"seq": i + 1, "type": "host.sample", "data": d} for i, d in enumerate(bad)])
    assert st == 200 and b["ack"] == len(bad), (st, b)  # taken as events, refused as samples
    harness.wait_for(
        lambda: ctl.logtext(tail=200000).count("its host.sample is refused") >= before + len(bad),
        10, interval=0.2, what="the controller to refuse every bad sample")
    loads = _series(_metrics(cl), "yun_host_load1")
    assert all(v != 12345.0 for v in loads.values()), loads
    # h2's own samples still come and are taken
    assert "h2" in _hosts_in(_metrics(cl), "yun_host_memory_used_bytes")
