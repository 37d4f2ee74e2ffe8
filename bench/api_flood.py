#!/usr/bin/env python3
"""Idle-connection flood (issue 9, item 4): N idle Unix-socket connections to
a yund started with a soft and hard descriptor limit of 1024, then what yund
spends and how a new client is answered. Prints, per yund build given:
yund's CPU over 5 s, what /healthz gets while flooded and after, and how
much yund logged.

Usage: bench/api_flood.py [--conns 1100] [--yund build/yund ...]
Needs the plain build (make all). Uses a private state dir in /tmp."""
import argparse
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def healthz(sock):
    """Reads the reply even when yund sheds the connection before the request."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    t0 = time.monotonic()
    try:
        s.connect(sock)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n")
        except BrokenPipeError:
            pass
        data = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            data += c
        return (time.monotonic() - t0) * 1000, data.split(b"\r\n")[0].decode() or "closed"
    except OSError as e:
        return (time.monotonic() - t0) * 1000, type(e).__name__
    finally:
        s.close()


def flood(yund, nconns):
    d = tempfile.mkdtemp(prefix="yun-flood-", dir="/tmp")
    log = os.path.join(d, "out.log")
    p = subprocess.Popen(["prlimit", "--nofile=1024:1024", yund, "-s", d],
                         stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    sock = os.path.join(d, "yund.sock")
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        conns = []
        for _ in range(nconns):
            s = socket.socket(socket.AF_UNIX)
            for _ in range(200):
                try:
                    s.connect(sock)
                    break
                except BlockingIOError:  # backlog full for a moment
                    time.sleep(0.005)
            conns.append(s)
        time.sleep(1)
        t0, w0 = ticks(p.pid), time.monotonic()
        during = [healthz(sock) for _ in range(3)]
        time.sleep(5 - (time.monotonic() - w0) if time.monotonic() - w0 < 5 else 0)
        cpu = (ticks(p.pid) - t0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - w0) * 100
        for s in conns:
            s.close()
        time.sleep(1)
        after = healthz(sock)
    finally:
        p.terminate()
        p.wait()
        size = os.path.getsize(log)
        shutil.rmtree(d, ignore_errors=True)
    return cpu, during, after, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1100)
    ap.add_argument("--yund", action="append")
    a = ap.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (a.conns + 64, max(a.conns + 64, resource.getrlimit(
                           resource.RLIMIT_NOFILE)[1])))
    print(f"# {a.conns} idle connections; load {os.getloadavg()[0]:.2f}")
    for y in a.yund or [os.path.join(ROOT, "build", "yund")]:
        cpu, during, after, size = flood(y, a.conns)
        worst = max(ms for ms, _ in during)
        print(f"{y}: yund CPU {cpu:.1f}% | /healthz while flooded: {during[0][1]} "
              f"(slowest of 3: {worst:.1f} ms) | after: {after[1]} in {after[0]:.1f} ms | "
              f"log {size} bytes")


if __name__ == "__main__":
    main()
