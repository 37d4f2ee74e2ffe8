#!/usr/bin/env python3
"""Live migration figures (issue 12): yun's `vm migrate` against raw QEMU
migration of the same guest over the same link (bench/migrate_raw.py),
interleaved (yun, raw, yun, raw, ...), median of R moves each, for tiny
guests of 256 MiB and 1 GiB, idle and busy (busy: the tiny init's
yun.dirty=N rewrites N MiB of guest RAM over and over), both with the local
disk mirrored over NBD. The local disk holds DISK MiB of data written into
the overlay before the guest starts (the same bytes for raw), so the mirror
has something to copy: its throughput is the disk figure.

Printed: one row per case with the medians (total and downtime, QEMU's
query-migrate for both; yun's paused_ms and whole task too), the ratios
(goal: total <= 1.1x raw, downtime <= raw + 5 ms), the mirror's MB/s, and the
load (`uptime`) before and after.

Usage: bench/migrate_figures.py [--rounds 7] [--sizes 256,1024]
                                [--loads idle,busy] [--dirty 64] [--disk 64]
Needs root, QEMU, YUN_TEST_PG_URL (scripts/pg-test-server.sh start DIR) and a
build (YUN_BUILD, default build).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cluster import harness  # noqa: E402
import migrate_raw  # noqa: E402

TINY_CMDLINE = "console=ttyS0 panic=-1 quiet"


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fill(path, mib, qemu_io="qemu-io"):
    """mib MiB of a pattern written into the overlay (before any QEMU opens it)."""
    if mib:
        p = subprocess.run([qemu_io, "-f", "qcow2", "-c", f"write -P 0x5a 0 {mib}M", path],
                           capture_output=True, text=True)
        assert p.returncode == 0, (path, p.stdout, p.stderr)


def yun_case(cl, name, mem, busy, dirty, disk_mib):
    args = ["vm", "create", name, "--image", "tiny", "--memory", f"{mem}M", "--host", "h1",
            "--disk", f"{max(64, disk_mib * 2)}M"]
    if busy:
        args += ["--cmdline", f"{TINY_CMDLINE} yun.dirty={dirty}"]
    cl.yun(*args)
    v = cl.vm(name)
    fill(os.path.join(cl.agents["h1"].state_dir, "vms", v["id"], "disk.qcow2"), disk_mib)
    cl.yun("vm", "start", name)
    cl.wait_vm(name, "running")
    cl.wait_marker(name)
    if busy:
        harness.wait_for(lambda: "dirtying" in cl.console_log(name), 60, interval=0.5,
                         what="the dirtier")
    return cl.vm(name)


def yun_move(cl, name, to):
    t = cl.task_wait(cl.api("POST", f"/v1/vms/{name}/migrate", {"to": to}))
    assert t["state"] == "succeeded", t
    return t["result"]["outcome"]


def run_case(cl, work, mem, load, rounds, dirty, disk_mib):
    busy = load == "busy"
    name = f"bm-{mem}-{load}"
    v = yun_case(cl, name, mem, busy, dirty, disk_mib)
    argv = migrate_raw.runnable_argv(v["pid"], os.path.join(work, f"{name}-boot"))
    ydisk = os.path.join(cl.agents["h1"].state_dir, "vms", v["id"], "disk.qcow2")
    info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", ydisk],
                                     capture_output=True, text=True, check=True).stdout)
    seeded = os.path.join(work, f"{name}-fill.qcow2")
    migrate_raw.make_overlay(work + "/tmpfill", migrate_raw.backing_of(argv),
                             info["virtual-size"])
    shutil.move(os.path.join(work, "tmpfill", "disk.qcow2"), seeded)
    fill(seeded, disk_mib)
    hosts = [(cl.agents[h].ns, cl.agents[h].addr) for h in ("h1", "h2")]
    pair = migrate_raw.RawPair(work, hosts, argv, f"raw-{mem}-{load}", fill_from=seeded,
                               disk_size=info["virtual-size"])
    # the raw guest booted past its init (and its dirtier runs) before the first move
    con = os.path.join(pair.cur.dir, "console.log")
    harness.wait_for(lambda: os.path.exists(con) and (b"dirtying" if busy else harness.MARKER.encode())
                     in open(con, "rb").read(), 90, interval=0.2, what="the raw guest's init")
    ys, rs = [], []
    try:
        for i in range(rounds):
            ys.append(yun_move(cl, name, "h2" if i % 2 == 0 else "h1"))
            rs.append(pair.move(disk=True))
    finally:
        pair.close()
        cl.yun("vm", "delete", "--force", name, check=False)
    return ys, rs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--sizes", default="256,1024")
    ap.add_argument("--loads", default="idle,busy")
    ap.add_argument("--dirty", type=int, default=64)
    ap.add_argument("--disk", type=int, default=128)
    a = ap.parse_args()
    load0 = uptime()
    cl = harness.Cluster({"h1": "", "h2": ""})
    work = tempfile.mkdtemp(prefix="ymraw-", dir="/tmp")
    rows = []
    try:
        cl.ensure_tiny()
        for mem in (int(x) for x in a.sizes.split(",")):
            for load in a.loads.split(","):
                ys, rs = run_case(cl, work, mem, load, a.rounds, a.dirty, a.disk)
                rows.append((mem, load, ys, rs, uptime()))
                if os.environ.get("MIG_VERBOSE"):
                    print("yun", ys, "\nraw", rs, flush=True)
                print(f"{mem} MiB {load}: yun {[y['total_ms'] for y in ys]} / "
                      f"{[y['downtime_ms'] for y in ys]}; raw {[r['total_ms'] for r in rs]} / "
                      f"{[r['downtime_ms'] for r in rs]}", flush=True)
    finally:
        cl.close(check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nlive migration, tiny guest, h1 <-> h2 over the namespaces' veth, TCG, median of "
          f"{a.rounds}; local disk ({a.disk} MiB written) mirrored over NBD in both")
    print(f"{'case':<14} {'yun total':>9} {'raw total':>9} {'ratio':>6} {'yun down':>8} "
          f"{'raw down':>8} {'diff':>6} {'paused':>6} {'yun task':>8} {'yun disk':>9} "
          f"{'raw disk':>9}  load after")
    for mem, load, ys, rs, up in rows:
        yt, rt = med([y["total_ms"] for y in ys]), med([r["total_ms"] for r in rs])
        yd, rd = med([y["downtime_ms"] for y in ys]), med([r["downtime_ms"] for r in rs])
        yp, yy = med([y["paused_ms"] for y in ys]), med([y["yun_ms"] for y in ys])
        # the mirror's throughput: bytes over its time to ready
        rmb = med([r["disk_bytes"] / 1e6 / (r["mirror_ms"] / 1e3) for r in rs if r["mirror_ms"]])
        ymb = med([y["disk_bytes"] / 1e6 / (y["mirror_ms"] / 1e3) for y in ys
                   if y.get("mirror_ms")]) if any(y.get("mirror_ms") for y in ys) else float("nan")
        print(f"{mem:>4} MiB {load:<5} {yt:>9.0f} {rt:>9.0f} {yt / rt:>6.2f} {yd:>8.0f} "
              f"{rd:>8.0f} {yd - rd:>+6.0f} {yp:>6.0f} {yy:>8.0f} {ymb:>7.1f}MB {rmb:>7.1f}MB  "
              f"{up.split('load average:')[-1].strip()}")
    print(f"load before: {load0}\nload after:  {uptime()}")


if __name__ == "__main__":
    main()
