#!/usr/bin/env python3
"""boot_debian.py IMAGEDIR [--keep] [--no-seed] [--second-boot] - boots the image built by
scripts/build-debian-image.sh under QEMU (TCG, never KVM) with a NoCloud seed
and checks it through the serial console, the guest agent, ssh and QMP.

With --second-boot the same disk is booted once more after the power-down:
the machine-id, hostname and cloud-init's file must survive, and the times of
an already-initialised boot are measured.

With --no-seed there is no NoCloud seed (cloud-init falls back to its None
datasource): checks that the guest still boots, makes ssh host keys, runs
sshd and answers through the agent.

Prints one JSON object with the measurements on stdout; exits non-zero when a
check fails. Needs qemu-system-x86_64, qemu-img, genisoimage, ssh, ssh-keygen.

Environment: YUN_TEST_ACCEL (default tcg), YUN_TEST_TIMEOUT (default 600 s),
YUN_TEST_DISK_SIZE (e.g. 4G: the overlay is bigger than the image and
cloud-init's resizefs must grow the root filesystem to it).
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ACCEL = os.environ.get("YUN_TEST_ACCEL", "tcg")
TIMEOUT = float(os.environ.get("YUN_TEST_TIMEOUT", "600"))
DISK_SIZE = os.environ.get("YUN_TEST_DISK_SIZE", "")
HELLO = "hello from yun cloud-init"


def log(msg):
    print(f"boot_debian: [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class JsonSock:
    """Line-oriented JSON over a unix socket (QMP and qemu-ga)."""

    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")

    def recv(self, timeout=None):
        if timeout is not None:
            self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("socket closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        line = line.strip(b"\xff \r")
        if not line:
            return self.recv(timeout)
        return json.loads(line)

    def close(self):
        self.s.close()


class Agent:
    def __init__(self, path):
        self.path = path
        self.sock = None

    def sync(self, timeout=2.0):
        """guest-sync with a fresh id; True once the agent answers it."""
        if self.sock is None:
            self.sock = JsonSock(self.path, timeout)
        sid = int(time.time() * 1000) % 2**31
        # 0xff resets the agent's parser if half a command was left in it.
        self.sock.s.sendall(b"\xff")
        self.sock.send({"execute": "guest-sync", "arguments": {"id": sid}})
        end = time.time() + timeout
        while time.time() < end:
            try:
                r = self.sock.recv(max(0.1, end - time.time()))
            except (socket.timeout, json.JSONDecodeError):
                continue
            if r.get("return") == sid:
                return True
        return False

    def cmd(self, execute, arguments=None, timeout=30.0):
        msg = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        self.sock.send(msg)
        r = self.sock.recv(timeout)
        return r

    def exec(self, argv, timeout=60.0):
        r = self.cmd("guest-exec", {"path": argv[0], "arg": argv[1:], "capture-output": True})
        if "return" not in r:
            raise RuntimeError(f"guest-exec {argv}: {r}")
        pid = r["return"]["pid"]
        end = time.time() + timeout
        while time.time() < end:
            st = self.cmd("guest-exec-status", {"pid": pid})["return"]
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
                err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
                return st.get("exitcode"), out, err
            time.sleep(0.2)
        raise TimeoutError(f"guest-exec {argv} did not finish")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    imgdir = os.path.abspath(sys.argv[1])
    keep = "--keep" in sys.argv[2:]
    seeded = "--no-seed" not in sys.argv[2:]
    second = "--second-boot" in sys.argv[2:]
    meta = json.load(open(os.path.join(imgdir, "image.json")))
    work = tempfile.mkdtemp(prefix="yun-debian-boot-")
    results = {"image": imgdir, "cmdline": meta["cmdline"], "kernel_version": meta["kernel_version"]}
    failures = []

    def check(name, ok, detail=""):
        results.setdefault("checks", {})[name] = bool(ok)
        log(f"{'PASS' if ok else 'FAIL'} {name} {detail}")
        if not ok:
            failures.append(name)

    # ---- seed ------------------------------------------------------------
    key = os.path.join(work, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    pub = open(key + ".pub").read().strip()
    with open(os.path.join(work, "user-data"), "w") as f:
        f.write(f"""#cloud-config
hostname: yun-test
ssh_authorized_keys:
  - {pub}
write_files:
  - path: /root/hello.txt
    content: "{HELLO}\\n"
    permissions: "0644"
runcmd:
  - [ sh, -c, "echo runcmd-ok > /root/runcmd.txt" ]
""")
    with open(os.path.join(work, "meta-data"), "w") as f:
        f.write("instance-id: yun-test-0001\nlocal-hostname: yun-test\n")
    seed = os.path.join(work, "seed.iso")
    subprocess.run(["genisoimage", "-quiet", "-output", seed, "-volid", "cidata", "-joliet", "-rock",
                    "user-data", "meta-data"], cwd=work, check=True)
    overlay = os.path.join(work, "overlay.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", meta["format"], "-b",
                    os.path.join(imgdir, meta["disk"]), overlay] + ([DISK_SIZE] if DISK_SIZE else []),
                   check=True)

    # ---- boot ------------------------------------------------------------
    qga = os.path.join(work, "qga.sock")
    qmp = os.path.join(work, "qmp.sock")
    console = os.path.join(work, "console.log")
    sshport = free_port()
    argv = ["qemu-system-x86_64", "-accel", ACCEL, "-m", "1024", "-smp", "2",
            "-display", "none", "-serial", f"file:{console}", "-monitor", "none",
            "-kernel", os.path.join(imgdir, meta["kernel"]),
            "-initrd", os.path.join(imgdir, meta["initrd"]),
            "-append", meta["cmdline"],
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            *(["-drive", f"file={seed},if=virtio,format=raw,readonly=on"] if seeded else []),
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{sshport}-:22",
            "-device", "virtio-net-pci,netdev=n0",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=qga0,path={qga},server=on,wait=off",
            "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-qmp", f"unix:{qmp},server=on,wait=off"]
    log("starting " + " ".join(argv))
    t0 = time.time()
    qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    agent = Agent(qga)
    t_login = t_agent = t_ci = None
    try:
        while time.time() - t0 < TIMEOUT and (t_login is None or t_agent is None):
            if qemu.poll() is not None:
                raise RuntimeError(f"qemu exited: {qemu.stdout.read().decode(errors='replace')}")
            if t_login is None and os.path.exists(console):
                if "login:" in open(console, errors="replace").read():
                    t_login = time.time() - t0
                    log(f"login prompt after {t_login:.1f} s")
            if t_agent is None and os.path.exists(qga):
                try:
                    if agent.sync(1.0):
                        t_agent = time.time() - t0
                        log(f"guest agent answers after {t_agent:.1f} s")
                except (OSError, EOFError):
                    agent.sock = None
            time.sleep(0.5)
        results["boot_to_login_s"] = t_login and round(t_login, 1)
        results["boot_to_agent_s"] = t_agent and round(t_agent, 1)
        check("login prompt on ttyS0", t_login is not None)
        check("guest agent answers", t_agent is not None)
        if t_agent is None:
            raise RuntimeError("no guest agent")

        # cloud-init: wait for the write_files file
        while seeded and time.time() - t0 < TIMEOUT:
            rc, out, _ = agent.exec(["/bin/cat", "/root/hello.txt"])
            if rc == 0:
                t_ci = time.time() - t0
                break
            time.sleep(1)
        results["boot_to_cloudinit_file_s"] = t_ci and round(t_ci, 1)
        if seeded:
            check("cloud-init wrote /root/hello.txt", t_ci is not None and out.strip() == HELLO, repr(out))
        rc, out, _ = agent.exec(["/usr/bin/cloud-init", "status", "--wait", "--long"], timeout=TIMEOUT)
        results["boot_to_cloudinit_done_s"] = round(time.time() - t0, 1)
        check("cloud-init status done", rc == 0 and "status: done" in out, out.strip().replace("\n", " | "))
        if seeded:
            rc, out, _ = agent.exec(["/bin/cat", "/root/runcmd.txt"])
            check("cloud-init runcmd ran", rc == 0 and out.strip() == "runcmd-ok", repr(out))

        r = agent.cmd("guest-get-host-name")
        results["guest-get-host-name"] = r
        if seeded:
            check("hostname is yun-test", r.get("return", {}).get("host-name") == "yun-test", json.dumps(r))
        r = agent.cmd("guest-get-osinfo")
        results["guest-get-osinfo"] = r
        check("osinfo is debian 12", r.get("return", {}).get("id") == "debian"
              and r["return"].get("version-id") == "12", json.dumps(r))
        r = agent.cmd("guest-network-get-interfaces")
        results["guest-network-get-interfaces"] = r
        addrs = [a["ip-address"] for i in r.get("return", []) for a in i.get("ip-addresses", [])
                 if a.get("ip-address-type") == "ipv4" and i.get("name") != "lo"]
        check("NIC got an IPv4 address by DHCP", any(a.startswith("10.0.2.") for a in addrs), str(addrs))

        rc, out, _ = agent.exec(["/bin/sh", "-c",
                                 "systemctl is-active ssh qemu-guest-agent serial-getty@ttyS0;"
                                 " ls /etc/ssh/ssh_host_*_key | wc -l; cat /etc/machine-id;"
                                 " sshd -T | grep -Ei '^(permitrootlogin|passwordauthentication) ';"
                                 " findmnt -no SOURCE,OPTIONS /; df -h / | tail -1;"
                                 " echo resolv: $(grep nameserver /etc/resolv.conf);"
                                 " echo hosts: $(getent hosts $(hostname));"
                                 " echo initramfs-fsck: $(cat /run/initramfs/fsck.log 2>&1 | tail -n 2);"
                                 " systemctl --failed --no-legend; systemd-analyze || true;"
                                 " systemd-analyze blame | head -n 25;"
                                 " systemd-analyze critical-chain multi-user.target qemu-guest-agent.service"])
        results["guest_state"] = out
        log("guest state:\n" + out)
        check("sshd, agent, getty active", out.count("active\n") >= 3 and "inactive" not in out)
        check("3 ssh host keys", "\n3\n" in out)
        check("root fs rw", " rw," in out or " rw\n" in out)
        if DISK_SIZE:
            rc, size, _ = agent.exec(["/bin/sh", "-c", "df -B1G --output=size / | tail -n 1"])
            want = int(DISK_SIZE.rstrip("G"))
            check(f"root grown to ~{DISK_SIZE}", rc == 0 and int(size) >= want - 1, size.strip() + " GiB")

        # ssh with the key cloud-init installed for the default user
        ssh = subprocess.run(["ssh", "-i", key, "-p", str(sshport), "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                              "-o", "ConnectTimeout=20", "debian@127.0.0.1", "hostname; id -un"],
                             capture_output=True, text=True, timeout=120)
        if seeded:
            check("ssh debian@ with the seeded key", ssh.returncode == 0 and "yun-test" in ssh.stdout,
                  (ssh.stdout + ssh.stderr).strip()[-300:])
        else:
            check("sshd answers (key refused: none seeded)", "Permission denied" in ssh.stderr,
                  ssh.stderr.strip()[-300:])
        ssh = subprocess.run(["ssh", "-p", str(sshport), "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                              "-o", "PreferredAuthentications=password", "root@127.0.0.1", "true"],
                             capture_output=True, text=True, timeout=60)
        check("ssh root with a password refused", ssh.returncode != 0, ssh.stderr.strip()[-200:])

        # fs freeze / thaw
        r = agent.cmd("guest-fsfreeze-freeze", timeout=60)
        results["guest-fsfreeze-freeze"] = r
        st = agent.cmd("guest-fsfreeze-status")
        results["guest-fsfreeze-status(frozen)"] = st
        r2 = agent.cmd("guest-fsfreeze-thaw", timeout=60)
        results["guest-fsfreeze-thaw"] = r2
        st2 = agent.cmd("guest-fsfreeze-status")
        check("fsfreeze freeze/thaw", isinstance(r.get("return"), int) and r["return"] >= 1
              and st.get("return") == "frozen" and isinstance(r2.get("return"), int)
              and st2.get("return") == "thawed", json.dumps([r, st, r2, st2]))
        rc, out, _ = agent.exec(["/bin/sh", "-c", "echo after-thaw > /root/thaw.txt && sync && cat /root/thaw.txt"])
        check("writable after thaw", rc == 0 and out.strip() == "after-thaw")

        machine_id = agent.exec(["/bin/cat", "/etc/machine-id"])[1].strip()

        def powerdown(tag):
            # clean ACPI power-down through QMP
            m = JsonSock(qmp, 10)
            m.recv()
            m.send({"execute": "qmp_capabilities"})
            m.recv()
            tp = time.time()
            m.send({"execute": "system_powerdown"})
            try:
                rc = qemu.wait(timeout=180)
                results[f"powerdown_s{tag}"] = round(time.time() - tp, 1)
                con = open(console, errors="replace").read()
                check(f"system_powerdown{tag}: qemu exits cleanly", rc == 0, f"rc={rc}")
                check(f"guest powered off{tag} (reboot: Power down)", "reboot: Power down" in con)
            except subprocess.TimeoutExpired:
                check(f"system_powerdown{tag}: qemu exits cleanly", False, "timeout")

        powerdown("")
        if second:
            for p in (qga, qmp, console):
                if os.path.exists(p):
                    os.unlink(p)
            log("second boot")
            t0 = time.time()
            qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
            agent = Agent(qga)
            t_login = t_agent = None
            while time.time() - t0 < TIMEOUT and (t_login is None or t_agent is None):
                if qemu.poll() is not None:
                    raise RuntimeError("qemu exited on the second boot")
                if t_login is None and os.path.exists(console) and \
                        "login:" in open(console, errors="replace").read():
                    t_login = time.time() - t0
                if t_agent is None and os.path.exists(qga):
                    try:
                        if agent.sync(1.0):
                            t_agent = time.time() - t0
                    except (OSError, EOFError):
                        agent.sock = None
                time.sleep(0.5)
            results["second_boot_to_login_s"] = t_login and round(t_login, 1)
            results["second_boot_to_agent_s"] = t_agent and round(t_agent, 1)
            check("second boot: login and agent", t_login is not None and t_agent is not None)
            rc, out, _ = agent.exec(["/usr/bin/cloud-init", "status", "--wait"], timeout=TIMEOUT)
            results["second_boot_to_cloudinit_done_s"] = round(time.time() - t0, 1)
            rc, out, _ = agent.exec(["/bin/sh", "-c", "cat /etc/machine-id; hostname; cat /root/hello.txt;"
                                     " systemctl is-active ssh; ls /etc/ssh/ssh_host_*_key | wc -l"])
            check("second boot: same machine-id, hostname, file, sshd",
                  out.split("\n")[:4] == [machine_id, "yun-test" if seeded else "debian",
                                           HELLO if seeded else "", "active"][:4 if seeded else 2],
                  repr(out))
            powerdown(" (second boot)")
    except Exception as e:  # noqa: BLE001 - report, then fail
        failures.append(f"exception: {e!r}")
        log(f"error: {e!r}")
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
        if os.path.exists(console):
            results["console_tail"] = open(console, errors="replace").read()[-3000:]
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["failures"] = failures
    print(json.dumps(results, indent=2))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
