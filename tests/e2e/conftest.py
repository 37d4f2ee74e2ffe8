"""End-to-end fixtures: a real yund on a private state directory, driving real
QEMU (TCG here), talked to through the real `yun` CLI and raw HTTP.

Nothing is mocked. Each test gets its own yund; teardown ends any QEMU the
test left behind so one failure cannot cascade into the next test.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("YUN_BUILD", "build"))
YUND = os.path.join(BUILD, "yund")
YUN = os.path.join(BUILD, "yun")
MARKER = "YUN-TINY-INIT-OK"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("yund", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def wait_for(pred, timeout=30.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def console_upgrade(s, host, path, headers):
    """An upgraded GET of path on the connected socket s (the live console):
    (s, the bytes read past the 101's head), or (status, the raw answer)
    when it was refused (s closed then)."""
    s.settimeout(30)
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
    req += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    s.sendall(req.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = s.recv(4096)
        if not got:
            break
        buf += got
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    if status != 101:
        s.close()
        return status, head + b"\r\n\r\n" + rest
    assert b"upgrade: yun-console" in head.lower(), head
    return s, rest


def read_until(s, needle, already=b"", timeout=60):
    """What s sends (after already) until needle is in it; fails when s
    closes first or needle is not seen within timeout."""
    buf = already
    end = time.time() + timeout
    while needle not in buf:
        assert time.time() < end, f"{needle!r} not seen; got {buf[-800:]!r}"
        s.settimeout(max(0.1, end - time.time()))
        try:
            got = s.recv(65536)
        except OSError:  # socket.timeout among them
            continue
        assert got, f"console closed before {needle!r}; got {buf[-800:]!r}"
        buf += got
    return buf


def alert_rule(name):
    """A harmless decision write (an alert rule): what the leader tests write."""
    return {"name": name, "metric": "cpu", "op": ">", "threshold": 90, "window": "60s",
            "for": "30s"}


def wait_serving(request, name, timeout, log=lambda: ""):
    """Seconds until request(method, path, body, timeout=) accepts a write (a
    new alert rule `name`); a standby's 503 not_leader and refused or cut
    connections are retried, anything else fails."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            st, r = request("POST", "/v1/alert-rules", alert_rule(name), timeout=2)
            if 200 <= st < 300:
                return time.monotonic() - t0
            assert st == 503 and r["error"]["code"] == "not_leader", (st, r)
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no write served within {timeout} s:\n{log()}")


def _pids_where(match):
    """PIDs of the processes whose argv (a list of bytes) match() accepts."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if match(argv):
            pids.append(int(d))
    return pids


def qemu_pids_for(state_dir):
    """PIDs of every QEMU whose command line points into state_dir."""
    def match(argv):
        cmd = b" ".join(argv).decode(errors="replace")
        return "qemu-system" in cmd and state_dir + "/vms/" in cmd
    return _pids_where(match)


def qemu_img_pids_for(state_dir):
    """qemu-img processes with an argument under state_dir."""
    return _pids_where(lambda args: os.path.basename(args[0]) == b"qemu-img" and
                       any(a.startswith(state_dir.encode() + b"/") for a in args[1:]))


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Yund:
    def __init__(self, state_dir, extra_args=()):
        self.state_dir = state_dir
        self.sock = os.path.join(state_dir, "yund.sock")
        self.extra_args = list(extra_args)
        self.proc = None

    # -- process control --
    def start(self, *extra):
        # ksm=off: KSM is the machine's (shared with other runs); test_ksm.py
        # turns it on where it means to
        args = [YUND, "-s", self.state_dir, "--set", "stop_timeout=15",
                "--set", "reconcile_interval=2", "--set", "ksm=off"] + self.extra_args + list(extra)
        self.log = open(os.path.join(self.state_dir, "test-yund.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        wait_for(lambda: self._healthy(), 20, what="yund to answer /healthz")
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"yund exited with {self.proc.returncode}: {self.logtext()}")
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def logtext(self, tail=3000):
        with open(os.path.join(self.state_dir, "test-yund.log"), "rb") as f:
            return f.read().decode(errors="replace")[-tail:]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM; yund must exit 0, and (under ASan/UBSan builds) report
        no memory error or leak."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            log = self.logtext(tail=10**7)
            for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
                assert bad not in log, log
            assert self.proc.returncode == 0, (self.proc.returncode, log)
        return self.proc.returncode

    # -- talking to it --
    def request(self, method, path, body=None, raw=None, headers=None, timeout=120):
        c = UnixHTTPConnection(self.sock, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers=headers or {})
        r = c.getresponse()
        payload = r.read()
        c.close()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload
        return r.status, parsed

    def yun(self, *args, check=True, input=None, timeout=120):
        env = dict(os.environ, YUN_SOCKET=self.sock)
        p = subprocess.run([YUN, *args], capture_output=True, text=True, env=env, input=input,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"yun {' '.join(args)} -> {p.returncode}: {p.stderr}")
        return p

    def vm(self, name):
        st, v = self.request("GET", f"/v1/vms/{name}")
        assert st == 200, v
        return v

    def events(self, obj=None):
        q = f"?limit=1000&object={obj}" if obj else "?limit=1000"
        st, r = self.request("GET", "/v1/events" + q)
        assert st == 200
        return r["events"]

    def console_log(self, name):
        return self.yun("vm", "logs", name).stdout

    def wait_marker(self, name, timeout=60):
        return wait_for(lambda: MARKER in self.console_log(name), timeout,
                        interval=0.2, what=f"{MARKER} on {name}'s console")

    def ensure_tiny(self):
        r = self.request("POST", "/v1/images/build", {"kind": "tiny"})
        if r[0] == 202:  # a build task: wait for it, then it is there
            t = self.task_wait(r)
            assert t["state"] == "succeeded", t
            r = self.request("POST", "/v1/images/build", {"kind": "tiny"})
        st, img = r
        assert st == 200, img
        return img

    # -- invariants: the heart of "impossible to lose a VM" --
    def check_invariants(self, settled=False):
        """settled: no operation is in flight (a crash was recovered from),
        so no row may be in a transient state and nothing may be left of a
        VM that has no QEMU: no cgroup, no uid claim."""
        st, r = self.request("GET", "/v1/vms")
        assert st == 200
        vms = r["vms"]
        ids = {v["id"] for v in vms}
        qemus = qemu_pids_for(self.state_dir)
        for pid in qemus:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode()
            uuid = cmd.split("-uuid ")[1].split()[0]
            assert uuid in ids, f"QEMU pid {pid} (vm {uuid}) has no row"
        for v in vms:
            if v["state"] in ("running", "paused", "starting", "stopping"):
                assert v["pid"] in qemus, (
                    f"vm {v['name']} is {v['state']} (pid {v['pid']}) but has no QEMU; "
                    f"qemus {qemus}; its last events "
                    f"{[(e['action'], e['result'], e['message']) for e in self.events(v['name'])[-8:]]}")
            else:
                assert v["pid"] not in qemus or v["pid"] == 0
            assert v["state"] not in ("creating", "deleting"), v
        vmdirs = set(os.listdir(os.path.join(self.state_dir, "vms")))
        assert vmdirs == ids, f"directories {vmdirs} vs rows {ids}"
        # One QEMU per VM, never a duplicate.
        assert len(qemus) == len(set(qemus))
        per_vm = {}
        for pid in qemus:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                uuid = f.read().replace(b"\0", b" ").decode().split("-uuid ")[1].split()[0]
            per_vm[uuid] = per_vm.get(uuid, 0) + 1
        assert all(n == 1 for n in per_vm.values()), per_vm
        if settled:
            self._check_settled(vms, ids, qemus)
        # Disk layers: each VM's directory holds its active layer and its
        # snapshots' files, nothing more, and every snapshot is settled.
        for v in vms:
            st, r = self.request("GET", f"/v1/vms/{v['name']}/snapshots")
            assert st == 200
            snaps = r["snapshots"]
            assert all(s["state"] == "ready" for s in snaps), snaps
            d = os.path.join(self.state_dir, "vms", v["id"])
            layers = {f for f in os.listdir(d) if f.startswith("disk") and f.endswith(".qcow2")}
            assert v["disk"] in layers, (v["disk"], layers)
            assert len(layers) == len(snaps) + 1, (layers, snaps)
        # Volumes: one pool file per row, none half-made, none left attached
        # to a VM that is gone.
        st, r = self.request("GET", "/v1/volumes")
        assert st == 200
        pool = os.path.join(self.state_dir, "pools", "default")
        files = set(os.listdir(pool)) if os.path.isdir(pool) else set()
        assert files == {os.path.basename(x["path"]) for x in r["volumes"]}, files
        for x in r["volumes"]:
            assert x["state"] in ("ready", "attached"), x
            assert (x["state"] == "attached") == bool(x["attached_to"]), x
            assert not x["attached_to"] or x["attached_to"] in ids, x
            assert not x.get("task"), x  # no row owned by a task when none runs
        # Tasks: none left running (the caller has let every one finish),
        # and no qemu-img working on this state directory's files.
        st, r = self.request("GET", "/v1/tasks?state=running")
        assert st == 200 and r["tasks"] == [], r
        assert qemu_img_pids_for(self.state_dir) == [], "a qemu-img is left"
        return vms

    def _check_settled(self, vms, ids, qemus):
        _check_settled_impl(self, vms, ids, qemus)

    # -- tasks (202 {"task": ...}) --
    def task_wait(self, reply, timeout=300):
        """Follows a 202 reply's task until it is finished; returns the task."""
        st, body = reply
        assert st == 202, reply
        tid = body["task"]["id"]
        deadline = time.time() + timeout
        while True:
            st, t = self.request("GET", f"/v1/tasks/{tid}?wait=30")
            assert st == 200, t
            if t["state"] in ("succeeded", "failed", "cancelled"):
                return t
            assert time.time() < deadline, f"task {tid} still {t['state']}"


def _check_settled_impl(y, vms, ids, qemus):
    for v in vms:
        assert v["state"] not in ("creating", "starting", "stopping", "deleting"), v
        if v["state"] in ("running", "paused"):
            assert v["pid"] in qemus, v
    live = {v["id"] for v in vms if v["state"] in ("running", "paused")}
    # cgroups: one per VM with a QEMU, none for the others (an exited QEMU's
    # group is removed on a timer while the kernel still holds it: ~1 s)
    def stray_cgroups():
        return [f"{base}/{d}" for base in yund_cgroup_dirs(y.state_dir) for d in os.listdir(base)
                if d.startswith("vm-") and os.path.isdir(os.path.join(base, d))
                and d[3:] not in live]
    deadline = time.time() + 3
    while stray_cgroups() and time.time() < deadline:
        time.sleep(0.05)
    assert not stray_cgroups(), f"orphan cgroups {stray_cgroups()}"
    # uid claims of this state directory name VMs that have rows
    claims = "/run/yun/uids"
    mine = os.path.join(y.state_dir, "vms")
    for c in (os.listdir(claims) if os.path.isdir(claims) else []):
        try:
            with open(os.path.join(claims, c)) as f:
                fields = f.read().split()
        except OSError:
            continue
        if fields[1:2] == [mine]:
            assert fields[0] in ids, f"orphan uid claim {c}: {fields}"


def yund_cgroup_dirs(state_dir):
    """The cgroup parent directories of the yund on state_dir (v1: one per
    controller mount; v2: one)."""
    try:
        with open(os.path.join(state_dir, "yund.id")) as f:
            yid = f.read().strip()
    except OSError:
        return []
    out = []
    for mnt in ["/sys/fs/cgroup"] + [f"/sys/fs/cgroup/{c}" for c in
                                      ("cpu", "cpuacct", "cpuset", "memory", "cpu,cpuacct")]:
        d = os.path.join(mnt, "yun", "y-" + yid)
        if os.path.isdir(d) and os.path.realpath(d) not in [os.path.realpath(x) for x in out]:
            out.append(d)
    return out


def yund_pids_for(state_dir):
    """Every yund running on state_dir (one a failed test left behind too)."""
    def match(argv):
        if os.path.basename(argv[0]) != b"yund" or b"-s" not in argv:
            return False
        i = argv.index(b"-s")
        return i + 1 < len(argv) and argv[i + 1] == state_dir.encode()
    return _pids_where(match)


def _cleanup(state_dir):
    # A yund a failed test left running would go on acting on what it
    # thinks are its VMs' processes (matched by uid) during later tests.
    for pid in yund_pids_for(state_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in qemu_pids_for(state_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not any(pid_alive(p) for p in qemu_pids_for(state_dir)):
            break
        time.sleep(0.05)
    # this yund's cgroups: yun/y-<its id>/vm-<vm id>, in every hierarchy
    for base in yund_cgroup_dirs(state_dir):
        for d in os.listdir(base):
            try:
                os.rmdir(os.path.join(base, d))
            except OSError:
                pass
        try:
            os.rmdir(base)
        except OSError:
            pass
    # the machine-wide uid claims of this yund's VMs (confinement)
    claims = "/run/yun/uids"
    for c in (os.listdir(claims) if os.path.isdir(claims) else []):
        try:
            with open(os.path.join(claims, c)) as f:
                mine = f.read().split()[1:2] == [os.path.join(state_dir, "vms")]
            if mine:
                os.unlink(os.path.join(claims, c))
        except (OSError, IndexError):
            pass
    shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def state_dir():
    # Short path: unix socket paths inside it are limited to 108 bytes.
    d = tempfile.mkdtemp(prefix="yun-e2e-", dir="/tmp")
    yield d
    if not os.environ.get("YUN_KEEP"):
        _cleanup(d)


@pytest.fixture
def yund(state_dir):
    y = Yund(state_dir).start()
    yield y
    y.stop()


def qmp_reply(y, vm, command, args=None):
    """One command on the VM's QMP command monitor, as yund would: the
    whole reply (a "return" or an "error")."""
    v = y.vm(vm)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(os.path.join(y.state_dir, "vms", v["id"], "qmp.sock"))
    f = s.makefile("rw")
    json.loads(f.readline())  # greeting
    for cmd, a in (("qmp_capabilities", None), (command, args)):
        msg = {"execute": cmd}
        if a is not None:
            msg["arguments"] = a
        f.write(json.dumps(msg) + "\n")
        f.flush()
        while True:
            r = json.loads(f.readline())
            if "return" in r or "error" in r:
                break
    s.close()
    return r
