#!/usr/bin/env python3
"""API latency while long storage operations run (issue 10, item 2).

Starts a yund on a fresh state directory, boots a tiny VM, fills a big
volume with data (qemu-io), then runs a full clone of it, a compact and an
export at the same time (three tasks, three qemu-img jobs) and, while any of
them runs, measures GET /v1/vms and GET /v1/vms/NAME (vm show of a running
VM) back to back over the Unix socket. Prints p50/p99/max of each, the
sample counts, the load average and how long each task took.

    YUN_BUILD=build bench/storage_load.py --size 20G --data 10G

The defaults are the issue's figure (20 GiB volume, 10 GiB of data); the
disk is real, so that takes a few minutes and ~30 GiB of free space.
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("YUN_BUILD", "build"))


class Conn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def req(sock, method, path, body=None):
    c = Conn(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (json.loads(data) if data else None)


def size_bytes(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


def fill(path, data, chunk=256 << 20):
    args = ["qemu-io", "-f", "qcow2"]
    for off in range(0, data, chunk):
        args += ["-c", f"write -P 0x5a {off} {min(chunk, data - off)}"]
    subprocess.run(args + [path], check=True, capture_output=True)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="20G")
    ap.add_argument("--data", default="10G")
    ap.add_argument("--keep", action="store_true", help="keep the state directory")
    a = ap.parse_args()
    size, data = size_bytes(a.size), size_bytes(a.data)
    state = tempfile.mkdtemp(prefix="yun-bench-storage-", dir="/var/tmp")
    sock = os.path.join(state, "yund.sock")
    log = open(os.path.join(state, "yund.log"), "wb")
    yund = subprocess.Popen([os.path.join(BUILD, "yund"), "-s", state], stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                if req(sock, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        r = req(sock, "POST", "/v1/images/build", {"kind": "tiny"})
        while r[0] == 202:
            t = req(sock, "GET", f"/v1/tasks/{r[1]['task']['id']}?wait=30")[1]
            if t["state"] != "running":
                r = req(sock, "POST", "/v1/images/build", {"kind": "tiny"})
        st, vm = req(sock, "POST", "/v1/vms", {"name": "bench-vm", "image": "tiny",
                                               "memory_mb": 128, "start": True})
        assert st in (200, 201, 202), vm
        for _ in range(600):
            if req(sock, "GET", "/v1/vms/bench-vm")[1]["state"] == "running":
                break
            time.sleep(0.1)
        vols = {}
        for name, sz, dt in (("big", size, data), ("cmp", size // 4, data // 4),
                             ("exp", size // 4, data // 4)):
            st, v = req(sock, "POST", "/v1/volumes", {"name": name, "size": sz})
            assert st == 201, v
            t0 = time.time()
            fill(v["path"], dt)
            vols[name] = v
            print(f"filled {name}: {dt >> 20} MiB in {time.time() - t0:.1f} s", flush=True)
        # compact reclaims: drop half of cmp's data first
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"discard 0 {data // 8}",
                        vols["cmp"]["path"]], check=True, capture_output=True)
        os.makedirs(os.path.join(state, "exchange"), exist_ok=True)
        tasks = {}
        for key, (path, body) in {
                "clone": ("/v1/volumes/big/actions/clone", {"name": "big-copy", "full": True}),
                "compact": ("/v1/volumes/cmp/actions/compact", None),
                "export": ("/v1/volumes/exp/actions/export",
                           {"path": os.path.join(state, "exchange", "exp.qcow2")})}.items():
            st, r = req(sock, "POST", path, body)
            assert st == 202, r
            tasks[key] = (r["task"]["id"], time.time())
        lst, show, done = [], [], {}
        while len(done) < len(tasks):
            t0 = time.perf_counter()
            assert req(sock, "GET", "/v1/vms")[0] == 200
            t1 = time.perf_counter()
            assert req(sock, "GET", "/v1/vms/bench-vm")[0] == 200
            t2 = time.perf_counter()
            lst.append((t1 - t0) * 1000)
            show.append((t2 - t1) * 1000)
            if len(lst) % 50 == 0:
                for key, (tid, start) in tasks.items():
                    if key not in done:
                        t = req(sock, "GET", f"/v1/tasks/{tid}")[1]
                        if t["state"] != "running":
                            done[key] = (t["state"], time.time() - start)
        load = os.getloadavg()
        print(f"while a full clone of {a.size} ({a.data} of data), a compact and an export ran:")
        for label, xs in (("GET /v1/vms", lst), ("GET /v1/vms/bench-vm (vm show)", show)):
            worst = max(range(len(xs)), key=xs.__getitem__)
            print(f"  {label:32s} n={len(xs):6d}  p50 {pct(xs, 50):6.2f} ms  "
                  f"p99 {pct(xs, 99):6.2f} ms  max {max(xs):7.2f} ms (sample #{worst})")
        for key, (state_, secs) in done.items():
            print(f"  task {key:8s} {state_:10s} {secs:7.1f} s")
        print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
              f"({os.cpu_count()} cpus)")
    finally:
        try:
            req(sock, "POST", "/v1/vms/bench-vm/actions/force-stop")
            req(sock, "DELETE", "/v1/vms/bench-vm?force=true")
        except Exception:
            pass
        yund.terminate()
        yund.wait(timeout=30)
        # a QEMU left behind (VMs outlive yund by design) goes too
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if state.encode() in f.read():
                        os.kill(int(d), 9)
            except (OSError, ValueError):
                pass
        if not a.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
