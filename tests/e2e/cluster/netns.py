"""netns.py - the cluster tests' network: one network namespace per host on
this one machine, joined through a fabric namespace holding a bridge.

    fabric  PREFIX-fab  bridge br0; one veth end "v-NAME" per host
    host    PREFIX-NAME  "eth0" (the other end) with 10.A.B.N/24, lo up

PREFIX is "yc<pid>" (yc<pid>-<n> for a second fabric of the same run), so
several test runs on one machine never collide, and a namespace whose run is
dead can be recognised and swept (sweep_dead()). Nothing is created in the
machine's own namespace: the veths are made inside the fabric namespace and
their host ends moved straight into the host's namespace.

Link cut/restore sets the fabric end of a host's veth down/up: the host
loses its carrier, packets to and from it are lost, its processes live on.

Everything is removed by Fabric.destroy(), which is registered with atexit
at creation (and called by the fixtures' finalizers), so a failed test or an
interrupted run leaves nothing behind; what a killed run left is swept by the
next run. Sockets into a namespace from this (root-namespace) process are
made by connect_in(): a thread enters the namespace (setns) and connects.
"""
import atexit
import ctypes
import os
import re
import signal
import socket
import subprocess
import threading
import time

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
_NAME = re.compile(r"^yc(\d+)-")
_libc = ctypes.CDLL(None, use_errno=True)
_seq = [0]


def ip(*args, ns=None, check=True):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p.stdout


def ns_pids(ns):
    p = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def _kill_ns_processes(ns):
    """SIGKILL everything in namespace ns (all of it this run's: its daemons
    and their QEMUs) and waits for it to be gone."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = [p for p in ns_pids(ns) if p != os.getpid()]
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def delete_ns(ns):
    _kill_ns_processes(ns)
    ip("netns", "del", ns, check=False)


def _run_alive(pid):
    """Is the test run with this pid still running (a python process)?"""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"python" in f.read()
    except OSError:
        return False


def sweep_dead():
    """Deletes the namespaces (and their processes) of runs that are gone."""
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return []
    swept = []
    for n in names:
        m = _NAME.match(n)
        if m and int(m.group(1)) != os.getpid() and not _run_alive(int(m.group(1))):
            delete_ns(n)
            swept.append(n)
    return swept


class Fabric:
    """A bridge and the hosts on it. hosts: {name: ip}."""

    def __init__(self):
        _seq[0] += 1
        pid = os.getpid()
        self.prefix = f"yc{pid}" if _seq[0] == 1 else f"yc{pid}-{_seq[0]}"
        # a /24 of its own per run (names keep them apart anyway; this keeps
        # addresses in logs unambiguous)
        self.net = f"10.{(pid >> 8) & 255}.{(pid + _seq[0]) & 255}"
        self.fab = f"{self.prefix}-fab"
        self.hosts = {}
        self.cut_links = set()
        self._made = []
        atexit.register(self.destroy)
        try:
            ip("netns", "add", self.fab)
            self._made.append(self.fab)
            ip("link", "set", "lo", "up", ns=self.fab)
            ip("link", "add", "br0", "type", "bridge", ns=self.fab)
            ip("link", "set", "br0", "up", ns=self.fab)
        except Exception:
            self.destroy()
            raise

    def ns(self, name):
        return f"{self.prefix}-{name}"

    def add_host(self, name):
        """A namespace for host `name` on the bridge; returns its address."""
        assert re.match(r"^[a-z0-9]{1,8}$", name), name
        assert name not in self.hosts and len(self.hosts) < 250
        ns = self.ns(name)
        addr = f"{self.net}.{len(self.hosts) + 1}"
        ip("netns", "add", ns)
        self._made.append(ns)
        ip("link", "set", "lo", "up", ns=ns)
        ip("link", "add", f"v-{name}", "type", "veth", "peer", "name", "eth0", "netns", ns,
           ns=self.fab)
        ip("link", "set", f"v-{name}", "master", "br0", ns=self.fab)
        ip("link", "set", f"v-{name}", "up", ns=self.fab)
        ip("addr", "add", f"{addr}/24", "dev", "eth0", ns=ns)
        ip("link", "set", "eth0", "up", ns=ns)
        self.hosts[name] = addr
        return addr

    def cut(self, name):
        """The host's link goes down: nothing reaches it, it reaches nothing."""
        ip("link", "set", f"v-{name}", "down", ns=self.fab)
        self.cut_links.add(name)

    def restore(self, name):
        ip("link", "set", f"v-{name}", "up", ns=self.fab)
        self.cut_links.discard(name)

    def link_up(self, name):
        out = ip("-o", "link", "show", f"v-{name}", ns=self.fab)
        return "state UP" in out or ",UP" in out.split(">")[0]

    def destroy(self):
        for ns in reversed(self._made):
            delete_ns(ns)
        self._made = []
        self.hosts = {}


def _setns(ns):
    fd = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {ns}: {os.strerror(e)}")
    finally:
        os.close(fd)


def connect_in(ns, host, port, timeout):
    """A TCP socket connected to host:port from inside namespace ns. The
    namespace is entered by a thread of its own (setns changes only the
    calling thread), so this process stays where it is."""
    out = {}

    def run():
        try:
            _setns(ns)
            out["sock"] = socket.create_connection((host, port), timeout=timeout)
        except BaseException as e:  # handed to the caller
            out["err"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout + 5)
    if "err" in out:
        raise out["err"]
    if "sock" not in out:
        raise TimeoutError(f"connect to {host}:{port} in {ns}")
    return out["sock"]
