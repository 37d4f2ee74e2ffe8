#!/usr/bin/env python3
"""Placement latency through the real API (issue 11: p99 < 5 ms at 10,000
hosts). On the cluster tests' harness (a controller in a network namespace,
the PostgreSQL of YUN_TEST_PG_URL): N simulated hosts join through
POST /v1/cluster/join and heartbeat through POST /v1/cluster/heartbeat with
their credentials (no QEMU: they are rows and leases), varied so filters
and weighers work (4, 8, 16, 32 or 64 CPUs, 16..256 GiB, labels zone=z0..z3,
ssd=1 on a third, gpu=1 on one in 50 (32-CPU ones), 1 % in maintenance, cpu_load and
mem_used varying per heartbeat); a thread keeps heartbeating all of them
through the measurement. Then REQUESTS dry-run placements
(POST /v1/placement, a mix of create bodies: plain, --require zone, ssd,
gpu, big memory with start, a group, a forced host, one no host fits) on
one keep-alive connection: the client's latency, the server's own
decision time (`took_us`) and the yun_placement_seconds{kind="dry-run"}
histogram of /metrics. RUNS runs per size; the median of the runs' p50 and
p99 is printed, with the load.

Usage: bench/placement_api.py [--hosts 1000,10000] [--requests 1000] [--runs 3]
                              [--policy spread]
Needs root, YUN_TEST_PG_URL and a build (YUN_BUILD, default build).
"""
import argparse
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cluster_figures import NsWorker, harness, pct, post  # noqa: E402

BEAT_PERIOD = 20.0  # each host heartbeats every 20 s; the lease is 60 s


def sim_host(i, cl):
    cpus = (4, 8, 16, 32, 64)[i % 5]
    mem = (16, 32, 64, 128, 256)[(i // 5) % 5] << 30
    labels = {"zone": f"z{i % 4}"}
    if i % 3 == 0:
        labels["ssd"] = "1"
    if i % 50 == 3:  # 32 CPUs
        labels["gpu"] = "1"
    addr = f"10.{200 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"
    return {"token": cl.join_token, "protocol": 1, "cpus": cpus, "memory": mem, "accel": "kvm",
            "cpu_model": "host", "cpu_flags": "", "labels": labels, "vms_dir": "/var/lib/yun/vms",
            "images_dir": cl.images_dir, "name": f"sim{i:05d}", "address": addr,
            # a port nothing listens on in the controller's namespace: the controller's calls
            # to the host (reconcile's host.orphans) are refused at once, not left hanging
            "agent_url": f"http://127.0.0.1:{20000 + i}", "run": f"r{i}"}


def join_all(cl, ctl, n):
    def join(conn, i):
        st, r, _ = post(conn, "/v1/cluster/join", sim_host(i, cl))
        assert st == 200, (st, r)
        return r["host_id"], r["credential"]

    nw = 8
    ws = [NsWorker(ctl.ns, ctl.addr, harness.CTL_PORT, range(k, n, nw), join) for k in range(nw)]
    for w in ws:
        w.start()
    creds = []
    for w in ws:
        w.join()
        if w.err:
            raise w.err
        creds += w.out
    return creds


def beat_loop(ns, addr, creds, stop, count):
    """In a process of its own (no GIL shared with the measuring client):
    heartbeats every host once per BEAT_PERIOD, evenly spread, until stop."""
    import http.client
    harness.netns._setns(ns)
    conn = http.client.HTTPConnection(addr, harness.CTL_PORT, timeout=30)
    rng = random.Random(7)
    gap = BEAT_PERIOD / len(creds)
    t_next = time.monotonic()
    while not stop.is_set():
        for hid, secret in creds:
            if stop.is_set():
                break
            st, r, _ = post(conn, "/v1/cluster/heartbeat",
                            {"run": "r", "cpu_load": round(rng.random(), 3),
                             "mem_used": rng.randrange(1, 16) << 30},
                            {"Authorization": f"Bearer {secret}", "X-Yun-Host": hid})
            if st != 200:
                raise SystemExit(f"heartbeat {st} {r}")
            with count.get_lock():
                count.value += 1
            t_next += gap
            d = t_next - time.monotonic()
            if d > 0:
                time.sleep(d)


class Beater:
    def __init__(self, ctl, creds):
        import multiprocessing as mp
        self.stop, self.count = mp.Event(), mp.Value("l", 0)
        self.proc = mp.get_context("fork").Process(
            target=beat_loop, args=(ctl.ns, ctl.addr, creds, self.stop, self.count), daemon=True)
        self.proc.start()

    def check(self):
        if not self.proc.is_alive():
            raise AssertionError(f"the heartbeat process ended ({self.proc.exitcode})")

    def end(self):
        self.check()
        self.stop.set()
        self.proc.join(30)
        return self.count.value


def bodies(n):
    """The mix of dry-run bodies (a create's)."""
    return [
        {"cpus": 2, "memory": "2G", "start": True},
        {"cpus": 1, "memory": "512M"},
        {"cpus": 4, "memory": "8G", "start": True, "requires": ["zone=z1"]},
        {"cpus": 2, "memory": "4G", "start": True, "requires": ["ssd=1", "zone=z2"]},
        {"cpus": 16, "memory": "8G", "start": True, "requires": ["gpu=1"]},
        {"cpus": 32, "memory": "200G", "start": True},
        {"cpus": 2, "memory": "1G", "start": True, "group": "bench-web"},
        {"cpus": 2, "memory": "1G", "start": True, "host": f"sim{n // 2:05d}"},
        {"cpus": 8, "memory": "1G", "start": True, "requires": ["zone=nowhere"]},  # 409
    ]


def metric_hist(ctl):
    """{le: count} of yun_placement_seconds{kind="dry-run"}, and its count."""
    st, text = ctl.request("GET", "/metrics")
    assert st == 200, st
    text = text if isinstance(text, str) else text.decode() if isinstance(text, bytes) else ""
    b, count = {}, 0
    for line in text.splitlines():
        if line.startswith('yun_placement_seconds_bucket{kind="dry-run",le="'):
            le = line.split('le="')[1].split('"')[0]
            b[le] = int(line.rsplit(" ", 1)[1])
        elif line.startswith('yun_placement_seconds_count{kind="dry-run"}'):
            count = int(line.rsplit(" ", 1)[1])
    return b, count


def hist_pct(b0, b1, p):
    """The upper bound of the bucket holding the p-th percentile of b1 - b0."""
    les = sorted((k for k in b1 if k != "+Inf"), key=float) + ["+Inf"]
    total = b1.get("+Inf", 0) - b0.get("+Inf", 0)
    for le in les:
        if total and (b1[le] - b0.get(le, 0)) >= total * p / 100:
            return le
    return "?"


def one_run(ctl, reqs, n):
    mix = bodies(n)
    auth = {"Authorization": f"Bearer {ctl.cluster.api_token}"}

    def place(conn, i):
        body = mix[i % len(mix)]
        st, r, dt = post(conn, "/v1/placement", body, auth)
        assert st in (200, 409), (st, r, body)
        return dt, (r or {}).get("took_us"), st

    b0, _ = metric_hist(ctl)
    w = NsWorker(ctl.ns, ctl.addr, harness.CTL_PORT, range(reqs), place)
    w.start()
    w.join()
    if w.err:
        raise w.err
    b1, _ = metric_hist(ctl)
    client = [x[0] for x in w.out]
    server = [x[1] / 1e6 for x in w.out if x[1] is not None]
    refused = sum(1 for x in w.out if x[2] == 409)
    return {"c50": pct(client, 50), "c99": pct(client, 99), "s50": pct(server, 50),
            "s99": pct(server, 99), "h99": hist_pct(b0, b1, 99), "refused": refused,
            "max": max(client)}


def bench(n, reqs, runs, policy):
    cl = harness.Cluster({}, heartbeat_ms=5000, dead_after_ms=60000,
                         ctl_extra=("-o", f"placement_policy={policy}", "-o", "log_level=warn",
                                    "-o", "reconcile_interval=10"))  # the default
    try:
        ctl = cl.controllers[0]
        t0 = time.monotonic()
        creds = join_all(cl, ctl, n)
        join_s = time.monotonic() - t0
        st, r = cl.api("POST", "/v1/groups", {"name": "bench-web", "policy": "anti-affinity",
                                              "hard": False})
        assert st == 201, (st, r)
        for i in range(0, n, 100):  # 1 % in maintenance
            st, r = cl.api("POST", f"/v1/hosts/sim{i + 7:05d}/maintenance", {})
            assert st == 200, (st, r)
        beater = Beater(ctl, creds)
        one_run(ctl, 50, n)  # warm: the model read once
        out = []
        load0 = os.getloadavg()
        for _ in range(runs):
            out.append(one_run(ctl, reqs, n))
            beater.check()
        load1 = os.getloadavg()
        beats = beater.end()
        med = {k: statistics.median(r[k] for r in out) for k in ("c50", "c99", "s50", "s99")}
        return {"n": n, "join_s": join_s, "runs": out, "med": med, "load": (load0, load1),
                "beats": beats}
    finally:
        cl.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", default="1000,10000")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--policy", default="spread")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; build {os.environ.get('YUN_BUILD', 'build')}; "
          f"policy {a.policy}; {a.requests} dry runs a run, {a.runs} runs")
    for n in (int(x) for x in a.hosts.split(",")):
        r = bench(n, a.requests, a.runs, a.policy)
        m = r["med"]
        print(f"\n{n} hosts (joined in {r['join_s']:.1f} s; {r['beats']} heartbeats during the "
              f"runs; load {r['load'][0][0]:.2f} -> {r['load'][1][0]:.2f})")
        for i, x in enumerate(r["runs"]):
            print(f"  run {i + 1}: client p50 {x['c50'] * 1e3:.2f} ms p99 {x['c99'] * 1e3:.2f} ms "
                  f"max {x['max'] * 1e3:.1f} ms; server (took_us) p50 {x['s50'] * 1e3:.2f} ms "
                  f"p99 {x['s99'] * 1e3:.2f} ms; /metrics p99 <= {x['h99']} s; "
                  f"{x['refused']} refused (409)")
        print(f"  median of runs: client p50 {m['c50'] * 1e3:.2f} ms, p99 {m['c99'] * 1e3:.2f} ms; "
              f"server p50 {m['s50'] * 1e3:.2f} ms, p99 {m['s99'] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
