#!/usr/bin/env python3
"""VM disk figures (issue 4), on a running Debian guest under TCG:

- snapshot create time on a running VM through the API (median of N): with
  the guest agent freezing and thawing the file systems (application-
  consistent), and on a tiny VM without an agent (crash-consistent);
- live merge (snapshot delete of the running disk's parent) time;
- compact: a volume is attached to the guest, 256 MiB of files are written
  and deleted inside the guest (rm + fstrim), the volume is detached and
  compacted: bytes on disk at each step and what compact reclaimed.

Usage: bench/disk_figures.py [--runs 5]
Needs the Debian image (built on first use, cached in ../.yun-image-cache).
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("YUN_IMAGE_CACHE", os.path.join(os.path.dirname(ROOT),
                                                       ".yun-image-cache"))

from benchlib import call, start_yund, teardown  # noqa: E402


def ok(st, r):
    assert 200 <= st < 300, r
    return r


def wait(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(1)
    raise SystemExit(f"timed out waiting for {what}")


def guest(sock, vm, cmd, timeout=600):
    """Runs sh -c cmd in the guest through the agent; returns stdout."""
    r = ok(*call(sock, "POST", f"/v1/vms/{vm}/exec",
                 {"argv": ["sh", "-c", cmd], "timeout": timeout}))
    assert r["exitcode"] == 0, r
    return r["stdout"]


def snapshot_times(sock, vm, runs):
    took = []
    for i in range(runs):
        t0 = time.perf_counter()
        s = ok(*call(sock, "POST", f"/v1/vms/{vm}/snapshots", {"name": f"b{i}"}))
        took.append((time.perf_counter() - t0) * 1000)
        cons = s["consistency"]
    merge = []
    for i in reversed(range(runs)):
        t0 = time.perf_counter()
        st, r = call(sock, "DELETE", f"/v1/vms/{vm}/snapshots/b{i}")
        ok(st, r)
        while call(sock, "GET", f"/v1/vms/{vm}/snapshots/b{i}")[0] != 404:
            time.sleep(0.01)
        merge.append((time.perf_counter() - t0) * 1000)
    return took, merge, cons


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    p, state, sock = start_yund("yun-db-", f"image_cache={CACHE}")
    try:
        ok(*call(sock, "POST", "/v1/images/build", {"kind": "tiny"}))
        wait(lambda: call(sock, "POST", "/v1/images/build", {"kind": "debian"})[0] == 200,
             3600, "the debian image")
        ok(*call(sock, "POST", "/v1/vms", {"name": "tinyb", "image": "tiny", "memory": "128M",
                                           "start": True}))
        ok(*call(sock, "POST", "/v1/vms", {"name": "deb", "image": "debian", "cpus": 2,
                                           "memory": "1024M", "start": True}))
        wait(lambda: ok(*call(sock, "GET", "/v1/vms/deb")).get("guest_agent"), 600, "the agent")
        guest(sock, "deb", "true")

        t_tiny, m_tiny, c_tiny = snapshot_times(sock, "tinyb", a.runs)
        t_deb, m_deb, c_deb = snapshot_times(sock, "deb", a.runs)

        v = ok(*call(sock, "POST", "/v1/volumes", {"name": "scratch", "size": "1G"}))
        ok(*call(sock, "POST", "/v1/volumes/scratch/actions/attach", {"vm": "deb"}))
        dev = "/dev/disk/by-id/virtio-scratch"
        wait(lambda: "yes" in guest(sock, "deb", f"test -b {dev} && echo yes || true"), 60,
             "the volume in the guest")
        guest(sock, "deb", f"mkfs.ext4 -q {dev} && mkdir -p /mnt/s && mount {dev} /mnt/s")
        empty = os.stat(v["path"]).st_blocks * 512
        guest(sock, "deb", "for i in 1 2 3 4; do head -c 64M /dev/urandom > /mnt/s/f$i; done; "
                           "sync")
        written = os.stat(v["path"]).st_blocks * 512
        guest(sock, "deb", "rm /mnt/s/f* && sync && fstrim -v /mnt/s && umount /mnt/s")
        trimmed = os.stat(v["path"]).st_blocks * 512
        st, r = call(sock, "POST", "/v1/volumes/scratch/actions/detach")
        ok(st, r)
        wait(lambda: ok(*call(sock, "GET", "/v1/volumes/scratch"))["state"] == "ready", 120,
             "the detach")
        t0 = time.perf_counter()
        c = ok(*call(sock, "POST", "/v1/volumes/scratch/actions/compact"))
        comp_ms = (time.perf_counter() - t0) * 1000

        # Without discard (fstrim not run, or a guest that cannot): the
        # deleted files' blocks still hold data on the host. Zero-filling
        # the free space in the guest (what virt-sparsify does) turns them
        # into zero clusters, which compact drops.
        v2 = ok(*call(sock, "POST", "/v1/volumes", {"name": "scratch2", "size": "1G"}))
        ok(*call(sock, "POST", "/v1/volumes/scratch2/actions/attach", {"vm": "deb"}))
        dev2 = "/dev/disk/by-id/virtio-scratch2"
        wait(lambda: "yes" in guest(sock, "deb", f"test -b {dev2} && echo yes || true"), 60,
             "the second volume in the guest")
        guest(sock, "deb", f"mkfs.ext4 -q -E nodiscard {dev2} && mkdir -p /mnt/t && "
                           f"mount -o nodiscard {dev2} /mnt/t && "
                           "for i in 1 2 3 4; do head -c 64M /dev/urandom > /mnt/t/f$i; done; "
                           "sync && rm /mnt/t/f* && sync")
        deleted = os.stat(v2["path"]).st_blocks * 512
        # in the background: while the guest writes ~1 GiB under TCG its
        # agent channel can stay busy for tens of seconds
        guest(sock, "deb", "nohup sh -c 'dd if=/dev/zero of=/mnt/t/zero bs=1M; sync; "
                           "rm /mnt/t/zero; sync; umount /mnt/t; touch /run/zeroed' "
                           ">/dev/null 2>&1 &")

        def zero_done():
            try:
                return "yes" in guest(sock, "deb", "test -e /run/zeroed && echo yes || true")
            except AssertionError:
                return False
        wait(zero_done, 1200, "the zero fill in the guest")
        zeroed = os.stat(v2["path"]).st_blocks * 512
        ok(*call(sock, "POST", "/v1/volumes/scratch2/actions/detach"))
        wait(lambda: ok(*call(sock, "GET", "/v1/volumes/scratch2"))["state"] == "ready", 120,
             "the detach")
        t0 = time.perf_counter()
        c2 = ok(*call(sock, "POST", "/v1/volumes/scratch2/actions/compact"))
        comp2_ms = (time.perf_counter() - t0) * 1000

        def row(label, xs):
            print(f"{label:<58} {statistics.median(xs):>8.1f} ms  (median of {len(xs)}, "
                  f"{min(xs):.1f}-{max(xs):.1f})")
        mib = 1 << 20
        print(f"{'figure':<58} {'value':>11}")
        row(f"snapshot create, running Debian VM ({c_deb}-consistent)", t_deb)
        row(f"snapshot create, running tiny VM ({c_tiny}-consistent)", t_tiny)
        row("snapshot delete = live merge (block-stream), Debian VM", m_deb)
        row("snapshot delete = live merge (block-stream), tiny VM", m_tiny)
        print(f"{'volume 1G: on disk after mkfs':<58} {empty / mib:>8.1f} MiB")
        print(f"{'  after writing 256 MiB of files in the guest':<58} {written / mib:>8.1f} MiB")
        print(f"{'  after rm + fstrim in the guest (discard passes through)':<58} "
              f"{trimmed / mib:>8.1f} MiB")
        print(f"{'  after compact':<58} {c['after_bytes'] / mib:>8.1f} MiB "
              f"(compact itself reclaimed {c['reclaimed_bytes'] / mib:.1f} MiB in "
              f"{comp_ms:.0f} ms)")
        print(f"{'  reclaimed in all, write -> compacted':<58} "
              f"{(written - c['after_bytes']) / mib:>8.1f} MiB")
        print(f"{'volume 1G, no discard: 256 MiB written then deleted':<58} "
              f"{deleted / mib:>8.1f} MiB")
        print(f"{'  after zero-filling the free space in the guest':<58} {zeroed / mib:>8.1f} MiB")
        print(f"{'  after compact':<58} {c2['after_bytes'] / mib:>8.1f} MiB "
              f"(compact reclaimed {c2['reclaimed_bytes'] / mib:.1f} MiB in {comp2_ms:.0f} ms)")
    finally:
        teardown(p, state)


if __name__ == "__main__":
    sys.exit(main())
