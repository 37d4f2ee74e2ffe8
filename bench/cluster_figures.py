#!/usr/bin/env python3
"""Figures for the cluster (issue 11), on the cluster tests' harness
(tests/e2e/cluster/harness.py: network namespaces, PostgreSQL, real yund
controllers and agents), printed as a table:

  1. heartbeats: N simulated hosts join through the real API
     (POST /v1/cluster/join) and heartbeat every 5 s (POST
     /v1/cluster/heartbeat with their credentials) for a window; the
     controller's CPU over the window (% of one core, from /proc) and the
     heartbeats' latency p50/p99. No QEMU: the hosts are only rows and leases.
  2. failover: two controllers on one database; kill -9 of the leader, time
     until a write (POST /v1/groups) succeeds through the other. R rounds.
  3. create-to-running of a tiny VM (`POST /v1/vms` with start, then until
     the row is running) on a remote agent through the controller, against
     the same on an all-in-one yund; median of R each.

Usage: bench/cluster_figures.py [--hosts 1000] [--window 30] [--rounds 3]
                                [--only heartbeats|failover|create]
Needs root, QEMU, YUN_TEST_PG_URL (scripts/pg-test-server.sh start DIR) and
a build (YUN_BUILD, default build; e.g. YUN_BUILD=build/san).
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from cluster import harness, netns  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class NsWorker(threading.Thread):
    """A thread inside namespace ns with one keep-alive connection to the
    controller: runs fn(conn) for each item handed to it."""

    def __init__(self, ns, host, port, items, fn):
        super().__init__(daemon=True)
        self.ns, self.host, self.port, self.items, self.fn = ns, host, port, items, fn
        self.out, self.err = [], None

    def run(self):
        import http.client
        try:
            netns._setns(self.ns)
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            for it in self.items:
                self.out.append(self.fn(conn, it))
            conn.close()
        except Exception as e:  # reported by the caller
            self.err = e


def post(conn, path, body, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    t0 = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers=h)
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data) if data else None, time.perf_counter() - t0


def heartbeats(n, window):
    cl = harness.Cluster({})
    try:
        ctl = cl.controllers[0]
        facts = {"token": cl.join_token, "protocol": 1, "cpus": 16, "memory": 64 << 30,
                 "accel": "kvm", "cpu_model": "host", "cpu_flags": "", "labels": {},
                 "vms_dir": "/var/lib/yun/vms", "images_dir": cl.images_dir}

        def join(conn, i):
            body = dict(facts, name=f"sim{i:05d}", address=f"10.200.{i // 250}.{i % 250 + 1}",
                        agent_url=f"http://10.200.{i // 250}.{i % 250 + 1}:7781", run=f"r{i}")
            st, r, _ = post(conn, "/v1/cluster/join", body)
            assert st == 200, (st, r)
            return r["host_id"], r["credential"]

        nw = 8
        ws = [NsWorker(ctl.ns, ctl.addr, harness.CTL_PORT, range(k, n, nw), join) for k in range(nw)]
        t0 = time.monotonic()
        for w in ws:
            w.start()
        for w in ws:
            w.join()
            if w.err:
                raise w.err
        creds = [c for w in ws for c in w.out]
        join_s = time.monotonic() - t0
        period = 5.0

        def beat(conn, cred):
            hid, secret = cred
            st, r, dt = post(conn, "/v1/cluster/heartbeat", {"run": "r", "cpu_load": 0.5,
                                                              "mem_used": 1 << 30},
                             {"Authorization": f"Bearer {secret}", "X-Yun-Host": hid})
            assert st == 200, (st, r)
            return dt

        lat = []
        c0, w0 = cpu_seconds(ctl.proc.pid), time.monotonic()
        rounds = max(1, int(window / period))
        for _ in range(rounds):
            start = time.monotonic()
            ws = [NsWorker(ctl.ns, ctl.addr, harness.CTL_PORT, creds[k::nw], beat)
                  for k in range(nw)]
            for w in ws:
                w.start()
            for w in ws:
                w.join()
                if w.err:
                    raise w.err
                lat += w.out
            time.sleep(max(0.0, period - (time.monotonic() - start)))
        cpu = (cpu_seconds(ctl.proc.pid) - c0) / (time.monotonic() - w0) * 100
        return [(f"join {n} hosts", f"{join_s:.1f} s"),
                (f"controller CPU, {n} hosts heartbeating every 5 s", f"{cpu:.1f} % of a core"),
                ("heartbeat latency p50 / p99",
                 f"{pct(lat, 50) * 1000:.1f} / {pct(lat, 99) * 1000:.1f} ms")]
    finally:
        cl.close()


def failover(rounds):
    cl = harness.Cluster({}, controllers=2)
    try:
        took = []
        for i in range(rounds):
            old = cl.leader()
            old.kill9()
            t0 = time.monotonic()
            harness.wait_for(lambda: cl.api("POST", "/v1/groups",
                                            {"name": f"fo{i}", "policy": "affinity"})[0] in (200, 201),
                             30, interval=0.05, what="a write on the new leader")
            took.append(time.monotonic() - t0)
            old.start()
        return [("leader death to the standby serving writes, median / max",
                 f"{statistics.median(took):.2f} / {max(took):.2f} s")]
    finally:
        cl.close()


def create_to_running(rounds):
    def timed(api, name):
        t0 = time.monotonic()
        st, r = api("POST", "/v1/vms", {"name": name, "image": "tiny", "memory": "96M",
                                         "start": True})
        assert st in (200, 201, 202), (st, r)
        harness.wait_for(lambda: api("GET", f"/v1/vms/{name}")[1].get("state") == "running", 60,
                         interval=0.005, what=f"{name} running")
        return time.monotonic() - t0

    out = []
    cl = harness.Cluster({"h1": ""})
    try:
        cl.ensure_tiny()
        remote = []
        for i in range(rounds):
            remote.append(timed(cl.api, f"b-r{i}"))
            cl.yun("vm", "delete", "--force", f"b-r{i}")
    finally:
        cl.close()
    import tempfile
    sd = tempfile.mkdtemp(prefix="yc-aio-", dir="/tmp")
    y = harness.common.Yund(sd).start()
    try:
        y.ensure_tiny()
        local = []
        for i in range(rounds):
            local.append(timed(y.request, f"b-l{i}"))
            y.yun("vm", "delete", "--force", f"b-l{i}")
    finally:
        y.stop()
        harness.common._cleanup(sd)
    r, lo = statistics.median(remote), statistics.median(local)
    out.append(("create-to-running, remote agent / all-in-one (median)",
                f"{r * 1000:.0f} / {lo * 1000:.0f} ms (hop {(r - lo) * 1000:+.0f} ms)"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--window", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("heartbeats", "failover", "create"))
    a = ap.parse_args()
    rows = []
    if a.only in (None, "heartbeats"):
        rows += heartbeats(a.hosts, a.window)
    if a.only in (None, "failover"):
        rows += failover(a.rounds)
    if a.only in (None, "create"):
        rows += create_to_running(a.rounds)
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
