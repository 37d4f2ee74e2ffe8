#!/usr/bin/env python3
"""`vm show` latency (GET /v1/vms/NAME) of a running VM, printed as a table:

  1. a tiny guest running normally;
  2. a tiny guest whose guest agent port is open but never answered
     (yun.silent_agent=1): every agent exchange runs into its timeout;
  3. the same VM while its QEMU is frozen (SIGSTOP): QMP does not answer.

p50/p99 over R requests each (connect, request, whole body read). With
--yund PATH another build is measured the same way (e.g. main's, where
`vm show` asks QMP on its command socket and a frozen QEMU costs the
request its QMP timeout: use --frozen-requests small there).

Usage: bench/vm_show_figures.py [--requests 300] [--frozen-requests 50] [--yund PATH]
Needs root, QEMU, a plain build (make all). Uses a private state dir in /tmp.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import Conn, call, teardown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SILENT = "console=ttyS0 panic=-1 quiet yun.silent_agent=1"


def show_latency(sock, name, n):
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        c = Conn(sock)
        c.request("GET", f"/v1/vms/{name}")
        r = c.getresponse()
        r.read()
        lat.append((time.perf_counter() - t0) * 1000)
        c.close()
        assert r.status == 200
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def wait(pred, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit("timed out")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--frozen-requests", type=int, default=50)
    ap.add_argument("--yund", default=os.path.join(ROOT, "build", "yund"))
    a = ap.parse_args()
    state = tempfile.mkdtemp(prefix="yun-bench-show-", dir="/tmp")
    sock = os.path.join(state, "yund.sock")
    log = open(os.path.join(state, "yund.log"), "wb")
    p = subprocess.Popen([a.yund, "-s", state, "--set", "log_level=warn"], stdout=log,
                         stderr=log)
    try:
        wait(lambda: os.path.exists(sock), 10)
        assert call(sock, "POST", "/v1/images/build", {"kind": "tiny"})[0] == 200
        for name, cmdline in (("show-plain", ""), ("show-silent", SILENT)):
            body = {"name": name, "image": "tiny", "memory": "96M", "start": True}
            if cmdline:
                body["cmdline"] = cmdline
            st, v = call(sock, "POST", "/v1/vms", body)
            assert st == 201, v
        wait(lambda: call(sock, "GET", "/v1/vms/show-silent")[1].get("guest_agent_error"))
        rows = [("running VM", show_latency(sock, "show-plain", a.requests)),
                ("guest agent never answering", show_latency(sock, "show-silent", a.requests))]
        pid = call(sock, "GET", "/v1/vms/show-silent")[1]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            rows.append(("QEMU frozen (SIGSTOP)",
                         show_latency(sock, "show-silent", a.frozen_requests)))
        finally:
            os.kill(pid, signal.SIGCONT)
        print(f"# load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
              f"{os.getloadavg()[2]:.2f}; yund {a.yund}", file=sys.stderr)
        print(f"{'vm show':<32} {'p50':>9} {'p99':>9}")
        for what, (p50, p99) in rows:
            print(f"{what:<32} {p50:>7.2f}ms {p99:>7.2f}ms")
    finally:
        teardown(p, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
