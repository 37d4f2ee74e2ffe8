#!/usr/bin/env python3
"""Host memory with the memory policy off and on (issue 16's figures).

N idle guests of --memory each (default 8 x 512 MiB, --memory-min half of it)
run first under a yund with the policy off (balloon_policy=off, ksm=off),
then under one with it on (the balloon loop with host pressure forced by
balloon_host_reserve=1T, free page reporting, KSM on). For each it prints,
once the guests are up (a Debian guest after it has read --cache MiB of
fresh data into its page cache, as an idle guest that once did work) and
settled:
  pss       the guests' QEMUs' proportional set size summed
            (/proc/PID/smaps_rollup: KSM-shared pages are split between
            their sharers, so merging shows)
  ballooned what the balloons hold away from the guests (size - actual)
  ksm       pages_sharing x page size (what KSM saves), machine-wide
  yund_cpu  yund's CPU time per second over --window seconds (the policy
            loops' cost; the off run is the baseline)
In both runs one guest then needs --need MiB (off: the baseline, the
same ramp with no balloon in the way at the same load), taken 4 MiB every
--ramp-ms (yun-hog on the tiny guest's console, a python3 loop through the
guest agent on Debian): the time until it holds them against the ramp's own
length, its balloon's actual before and after, and whether the guest's
kernel ran out of memory on the way (its console log). A policy that gives
back in time holds them in about the ramp's length; one that lags makes
the guest reclaim, stall or OOM.

Usage: bench/memory_policy.py [--image tiny|debian] [--guests 8]
       [--memory 512] [--need 400] [--ramp-ms 250] [--window 30] [--only off|on]
--need must leave the guest room for its own system: 400 of a 512 MiB
Debian guest OOMs it with no balloon at all (its kernel and services hold
about 100 MiB); 256 is the half above a floor of 256.
Needs root, QEMU and a built yund (YUN_BUILD, default build). KSM and
/proc/meminfo are the machine's: other work on it shows in them, and this
bench's KSM run changes them for everything else: never run it beside the
tests (a run beside CI made test_ksm.py fail). Before the off run KSM is
unmerged and stopped (run=2, then 0) so its baseline shares nothing; the
machine's KSM run value is put back at the end.

State (2026-12-03, docs/benchmarks.md "Memory policy"): 8 x 512 MiB Debian
guests ran off and on, and the give-back of 256 MiB against the off run's
baseline (105.8 s against 110.8 s at load 12: no lag of the policy's);
--cache (the guests' page cache filled first) hit the guest agent's own
reply timeout at that load after 3 of 8 guests and has no figure.
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

from conftest import YUN, Yund, _cleanup, console_upgrade, qmp_reply, wait_for  # noqa: E402

MIB = 1 << 20
CACHE = os.environ.get("YUN_IMAGE_CACHE", os.path.join(os.path.dirname(ROOT), ".yun-image-cache"))


def pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def ksm_saved():
    try:
        with open("/sys/kernel/mm/ksm/pages_sharing") as f:
            return int(f.read()) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


KSM_RUN = "/sys/kernel/mm/ksm/run"


def ksm_run(value=None):
    """The KSM run knob: read it, or write value (2 unmerges everything)."""
    if value is None:
        with open(KSM_RUN) as f:
            return int(f.read())
    with open(KSM_RUN, "w") as f:
        f.write(str(value))


def ksm_reset():
    """No page merged before the off run: unmerge, wait, stop."""
    ksm_run(2)
    wait_for(lambda: ksm_saved() == 0, 300, interval=0.5, what="KSM to unmerge")
    ksm_run(0)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def make_guests(y, a, names):
    for n in names:
        y.yun("vm", "create", n, "--image", a.image, "--memory", f"{a.memory}M",
              "--memory-min", f"{a.memory // 2}M", "--start", timeout=300)
    for n in names:
        if a.image == "tiny":
            y.wait_marker(n, timeout=300)
        else:
            wait_for(lambda: y.vm(n).get("guest_agent"), 1200, interval=2,
                     what=f"{n}'s guest agent")


def fill_caches(y, a, names):
    """Each guest reads up to --cache MiB of its own files (/usr, largest
    first) into its page cache, all guests at once: clean cache an idle
    guest keeps and the host holds for it, as in guests that once did
    work. The guests boot one image, so these pages are alike across them:
    KSM may share them, as it would for real clones."""
    if not a.cache:
        return
    cmd = (f"find /usr -xdev -type f -size +64k -printf '%s %p\\n' | sort -rn | "
           f"cut -d' ' -f2- | xargs cat 2>/dev/null | head -c {a.cache}M | wc -c")
    env = dict(os.environ, YUN_SOCKET=y.sock)
    procs = [subprocess.Popen([YUN, "vm", "exec", n, "--timeout", "900", "--", "sh", "-c", cmd],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in names]
    for n, p in zip(names, procs):
        out, err = p.communicate(timeout=960)
        assert p.returncode == 0, (n, out, err)
        print(f"  {n}: {int(out.split()[-1]) >> 20} MiB read into its page cache", flush=True)


def actual(y, n):
    r = qmp_reply(y, n, "query-balloon")
    assert "return" in r, r
    return r["return"]["actual"]


def figures(y, a, names, window):
    pids = [y.vm(n)["pid"] for n in names]
    yp = y.proc.pid
    c0, t0 = cpu_seconds(yp), time.time()
    time.sleep(window)  # a measuring window, not a wait for an event
    cpu = (cpu_seconds(yp) - c0) / (time.time() - t0)
    away = sum(a.memory * MIB - actual(y, n) for n in names)
    return sum(pss(p) for p in pids), away, ksm_saved(), cpu


def read_any(s, needles, buf, timeout):
    """What s sends until one of needles is in it (or timeout: what came)."""
    end = time.time() + timeout
    while not any(n in buf for n in needles) and time.time() < end:
        s.settimeout(max(0.1, end - time.time()))
        try:
            got = s.recv(65536)
        except OSError:  # socket.timeout among them
            continue
        if not got:
            break
        buf += got
    return buf


def hog(y, a, name):
    """Time until the guest holds a.need MiB more."""
    t0 = time.time()
    if a.image == "tiny":
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(600)
        s.connect(y.sock)
        c, pre = console_upgrade(s, "yund", f"/v1/vms/{name}/console",
                                 {"Connection": "Upgrade", "Upgrade": "yun-console"})
        try:
            c.sendall(f"\nyun-hog {a.need} {a.ramp_ms}\n".encode())
            out = read_any(c, (b"yun-hog: holding", b"yun-hog: failed"), pre, timeout=600)
        finally:
            c.close()
        ok = b"yun-hog: holding" in out
    else:
        # 4 MiB every ramp_ms, each page written (so it is resident)
        code = (f"import time\nheld = []\nfor k in range({a.need} // 4):\n"
                f"    b = bytearray(4 << 20)\n    b[::4096] = b'\\1' * (len(b) // 4096)\n"
                f"    held.append(b)\n    time.sleep({a.ramp_ms / 1000})\nprint('held')")
        p = y.yun("vm", "exec", name, "--timeout", "900", "--", "python3", "-c", code,
                  check=False, timeout=960)
        ok = p.returncode == 0 and "held" in p.stdout
        if not ok:
            print(f"  exec: rc {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}", flush=True)
    return time.time() - t0, ok


def run(a, on):
    state = tempfile.mkdtemp(prefix="yun-bm-", dir="/tmp")
    sets = ["--set", "log_level=warn", "--set", f"image_cache={CACHE}"]
    if on:
        sets += ["--set", "balloon_policy=on", "--set", "balloon_interval_ms=1000",
                 "--set", "balloon_host_reserve=1T"]
    else:
        sets += ["--set", "balloon_policy=off"]
    # Yund's own ksm=off comes first: the on run's ksm=on is the one kept
    y = Yund(state, sets + (["--set", "ksm=on"] if on else [])).start()
    names = [f"bm-{'on' if on else 'off'}-{i}" for i in range(a.guests)]
    try:
        if a.image == "tiny":
            y.ensure_tiny()
        else:
            p = y.yun("image", "build", "debian", timeout=3600)
            assert "image debian ready" in p.stdout, p.stdout
        make_guests(y, a, names)
        if a.image == "debian":
            fill_caches(y, a, names)
        if on:  # the balloons at their floors (or as far as the policy takes them)
            wait_for(lambda: all(actual(y, n) <= (a.memory // 2) * MIB for n in names),
                     600, interval=1, what="the balloons at their minimums")
        used, away, ksm, cpu = figures(y, a, names, a.window)
        print(f"policy {'on ' if on else 'off'}: pss {used / MIB:8.0f} MiB  ballooned "
              f"{away / MIB:6.0f} MiB  ksm {ksm / MIB:6.0f} MiB  yund_cpu {cpu * 100:5.2f} %",
              flush=True)
        # off: the same ramp with no balloon in the way, at the same load (the baseline)
        before = actual(y, names[0])
        took, ok = hog(y, a, names[0])
        log = y.console_log(names[0])
        oom = "Out of memory" in log or "oom-kill" in log
        ramp = a.need / 4 * a.ramp_ms / 1000
        print(f"{'give-back' if on else 'baseline '}: {a.need} MiB at 4 MiB per {a.ramp_ms} ms "
              f"(ramp {ramp:.1f} s) held in {took:.1f} s ({'ok' if ok else 'FAILED'}{', guest OOM' if oom else ''}); "
              f"balloon {before / MIB:.0f} -> {actual(y, names[0]) / MIB:.0f} MiB", flush=True)
    finally:
        for n in names:
            y.yun("vm", "delete", n, "--force", check=False)
        y.stop()
        _cleanup(state)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", choices=("tiny", "debian"), default="debian")
    ap.add_argument("--guests", type=int, default=8)
    ap.add_argument("--memory", type=int, default=512, help="MiB per guest")
    ap.add_argument("--need", type=int, default=400, help="MiB one guest then takes")
    ap.add_argument("--cache", type=int, default=0,
                    help="MiB each Debian guest first reads into its page cache (0: none)")
    ap.add_argument("--ramp-ms", type=int, default=250, help="ms between 4 MiB steps of it")
    ap.add_argument("--window", type=int, default=30, help="seconds yund's CPU is measured")
    ap.add_argument("--only", choices=("off", "on"),
                    help="one of the two runs alone (its figures and its ramp)")
    a = ap.parse_args()
    print("load before:", load())
    was = ksm_run()
    try:
        ksm_reset()
        if a.only != "on":
            run(a, False)
        if a.only != "off":
            run(a, True)
    finally:
        ksm_run(2 if was == 0 else was)  # unmerge what this run merged
        if was == 0:
            wait_for(lambda: ksm_saved() == 0, 300, interval=0.5, what="KSM to unmerge")
            ksm_run(0)
    print("load after: ", load())


if __name__ == "__main__":
    main()
