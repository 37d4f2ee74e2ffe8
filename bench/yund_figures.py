#!/usr/bin/env python3
"""Figures for the single-host platform (issue 2), printed as a table:

  1. start latency: `POST /v1/vms/X/actions/start` until QMP is ready (the reply,
     which yund sends after QMP `cont`) and until the guest prints its init
     marker, against the very same QEMU argv started by hand (minus -S, so the
     guest runs at once). Median of N runs each; overhead = yun - hand.
  2. API latency: GET /v1/vms p50/p99 over R requests with 1,000 VMs defined.
  3. yund RSS with 20 running VMs.

With --split yund logs at debug and vm.launch's time split is printed for
each start, with yund's own part of it: the API start's time minus QEMU's
(from the fork to its first QMP answer), a figure the hand run's noise does
not blur. With --busy N, N guests that burn every vCPU they have (tiny image, yun.burn=1)
run during the start figures, so they show what a start pays for its
neighbours; --yund PATH measures another build (e.g. an older one) the same way.

Usage: bench/yund_figures.py [--runs 5] [--vms 1000] [--running 20] [--busy 0] [--yund PATH]
                             [--start-only] [--split]
Needs root, QEMU, the plain build (make all). Uses a private state dir in /tmp.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YUND = os.path.join(ROOT, "build", "yund")
MARKER = b"YUN-TINY-INIT-OK"


from benchlib import Conn, call, teardown  # noqa: E402


def wait_file_contains(path, needle, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{needle!r} never appeared in {path}")


def median(xs):
    return statistics.median(xs)


def bench_start(sock, runs):
    yun_ready, yun_marker, hand_ready, hand_marker = [], [], [], []
    call(sock, "POST", "/v1/vms", {"name": "bench-start", "image": "tiny", "memory": "128M"})
    def run_yun():
        vm = call(sock, "GET", "/v1/vms/bench-start")[1]
        log = vm["console_log"]
        if os.path.exists(log):
            os.unlink(log)
        t0 = time.monotonic()
        st, v = call(sock, "POST", "/v1/vms/bench-start/actions/start")
        t1 = time.monotonic()
        assert st == 200, v
        t2 = wait_file_contains(log, MARKER)
        yun_ready.append((t1 - t0) * 1000)
        yun_marker.append((t2 - t0) * 1000)
        with open(f"/proc/{v['pid']}/cmdline", "rb") as f:
            argv[:] = [a.decode() for a in f.read().split(b"\0") if a]
        call(sock, "POST", "/v1/vms/bench-start/actions/force-stop")
        while call(sock, "GET", "/v1/vms/bench-start")[1]["state"] != "stopped":
            time.sleep(0.01)
        time.sleep(0.5)

    def run_hand():
        # The same QEMU by hand, in a scratch copy of the VM directory.
        vm = call(sock, "GET", "/v1/vms/bench-start")[1]
        hand = tempfile.mkdtemp(prefix="yb-", dir="/tmp")
        vmdir = vm["directory"]
        shutil.copy(os.path.join(vmdir, "disk.qcow2"), hand)
        hargv = [a.replace(vmdir, hand) for a in argv if a != "-S"]
        # A confined yun QEMU is detached by yund (-sandbox spawn=deny rules
        # out -daemonize); by hand it runs the same argv with -daemonize
        # instead, in the scratch directory (its disk name is relative).
        if "-sandbox" in hargv:
            i = hargv.index("-sandbox")
            del hargv[i:i + 2]
        if "-daemonize" not in hargv:
            hargv.append("-daemonize")
        if "-pidfile" not in hargv:  # a confined QEMU's pidfile is written by yund
            hargv += ["-pidfile", "qemu.pid"]
        # yund hands QEMU the image, kernel and initrd as open fds (-add-fd
        # fd=3 for the disk, /proc/self/fd/4 and 5): open the same files here.
        fds = {}
        for a in hargv:
            m = re.match(r"fd=(\d+),set=\d+,opaque=[^:]*:(.*)$", a)
            if m:
                fds[int(m.group(1))] = m.group(2)
        imgdir = os.path.dirname(next(iter(fds.values()))) if fds else ""
        for i, a in enumerate(hargv):
            if a.startswith("/proc/self/fd/") and hargv[i - 1] in ("-kernel", "-initrd"):
                fds[int(a.rsplit("/", 1)[1])] = os.path.join(
                    imgdir, "vmlinuz" if hargv[i - 1] == "-kernel" else "initrd.img")
        opened = {n: os.open(path, os.O_RDONLY) for n, path in fds.items()}

        def give_fds():
            for n, fd in opened.items():
                os.dup2(fd, n)
                os.set_inheritable(n, True)
        t0 = time.monotonic()
        subprocess.run(hargv, check=True, cwd=hand, preexec_fn=give_fds,
                       close_fds=False)  # -daemonize: returns once QMP listens
        for fd in opened.values():
            os.close(fd)
        t1 = time.monotonic()
        t2 = wait_file_contains(os.path.join(hand, "console.log"), MARKER)
        hand_ready.append((t1 - t0) * 1000)
        hand_marker.append((t2 - t0) * 1000)
        with open(os.path.join(hand, "qemu.pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        time.sleep(0.5)
        shutil.rmtree(hand, ignore_errors=True)

    argv = []
    run_yun()  # learn the argv (and warm the page cache); not counted
    yun_ready.clear()
    yun_marker.clear()
    for i in range(runs):
        # alternate which goes first, so neither always gets the colder slot
        for f in ((run_yun, run_hand) if i % 2 == 0 else (run_hand, run_yun)):
            f()
    call(sock, "DELETE", "/v1/vms/bench-start?force=true")
    print("# start->marker, each run (ms): yun " + " ".join(f"{x:.0f}" for x in yun_marker) +
          " | hand " + " ".join(f"{x:.0f}" for x in hand_marker), file=sys.stderr)
    print(f"# best case: yun {min(yun_ready):.1f}/{min(yun_marker):.0f} ms, hand "
          f"{min(hand_ready):.1f}/{min(hand_marker):.0f} ms (QMP ready / marker)", file=sys.stderr)
    bench_start.yun_ready = yun_ready  # each counted run, in order (for --split)
    return [median(yun_ready), median(hand_ready), median(yun_marker), median(hand_marker)]


def bench_api(sock, nvms, requests):
    for i in range(nvms):
        st, v = call(sock, "POST", "/v1/vms", {"name": f"bench-{i:04d}", "image": "tiny",
                                              "memory": "128M"})
        assert st == 201, v
    lat = []
    for _ in range(requests):
        # Timed: connect, request, the whole body read. Decoding the JSON in
        # Python is the client's cost, so it is done after the clock stops.
        t0 = time.perf_counter()
        c = Conn(sock)
        c.request("GET", "/v1/vms")
        resp = c.getresponse()
        body = resp.read()
        lat.append((time.perf_counter() - t0) * 1000)
        c.close()
        assert resp.status == 200 and len(json.loads(body)["vms"]) >= nvms
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench_rss(sock, yund_pid, running):
    for i in range(running):
        st, v = call(sock, "POST", "/v1/vms", {"name": f"rss-{i:02d}", "image": "tiny",
                                              "memory": "96M", "start": True})
        assert st == 201, v
    time.sleep(2)
    for _ in range(5):
        call(sock, "GET", "/v1/vms")
    with open(f"/proc/{yund_pid}/status") as f:
        parts = [ln.split()[0] + ln.split()[1] for ln in f if ln.startswith(("RssAnon", "RssFile", "RssShmem"))]
    print("# yund RSS parts (KiB): " + " ".join(parts), flush=True)
    return rss_kib(yund_pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--running", type=int, default=20)
    ap.add_argument("--busy", type=int, default=0)
    ap.add_argument("--yund", default=YUND)
    ap.add_argument("--start-only", action="store_true")
    ap.add_argument("--split", action="store_true",
                    help="log at debug and print vm.launch's time split for each yun start")
    a = ap.parse_args()
    state = tempfile.mkdtemp(prefix="yun-bench-", dir="/tmp")
    sock = os.path.join(state, "yund.sock")
    log = open(os.path.join(state, "yund.log"), "wb")
    level = "debug" if a.split else "warn"
    p = subprocess.Popen([a.yund, "-s", state, "--set", f"log_level={level}",
                          # 20 one-vCPU guests on 2 cores need more than the default 4x
                          "--set", "cpu_overcommit=16"], stdout=log, stderr=log)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        assert call(sock, "POST", "/v1/images/build", {"kind": "tiny"})[0] == 200
        for i in range(a.busy):
            st, v = call(sock, "POST", "/v1/vms", {
                "name": f"busy-{i}", "image": "tiny", "memory": "96M", "cpus": 2,
                "cmdline": "console=ttyS0 panic=-1 quiet yun.burn=1", "start": True})
            assert st == 201, v
        if a.busy:
            time.sleep(3)  # let them reach their burn loops
            print(f"# {a.busy} busy guests (2 vCPUs each, burning); load "
                  f"{os.getloadavg()[0]:.2f}", file=sys.stderr)
        load0 = open("/proc/loadavg").read().split()[:3]
        yr, hr, ym, hm = bench_start(sock, a.runs)
        print(f"# /proc/loadavg before the start runs: {' '.join(load0)}, after: "
              f"{' '.join(open('/proc/loadavg').read().split()[:3])}", file=sys.stderr)
        yund_part = None
        if a.split:
            # vm.launch's debug line: QEMU's own part is from the fork to its
            # first QMP answer; the rest of each API start is yund's
            log.flush()
            qemu_ms = []
            with open(os.path.join(state, "yund.log")) as f:
                for line in f:
                    if "bench-start launch:" in line:
                        print("# " + line.rstrip(), file=sys.stderr)
                        m = re.search(r"QMP answered after ([\d.]+) ms", line)
                        qemu_ms.append(float(m.group(1)) if m else None)
            runs = list(zip(bench_start.yun_ready, qemu_ms[1:]))  # the first is the warm-up
            parts = [y - q for y, q in runs if q is not None]
            if parts:
                yund_part = median(parts)
                print("# yund's part of each start (API ms - QEMU fork->answer ms): " +
                      " ".join(f"{x:.1f}" for x in parts), file=sys.stderr)
        for i in range(a.busy):
            call(sock, "DELETE", f"/v1/vms/busy-{i}?force=true")
        if a.start_only:
            print(f"{'start -> QMP ready, yun (median of %d)' % a.runs:<44} {yr:>10.1f}ms")
            print(f"{'start -> QMP ready, QEMU by hand':<44} {hr:>10.1f}ms")
            print(f"{'  yun overhead to QMP ready':<44} {yr - hr:>10.1f}ms "
                  f"(ratio {yr / hr:.2f})")
            if yund_part is not None:
                print(f"{'  yund part (API start - QEMU fork->answer)':<44} {yund_part:>10.1f}ms "
                      f"{'<= 10ms':>12}")
            print(f"{'start -> init marker, yun':<44} {ym:>10.1f}ms")
            print(f"{'start -> init marker, QEMU by hand':<44} {hm:>10.1f}ms")
            print(f"{'  yun overhead to init marker':<44} {ym - hm:>10.1f}ms")
            return 0
        p50, p99 = bench_api(sock, a.vms, a.requests)
        rss = bench_rss(sock, p.pid, a.running)
        print(f"{'figure':<44} {'value':>12} {'goal':>12}")
        print(f"{'start -> QMP ready, yun (median of %d)' % a.runs:<44} {yr:>10.1f}ms")
        print(f"{'start -> QMP ready, QEMU by hand':<44} {hr:>10.1f}ms")
        print(f"{'  yun overhead to QMP ready':<44} {yr - hr:>10.1f}ms {'<= 50ms':>12}")
        print(f"{'start -> init marker, yun':<44} {ym:>10.1f}ms")
        print(f"{'start -> init marker, QEMU by hand':<44} {hm:>10.1f}ms")
        print(f"{'  yun overhead to init marker':<44} {ym - hm:>10.1f}ms {'<= 50ms':>12}")
        print(f"{'GET /v1/vms p50, %d VMs defined' % a.vms:<44} {p50:>10.2f}ms")
        print(f"{'GET /v1/vms p99, %d VMs defined' % a.vms:<44} {p99:>10.2f}ms {'< 5ms':>12}")
        print(f"{'yund RSS with %d running VMs' % a.running:<44} {rss / 1024:>9.1f}MiB "
              f"{'< 15MB':>12}")
    finally:
        teardown(p, state)


if __name__ == "__main__":
    sys.exit(main())
