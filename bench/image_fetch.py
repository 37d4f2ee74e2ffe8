#!/usr/bin/env python3
"""The rate at which a host with a library of its own gets an image
(docs/cluster.md, "Images"), on the cluster tests' harness (network
namespaces, PostgreSQL, a real controller and agents): h1 mounts the
cluster's library, h4 has its own images_dir. Each run imports a fresh
image of SIZE MiB of random bytes (raw) and creates a VM on h4 with it, so
the task image.fetch copies it over the cluster's HTTP. Printed, each the
median of RUNS: the agent's copy (GET, write, SHA-256 as it comes, fsync,
rename: the task result's agent_ms) in MB/s, and the whole task (the
controller's sha256sum of a new image included) in ms; and the load.

Usage: bench/image_fetch.py [--size 100] [--runs 5]
Needs root, YUN_TEST_PG_URL (scripts/pg-test-server.sh start DIR) and a
build (YUN_BUILD, default build).
"""
import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from cluster import harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=100, help="MiB")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    cl = harness.Cluster({"h1": ""})
    try:
        lib = os.path.join(cl.run_dir, "h4-images")
        h4 = harness.Agent(cl, "h4", images_dir=lib)
        h4.start()
        cl.agents["h4"] = h4
        rates, tasks, loads = [], [], []
        for i in range(a.runs):
            name = f"bfetch{i}"
            src = os.path.join(cl.agents["h1"].state_dir, "exchange", f"{name}.raw")
            os.makedirs(os.path.dirname(src), exist_ok=True)
            with open(src, "wb") as f:
                for _ in range(a.size):
                    f.write(os.urandom(1 << 20))
            t = cl.task_wait(cl.api("POST", "/v1/images/import",
                                    {"name": name, "file": src, "format": "raw"}))
            assert t["state"] == "succeeded", t
            os.unlink(src)
            cl.yun("vm", "create", f"b{i}", "--image", name, "--memory", "96M", "--host", "h4")
            ts = [t for t in cl.get("/v1/tasks?limit=1000")["tasks"]
                  if t["kind"] == "image.fetch" and t["object"]["name"] == f"{name}@h4"]
            assert len(ts) == 1 and ts[0]["state"] == "succeeded", ts
            r = ts[0]["result"]
            assert r["fetched"] == r["bytes"] >= a.size << 20, r
            rates.append(r["fetched"] / 1e6 / (max(r["agent_ms"], 1) / 1000))
            tasks.append(ts[0]["finished_at"] - ts[0]["started_at"])
            loads.append(os.getloadavg()[0])
            print(f"run {i}: {rates[-1]:.0f} MB/s (agent {r['agent_ms']} ms), task {tasks[-1]} ms,"
                  f" load {loads[-1]:.2f}", flush=True)
            cl.yun("vm", "delete", f"b{i}")
            cl.api("DELETE", f"/v1/images/{name}")
        print(f"\nimage.fetch of {a.size} MiB, median of {a.runs}: agent copy "
              f"{statistics.median(rates):.0f} MB/s; whole task {statistics.median(tasks):.0f} ms; "
              f"load (1 min) {statistics.median(loads):.2f}")
        cl.agents.pop("h4")
        h4.stop_checked()
        cl.api("DELETE", "/v1/hosts/h4")
    finally:
        cl.close()


if __name__ == "__main__":
    main()
