#!/usr/bin/env python3
"""Figures for the VM monitor (issue 5), printed as a table:

  1. yund CPU% and RSS while sampling 20 and then 100 real tiny VMs, measured
     from /proc/<yund>/stat over a window of several sampling intervals,
     at the default 10 s interval and at 1 s.
  2. GET /metrics latency (median, p99) with those VMs.
  3. Time from a threshold crossing to the webhook delivery: a paused
     CPU-burning VM is resumed (its CPU crosses the threshold at that
     moment); the clock stops when the test's webhook receiver gets the
     POST. Median of N; bounded below by the sampling interval (1 s here).

Usage: bench/monitor_figures.py [--vms 20,100] [--window 60] [--runs 5]
"""
import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YUND = os.path.join(ROOT, "build", "yund")
TCK = os.sysconf("SC_CLK_TCK")


from benchlib import call, teardown  # noqa: E402


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def start_yund(state, interval, extra=()):
    log = open(os.path.join(state, f"yund-{interval}.log"), "ab")
    p = subprocess.Popen([YUND, "-s", state, "--set", "log_level=warn", "--set",
                          f"sample_interval={interval}", "--set", "cpu_overcommit=64",
                          *extra], stdout=log, stderr=log)
    sock = os.path.join(state, "yund.sock")
    for _ in range(200):
        try:
            if call(sock, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.05)
    return p, sock


def measure_overhead(pid, seconds):
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    time.sleep(seconds)
    t1, c1 = time.monotonic(), cpu_ticks(pid)
    return 100.0 * (c1 - c0) / TCK / (t1 - t0), rss_mib(pid)


def scrape(sock, n=50):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        st, body = call(sock, "GET", "/metrics", raw=True)
        lat.append((time.perf_counter() - t0) * 1000)
        assert st == 200
    lat.sort()
    return statistics.median(lat), lat[int(len(lat) * 0.99) - 1]


class Hook:
    def __init__(self):
        self.times = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if body["status"] == "firing":
                    outer.times.append(time.monotonic())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.srv = http.server.HTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vms", default="20,100")
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    counts = [int(x) for x in a.vms.split(",")]
    state = tempfile.mkdtemp(prefix="yun-mb-", dir="/tmp")
    rows = []
    p = None
    try:
        p, sock = start_yund(state, 10)
        assert call(sock, "POST", "/v1/images/build", {"kind": "tiny"})[0] == 200
        made = 0
        for target in counts:
            while made < target:
                st, v = call(sock, "POST", "/v1/vms", {"name": f"m{made:03d}", "image": "tiny",
                                                      "memory": "96M", "start": True})
                if st != 201:
                    print(f"# could start only {made} VMs: {v}", file=sys.stderr)
                    break
                made += 1
            time.sleep(20)  # let the guests finish booting
            for interval in (10, 1):
                p.send_signal(signal.SIGTERM)
                p.wait()
                p, sock = start_yund(state, interval)
                time.sleep(2 * interval + 1)
                cpu, rss = measure_overhead(p.pid, a.window)
                med, p99 = scrape(sock)
                rows.append((made, interval, cpu, rss, med, p99))
        # threshold crossing -> webhook
        p.send_signal(signal.SIGTERM)
        p.wait()
        p, sock = start_yund(state, 1)
        for v in call(sock, "GET", "/v1/vms")[1]["vms"]:
            call(sock, "DELETE", f"/v1/vms/{v['name']}?force=true")
        hook = Hook()
        st, v = call(sock, "POST", "/v1/vms", {"name": "burn", "image": "tiny", "memory": "96M",
                                              "cmdline": "console=ttyS0 panic=-1 quiet yun.burn=1",
                                              "start": True})
        time.sleep(8)
        st, r = call(sock, "POST", "/v1/alert-rules",
                     {"name": "hot", "metric": "cpu", "scope": "vm:burn", "agg": "last",
                      "window": "2s", "op": ">", "threshold": 20, "for": 0,
                      "channels": [f"webhook:http://127.0.0.1:{hook.port}/"]})
        assert st == 201, r
        lat = []
        for _ in range(a.runs):
            call(sock, "POST", "/v1/vms/burn/actions/pause")
            time.sleep(4)  # the alert resolves while paused
            n0 = len(hook.times)
            t0 = time.monotonic()
            call(sock, "POST", "/v1/vms/burn/actions/resume")
            while len(hook.times) == n0 and time.monotonic() - t0 < 30:
                time.sleep(0.005)
            if len(hook.times) > n0:
                lat.append((hook.times[n0] - t0) * 1000)
        print(f"{'VMs':>5} {'interval':>9} {'yund CPU%':>10} {'yund RSS':>9} "
              f"{'/metrics p50':>13} {'p99':>8}")
        for made, interval, cpu, rss, med, p99 in rows:
            print(f"{made:>5} {interval:>8}s {cpu:>9.2f}% {rss:>7.1f}Mi {med:>11.2f}ms "
                  f"{p99:>6.2f}ms")
        if lat:
            print(f"threshold crossing -> webhook (sample interval 1 s), median of {len(lat)}: "
                  f"{statistics.median(lat):.0f} ms (min {min(lat):.0f}, max {max(lat):.0f})")
    finally:
        teardown(p, state, settle=1)


if __name__ == "__main__":
    sys.exit(main())
