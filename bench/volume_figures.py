#!/usr/bin/env python3
"""Storage figures (issue 4): linked-clone time through the API for a 2 GiB
volume full of data and for a 20 GiB one (to show it does not grow with the
source), median of N; full-copy time of the 2 GiB one for contrast; and
compaction: bytes reclaimed on a volume after its data is zeroed.

Usage: bench/volume_figures.py [--runs 5]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from benchlib import call, start_yund, teardown  # noqa: E402


def timed(sock, method, path, body=None):
    t0 = time.perf_counter()
    st, r = call(sock, method, path, body)
    assert st in (200, 201), r
    return (time.perf_counter() - t0) * 1000, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    p, state, sock = start_yund("yun-vb-")
    try:
        rows = []
        for name, size in (("src2g", "2G"), ("src20g", "20G")):
            _, v = timed(sock, "POST", "/v1/volumes", {"name": name, "size": size})
            # qemu-io caps one request, so fill in 256 MiB writes
            cmds = []
            for k in range(8):  # 8 x 256 MiB = 2 GiB of data
                cmds += ["-c", f"write -P 0x11 {k * 256}M 256M"]
            subprocess.run(["qemu-io", "-f", "qcow2", *cmds, v["path"]], check=True,
                           capture_output=True)
            lat = []
            for i in range(a.runs):
                ms, _ = timed(sock, "POST", f"/v1/volumes/{name}/actions/clone",
                              {"name": f"{name}-c{i}"})
                lat.append(ms)
            for i in range(a.runs):
                call(sock, "DELETE", f"/v1/volumes/{name}-c{i}")
            rows.append((name, size, statistics.median(lat), min(lat), max(lat)))
        full_ms, _ = timed(sock, "POST", "/v1/volumes/src2g/actions/clone",
                           {"name": "full", "full": True})
        _, v = timed(sock, "POST", "/v1/volumes", {"name": "zeroed", "size": "1G",
                                                   "format": "raw"})
        with open(v["path"], "r+b") as f:
            chunk = b"\x5a" * (1 << 20)
            for _ in range(256):
                f.write(chunk)
            f.seek(0)
            zero = b"\0" * (1 << 20)
            for _ in range(256):
                f.write(zero)
            os.fsync(f.fileno())
        comp_ms, r = timed(sock, "POST", "/v1/volumes/zeroed/actions/compact")
        print(f"{'figure':<46} {'value':>14}")
        for name, size, med, lo, hi in rows:
            print(f"{'linked clone of a ' + size + ' volume (2 GiB of data)':<46} "
                  f"{med:>10.1f} ms  (median of {a.runs}, {lo:.1f}-{hi:.1f})")
        print(f"{'full copy of the 2G volume':<46} {full_ms:>10.0f} ms")
        print(f"{'compact 1G raw, 256 MiB written then zeroed':<46} "
              f"{r['reclaimed_bytes'] / (1 << 20):>10.0f} MiB reclaimed in {comp_ms:.0f} ms "
              f"({r['before_bytes'] >> 20} -> {r['after_bytes'] >> 20} MiB)")
    finally:
        teardown(p, state)


if __name__ == "__main__":
    sys.exit(main())
