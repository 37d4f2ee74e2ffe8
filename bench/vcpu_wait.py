#!/usr/bin/env python3
"""Measured vs predicted vCPU wait (issue 16 part 6), printed as a table.

For 1..4 CPU-burning tiny VMs (one vCPU each, yun.burn=1) pinned with
--cpuset to one host CPU ("0") and then to two ("0-1"), a real yund samples
each VM's vCPU threads' /proc/PID/task/TID/schedstat every second. The
table gives, averaged over the VMs and over --samples samples taken after
the guests burn:
  measured  the share of wall time the vCPUs waited runnable (cpu_wait)
  model     what yund's closed M/M/c//N model predicted from the measured
            demand (cpu_wait_model, src/sched/erlang.c)
  ideal     max(0, 1 - c/N), the fair share of always-busy vCPUs
  erlang_c  the open M/M/c (Erlang C) wait ratio at offered load a = N busy
            vCPUs' worth, for contrast: it is undefined ("sat.") when a >= c
The machine's other load (uptime is printed) adds wait no model of these
VMs sees.

Usage: bench/vcpu_wait.py [--samples 8] [--max-vms 4]
Needs root, QEMU and a built yund (YUN_BUILD, default build).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from conftest import Yund, _cleanup, wait_for  # noqa: E402


def erlang_c_ratio(c, a):
    if a >= c:
        return None
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    pc = c * b / (c - a * (1 - b))
    return pc / (pc + c - a)


def series(y, vm, metric, since):
    st, r = y.request("GET", f"/v1/vms/{vm}/metrics?name={metric}&since={since}")
    assert st == 200, r
    return [p[1] for p in r["points"]]


def run(y, n, cpuset, samples):
    names = [f"bw-{n}-{cpuset.replace('-', '')}-{i}" for i in range(n)]
    for v in names:
        y.yun("vm", "create", v, "--image", "tiny", "--memory", "96M", "--cpus", "1",
              "--cpuset", cpuset, "--cmdline", "console=ttyS0 panic=-1 quiet yun.burn=1",
              "--start")
    for v in names:
        y.wait_marker(v, timeout=120)
    start = time.time()

    def since():
        return -int(time.time() - start) - 1

    need = samples + 2  # the first two after the marker are skipped
    for v in names:
        wait_for(lambda: min(len(series(y, v, "cpu_wait", since())),
                             len(series(y, v, "cpu_wait_model", since()))) >= need,
                 60 + 3 * need, interval=0.5, what=f"samples of {v}")
    meas, model = [], []
    for v in names:
        meas += series(y, v, "cpu_wait", since())[-samples:]
        model += series(y, v, "cpu_wait_model", since())[-samples:]
    for v in names:
        y.yun("vm", "delete", v, "--force")
    return sum(meas) / len(meas) / 100, sum(model) / len(model) / 100


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-vms", type=int, default=4)
    a = ap.parse_args()
    state = tempfile.mkdtemp(prefix="yun-bw-", dir="/tmp")
    y = Yund(state, ["--set", "sample_interval=1", "--set", "log_level=warn"]).start()
    try:
        y.ensure_tiny()
        print("load before:", subprocess.run(["uptime"], capture_output=True,
                                             text=True).stdout.strip())
        print(f"{'cpus':>4} {'vms':>3} {'measured':>9} {'model':>7} {'ideal':>6} "
              f"{'erlang_c':>8} {'|m-p|':>6}")
        for cpuset, c in (("0", 1), ("0-1", 2)):
            for n in range(1, a.max_vms + 1):
                m, p = run(y, n, cpuset, a.samples)
                e = erlang_c_ratio(c, float(n))
                print(f"{c:>4} {n:>3} {m:>9.3f} {p:>7.3f} {max(0.0, 1 - c / n):>6.3f} "
                      f"{'sat.' if e is None else f'{e:.3f}':>8} {abs(m - p):>6.3f}",
                      flush=True)
        print("load after: ", subprocess.run(["uptime"], capture_output=True,
                                             text=True).stdout.strip())
    finally:
        y.stop()
        _cleanup(state)


if __name__ == "__main__":
    main()
