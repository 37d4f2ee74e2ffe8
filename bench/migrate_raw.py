#!/usr/bin/env python3
"""Raw QEMU live migration of the same guest yun runs, for comparison
(issue 12 figures): the QEMU argv is taken from a running yun VM
(/proc/PID/cmdline) and made runnable by hand: the fd-passed kernel, initrd
and backing image (-add-fd, /proc/self/fd/N, /dev/fdset/N) become the paths
those fds point at, the disk is an overlay of its own over the same backing
image (with the same data written into it when asked), the sockets and logs
live in a directory of its own. Two such QEMUs run inside the same network
namespaces as the yun hosts and migrate over the same veth link, driven over
QMP by this script exactly as QEMU documents it: with a local disk, the
target's NBD export and the source's blockdev-mirror (sync top,
write-blocking) until ready, then `migrate` (max-bandwidth as yun sets it,
no pause-before-switchover), the mirror cancelled once the source is done.
Figures: query-migrate's total-time and downtime, the mirror's time to
ready and bytes.

Used by bench/migrate_figures.py (RawPair); on its own it needs the
cluster harness too, so it has no command line of its own.
"""
import json
import os
import random
import shutil
import socket
import subprocess
import time

UNLIMITED_BW = 1 << 40  # bytes/s, as yun sets max-bandwidth


class QMP:
    """A QMP connection on a unix socket (no namespace needed)."""

    def __init__(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.s.settimeout(timeout)
        self.buf = b""
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("QMP closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, qmp_command, **args):
        name = qmp_command
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")
            return r.get("return")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def runnable_argv(pid, boot_dir):
    """The argv of yun's QEMU pid, with every fd-passed file named by its
    path (the kernel and initrd yun hands over as memfds copied into
    boot_dir); the -add-fd options dropped."""
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
    argv = [a.decode() for a in argv]
    fdpath = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fdpath[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    sets = {}
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "-add-fd":
            opts = dict(kv.split("=", 1) for kv in argv[i + 1].split(","))
            sets[opts["set"]] = opts["opaque"].split(":", 1)[1]
            i += 2
            continue
        out.append(a)
        i += 1
    res = []
    for a in out:
        if a.startswith("/proc/self/fd/"):
            fd = int(a.rsplit("/", 1)[1])
            a = fdpath[fd]
            if a.startswith("/memfd:"):
                os.makedirs(boot_dir, exist_ok=True)
                a = os.path.join(boot_dir, f"boot-{fd}")
                shutil.copyfile(f"/proc/{pid}/fd/{fd}", a)
        for s, path in sets.items():
            a = a.replace(f"/dev/fdset/{s}", path)
        res.append(a)
    return res


def backing_of(argv):
    for a in argv:
        if "backing.file.filename=" in a:
            return a.split("backing.file.filename=", 1)[1].split(",", 1)[0]
    return None


class RawQemu:
    """One hand-started QEMU in namespace ns, its files in dir_."""

    def __init__(self, ns, dir_, argv, name, incoming=False):
        self.ns, self.dir = ns, dir_
        os.makedirs(dir_, exist_ok=True)
        a = []
        for x in argv:
            if x.startswith("guest="):
                x = f"guest={name},debug-threads=on"
            a.append(x)
        # -uuid stays (the guest sees the same machine); the name differs
        if incoming:
            a = [x for x in a if x != "-S"] + ["-incoming", "defer"]
        self.argv = a
        self.log = open(os.path.join(dir_, "qemu.log"), "ab")
        self.p = subprocess.Popen(["ip", "netns", "exec", ns] + a, cwd=dir_, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        try:
            self.qmp = QMP(os.path.join(dir_, "qmp.sock"))
        except OSError as e:
            self.p.kill()
            self.p.wait()
            self.log.close()
            log = open(os.path.join(dir_, "qemu.log"), errors="replace").read()[-2000:]
            raise RuntimeError(f"raw qemu in {dir_}: {e}: {log}\nargv: {' '.join(a)}") from e

    def node(self):
        for b in self.qmp.cmd("query-block"):
            if b["device"] == "disk0":
                return b["inserted"]["node-name"]
        raise RuntimeError("no disk0")

    def stop(self):
        try:
            self.qmp.cmd("quit")
        except Exception:
            pass
        self.qmp.close()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


def make_overlay(dir_, backing, size, fill_from=None, qemu_img="qemu-img"):
    """disk.qcow2 in dir_: a copy of fill_from (an overlay with data), or a
    new empty overlay over backing of `size` bytes."""
    os.makedirs(dir_, exist_ok=True)
    path = os.path.join(dir_, "disk.qcow2")
    if os.path.exists(path):
        os.unlink(path)
    if fill_from:
        shutil.copyfile(fill_from, path)
    else:
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", "-b", backing, "-F", "qcow2",
                        path, str(size)], check=True)
    return path


def migrate(src, dst, dst_addr, disk=True, poll_s=0.01):
    """Moves src's guest to dst (started incoming) over dst_addr. Returns
    {total_ms, downtime_ms, setup_ms, ram_bytes, mirror_ms, disk_bytes}."""
    out = {"mirror_ms": 0, "disk_bytes": 0}
    nbd_port = random.randint(20000, 40000)
    mig_port = nbd_port + 1
    if disk:
        dst.qmp.cmd("nbd-server-start", addr={"type": "inet",
                                               "data": {"host": dst_addr, "port": str(nbd_port)}})
        dst.qmp.cmd("block-export-add", type="nbd", id="mig-exp0", **{"node-name": dst.node()},
                    writable=True, name="disk0")
        src.qmp.cmd("blockdev-add", driver="nbd", **{"node-name": "mig-nbd0"},
                    server={"type": "inet", "host": dst_addr, "port": str(nbd_port)},
                    export="disk0")
        t0 = time.monotonic()
        src.qmp.cmd("blockdev-mirror", **{"job-id": "mig-disk0", "copy-mode": "write-blocking"},
                    device="disk0", target="mig-nbd0", sync="top")
        while True:
            jobs = {j["device"]: j for j in src.qmp.cmd("query-block-jobs")}
            j = jobs.get("mig-disk0")
            if j and j.get("ready"):
                out["disk_bytes"] = j["len"]
                break
            time.sleep(poll_s)
        out["mirror_ms"] = (time.monotonic() - t0) * 1000
    src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": UNLIMITED_BW})
    dst.qmp.cmd("migrate-incoming", uri=f"tcp:{dst_addr}:{mig_port}")
    src.qmp.cmd("migrate", uri=f"tcp:{dst_addr}:{mig_port}")
    while True:
        m = src.qmp.cmd("query-migrate")
        if m.get("status") == "completed":
            break
        if m.get("status") in ("failed", "cancelled"):
            raise RuntimeError(f"raw migration {m}")
        time.sleep(poll_s)
    if disk:
        src.qmp.cmd("block-job-cancel", device="mig-disk0", force=True)
        while any(j["device"] == "mig-disk0" for j in src.qmp.cmd("query-block-jobs")):
            time.sleep(0.005)
        src.qmp.cmd("blockdev-del", **{"node-name": "mig-nbd0"})
    # the target runs by itself (no -S): wait for it, then drop its export
    while dst.qmp.cmd("query-status")["status"] != "running":
        time.sleep(0.005)
    if disk:
        dst.qmp.cmd("nbd-server-stop")
    out.update(total_ms=m["total-time"], downtime_ms=m["downtime"],
               setup_ms=m.get("setup-time", 0), ram_bytes=m["ram"]["transferred"])
    return out


class RawPair:
    """A guest moved back and forth between two namespace hosts by raw QEMU:
    hosts = [(ns, addr), (ns, addr)], base_argv from runnable_argv."""

    def __init__(self, workdir, hosts, base_argv, name, fill_from=None, disk_size=None):
        self.workdir, self.hosts, self.argv, self.name = workdir, hosts, base_argv, name
        self.backing = backing_of(base_argv)
        self.size = disk_size
        self.fill_from = fill_from
        self.at = 0
        self.gen = 0
        d = self._dir()
        make_overlay(d, self.backing, self.size, fill_from)
        self.cur = RawQemu(hosts[0][0], d, base_argv, name)
        self.cur.qmp.cmd("cont")

    def _dir(self):
        self.gen += 1
        return os.path.join(self.workdir, f"{self.name}-{self.gen}")

    def move(self, disk=True):
        to = 1 - self.at
        d = self._dir()
        # the target's overlay: empty over the same backing (the mirror fills
        # it) with a disk; without, the same data (a copy, as shared storage)
        src_disk = os.path.join(self.cur.dir, "disk.qcow2")
        make_overlay(d, self.backing, self.size, None if disk else src_disk)
        dst = RawQemu(self.hosts[to][0], d, self.argv, self.name, incoming=True)
        try:
            r = migrate(self.cur, dst, self.hosts[to][1], disk=disk)
        except BaseException:
            dst.stop()
            raise
        old = self.cur
        self.cur, self.at = dst, to
        old.stop()
        shutil.rmtree(old.dir, ignore_errors=True)
        return r

    def close(self):
        self.cur.stop()
        shutil.rmtree(self.cur.dir, ignore_errors=True)
