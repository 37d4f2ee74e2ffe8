#!/usr/bin/env python3
"""bench/vms_list_pg.py - GET /v1/vms with N VM rows (default 10,000) in
PostgreSQL, on a controller (`yund --role controller`, 127.0.0.1), the
issue's figure (goal: p99 under 20 ms).

Three figures, each the p50/p99 of REQS requests, median of RUNS runs:
- the list as clients see it (`GET /v1/vms`: the reply is cached until a VM
  row changes, so this is the steady state of a busy console polling);
- the list read from the store every time (`GET /v1/vms?host=ID`, which
  bypasses that cache; every row is on that host, so the reply is the same
  size): the cost after every change;
- a page of 100 (`GET /v1/vms?limit=100&after=NAME`), walking the pages
  by their "next" (and around again): what a paging client pays.

The rows are written straight into the database (claiming the leader's
epoch, as the fence asks), then `ANALYZE vms` is run, as autovacuum would
after such a bulk insert (without statistics PostgreSQL sorts the table
instead of walking the name index); no QEMU is involved.

    YUN_TEST_PG_URL=postgresql:///postgres?host=... bench/vms_list_pg.py
    N=10000 REQS=200 RUNS=3 YUN_BUILD=build bench/vms_list_pg.py
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG = os.environ.get("YUN_TEST_PG_URL")
N = int(os.environ.get("N", "10000"))
REQS = int(os.environ.get("REQS", "200"))
RUNS = int(os.environ.get("RUNS", "3"))
BUILD = os.environ.get("YUN_BUILD", "build")
TOKEN = "bench-list-token-0123456789"
HOST = "00000000-0000-4000-8000-0000000bench"


def db_url(name):
    base, _, query = PG.partition("?")
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def psql(url, sql):
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def timed(port, path):
    out = []
    for _ in range(REQS):
        t = time.perf_counter()
        st, body = get(port, path)
        out.append((time.perf_counter() - t) * 1000)
        if st != 200:
            sys.exit(f"{path}: {st} {body[:200]!r}")
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99) - 1]


def timed_pages(port, limit):
    out = []
    after = None
    for _ in range(REQS):
        path = f"/v1/vms?limit={limit}" + (f"&after={after}" if after else "")
        t = time.perf_counter()
        st, body = get(port, path)
        out.append((time.perf_counter() - t) * 1000)
        if st != 200:
            sys.exit(f"{path}: {st} {body[:200]!r}")
        r = json.loads(body)
        if len(r["vms"]) != min(limit, N):
            sys.exit(f"{path}: {len(r['vms'])} VMs, not {limit}")
        after = r.get("next")
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99) - 1]


def run_once(i):
    name = f"yun_bench_list_{os.getpid()}_{i}"
    psql(PG, f"CREATE DATABASE {name}")
    db = db_url(name)
    state = tempfile.mkdtemp(prefix="yun-bench-list-", dir="/tmp")
    for f, text in (("token", TOKEN), ("join", "bench-join-token-0123456789")):
        with open(os.path.join(state, f), "w") as fh:
            fh.write(text + "\n")
    port = free_port()
    p = subprocess.Popen([os.path.join(ROOT, BUILD, "yund"), "-s", state, "--store", db,
                          "--set", "role=controller", "--set", f"listen=127.0.0.1:{port}",
                          "--set", f"advertise_url=http://127.0.0.1:{port}",
                          "--set", f"token_file={state}/token",
                          "--set", f"join_token_file={state}/join", "--set", "log_level=warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                st, body = get(port, "/v1/health")
                if st == 200 and json.loads(body).get("leader"):
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("the controller did not become leader")
            time.sleep(0.05)
        psql(db, "SELECT set_config('yun.epoch', epoch::text, false) FROM leader;"
             "INSERT INTO vms(id,name,image,cpus,memory_mb,disk_bytes,cmdline,machine,accel,"
             "restart,cpu_weight,cpu_quota_us,cpu_period_us,cpuset,desired,state,pid,"
             "started_at,created_at,updated_at,host) "
             f"SELECT md5(g::text)::uuid::text, 'vm' || lpad(g::text, 6, '0'), 'tiny', 1, 256,"
             " 1073741824, 'console=ttyS0', 'pc', 'auto', 'no', 100, 0, 100000, '', 'stopped',"
             f" 'stopped', 0, 0, g, g, '{HOST}' FROM generate_series(1, {N}) g")
        psql(db, "ANALYZE vms")  # what autovacuum would do after a bulk insert
        st, body = get(port, "/v1/vms")
        count = len(json.loads(body)["vms"])
        if count != N:
            sys.exit(f"GET /v1/vms listed {count} VMs, not {N}")
        cached = timed(port, "/v1/vms")
        fresh = timed(port, f"/v1/vms?host={HOST}")
        paged = timed_pages(port, 100)
        return cached, fresh, len(body), paged
    finally:
        p.terminate()
        p.wait()
        subprocess.run(["rm", "-rf", state])
        psql(PG, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main():
    if not PG:
        sys.exit("set YUN_TEST_PG_URL (scripts/pg-test-server.sh prints one)")
    res = [run_once(i) for i in range(RUNS)]
    load = os.getloadavg()[0]
    med = lambda xs: statistics.median(xs)
    print(f"GET /v1/vms, {N} VMs in PostgreSQL, {REQS} requests a run, median of {RUNS} runs "
          f"(reply {res[0][2] // 1024} KiB; load {load:.2f}):")
    print(f"  cached list   p50 {med([r[0][0] for r in res]):.2f} ms  "
          f"p99 {med([r[0][1] for r in res]):.2f} ms")
    print(f"  from store    p50 {med([r[1][0] for r in res]):.2f} ms  "
          f"p99 {med([r[1][1] for r in res]):.2f} ms")
    print(f"  page of 100   p50 {med([r[3][0] for r in res]):.2f} ms  "
          f"p99 {med([r[3][1] for r in res]):.2f} ms")


if __name__ == "__main__":
    main()
