"""The Debian package on this machine, end to end (issue 15, docs/packaging.md):
built with dpkg-buildpackage (scripts/make-deb.sh), lintian without errors,
`systemd-analyze verify` on the installed units, `dpkg -i`, the installed
/usr/sbin/yund started as the unit's ExecStart runs it (PID 1 here is not
systemd) with a NOTIFY_SOCKET this test reads READY=1 from, a tiny VM booted
through the installed /usr/bin/yun, an upgrade to a rebuilt package with a
bumped version while the VM runs (the same QEMU must still run and the new
yund re-attach to it), `dpkg -r` (no yund left, the VM's disk still there)
and `dpkg --purge` (says what it deletes). Everything is undone at the end,
even on failure: the VM's QEMU, the package, /var/lib/yun."""
import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from conftest import (ROOT, MARKER, UnixHTTPConnection, _cleanup, pid_alive, qemu_pids_for,
                      wait_for)

STATE = "/var/lib/yun"
SOCK = STATE + "/yund.sock"
CONF = "/etc/yun/yund.conf"
UNITS = ["yund.service", "yund-controller.service", "yund-agent.service"]
OUT = os.path.join(ROOT, "build", "deb-out")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("dpkg-buildpackage"),
    reason="needs root and dpkg-dev (debhelper, lintian, fakeroot: .ci/run installs them)")


def run(*args, check=True, env=None, timeout=600):
    p = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} -> {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def changelog_version(tree):
    return run("dpkg-parsechangelog", "-l", os.path.join(tree, "debian/changelog"),
               "-S", "Version").stdout.strip()


def build_deb(tree, out):
    commit = run("git", "-C", ROOT, "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    env = dict(os.environ, YUN_COMMIT=commit or "unknown")
    p = run(os.path.join(tree, "scripts/make-deb.sh"), out, env=env)
    deb = p.stdout.strip().splitlines()[-1]
    assert os.path.isfile(deb), p.stdout
    return deb


def bumped_tree(tmp):
    """A copy of the checkout's files with one more changelog entry on top
    (the repo itself is not touched)."""
    tree = os.path.join(tmp, "yun")
    files = run("git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                "--exclude-standard").stdout.split("\0")
    for f in filter(None, files):
        src = os.path.join(ROOT, f)
        if not os.path.isfile(src):
            continue
        dst = os.path.join(tree, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
    v1 = changelog_version(ROOT)
    v2 = v1 + "+test1"
    cl = os.path.join(tree, "debian/changelog")
    with open(cl) as f:
        old = f.read()
    with open(cl, "w") as f:
        f.write(f"yun ({v2}) unstable; urgency=medium\n\n"
                "  * Test upgrade (tests/e2e/test_package.py).\n\n"
                " -- yun maintainers <yun@example.org>  Wed, 02 Dec 2026 15:00:00 +0000\n\n"
                + old)
    return tree, v2


def api(method, path, timeout=60):
    c = UnixHTTPConnection(SOCK, timeout=timeout)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, (json.loads(body) if body else None)


def answering():
    try:
        return api("GET", "/healthz", timeout=5)[0] == 200
    except OSError:
        return False


def installed_yund_pids():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/exe") == "/usr/sbin/yund":
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def yun(*args, check=True):
    return run("/usr/bin/yun", "--socket", SOCK, *args, check=check, timeout=300)


@pytest.fixture
def pkg_env():
    if os.path.exists(STATE) or run("dpkg", "-s", "yun", check=False).returncode == 0:
        pytest.fail(f"{STATE} exists or package yun is installed: this test installs its "
                    "own and would destroy that state (run it on a CI or test machine)")
    tmp = tempfile.mkdtemp(prefix="yun-pkg-", dir="/tmp")
    procs = []
    yield tmp, procs
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    for pid in installed_yund_pids():
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    run("dpkg", "--purge", "yun", check=False)
    _cleanup(STATE)  # the VM's QEMU, its cgroups and uid claim, then the directory
    shutil.rmtree(tmp, ignore_errors=True)


def start_installed_yund(tmp, procs):
    """/usr/sbin/yund as yund.service's ExecStart runs it, with a
    NOTIFY_SOCKET of ours: READY=1 must come once the API answers."""
    unit = open("/lib/systemd/system/yund.service").read()
    exec_start = [line.split("=", 1)[1] for line in unit.splitlines()
                  if line.startswith("ExecStart=")][0].split()
    assert exec_start == ["/usr/sbin/yund", "-c", CONF], exec_start
    ns_path = os.path.join(tmp, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(ns_path)
    ns.settimeout(120)
    log = open(os.path.join(tmp, "yund.log"), "ab")
    p = subprocess.Popen(exec_start, stdout=log, stderr=log,
                         env=dict(os.environ, NOTIFY_SOCKET=ns_path))
    procs.append(p)
    msg = ns.recv(4096).decode()
    ns.close()
    fields = dict(line.split("=", 1) for line in msg.splitlines())
    assert fields.get("READY") == "1", msg
    assert fields.get("MAINPID") == str(p.pid), msg
    assert answering(), "READY=1 came before the API answered"
    return p


def test_package_install_upgrade_remove(pkg_env):
    tmp, procs = pkg_env
    v1 = changelog_version(ROOT)
    deb1 = build_deb(ROOT, OUT)
    assert os.path.basename(deb1) == f"yun_{v1}_amd64.deb"
    tree2, v2 = bumped_tree(tmp)
    deb2 = build_deb(tree2, os.path.join(tmp, "out2"))

    lint = run("lintian", "--no-tag-display-limit", deb1, check=False)
    errors = [line for line in lint.stdout.splitlines() if line.startswith("E:")]
    assert not errors, lint.stdout
    assert lint.returncode == 0, lint.stdout + lint.stderr

    run("dpkg", "-i", deb1)
    st = os.stat(STATE)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o700)
    assert os.path.isfile(CONF)
    assert os.path.isfile("/usr/share/bash-completion/completions/yun")
    for unit in UNITS:
        assert os.path.isfile("/lib/systemd/system/" + unit), unit
    v = run("systemd-analyze", "verify", *["/lib/systemd/system/" + u for u in UNITS],
            check=False)
    bad = [line for line in (v.stdout + v.stderr).splitlines()
           if "yund" in line and "sysinit.target" not in line]
    assert not bad, v.stdout + v.stderr
    assert run("/usr/sbin/yund", "--version").stdout.startswith(f"yund {v1} (commit ")
    assert run("/usr/bin/yun", "--version").stdout.startswith(f"yun {v1} (commit ")
    assert "yund - the yun virtualization daemon" in run("man", "-P", "cat", "yund").stdout

    yund1 = start_installed_yund(tmp, procs)
    st, ver = api("GET", "/v1/version")
    assert st == 200 and ver["version"] == v1 and ver["protocol"] == 1, ver
    yun("image", "build", "tiny")
    yun("vm", "create", "pkg1", "--image", "tiny", "--memory", "96M", "--start")
    wait_for(lambda: MARKER in yun("vm", "logs", "pkg1").stdout, 120, interval=0.5,
             what="the tiny VM's marker")
    qemu = qemu_pids_for(STATE)
    assert len(qemu) == 1, qemu
    disk_dir = os.path.join(STATE, "vms")
    disks = [os.path.join(dp, f) for dp, _, fs in os.walk(disk_dir) for f in fs
             if f.endswith(".qcow2")]
    assert disks, os.listdir(disk_dir)

    # The upgrade: the prerm stops this yund (SIGTERM, VMs stay), the
    # postinst starts the new one, which re-attaches.
    up = run("dpkg", "-i", deb2)
    assert yund1.wait(timeout=60) == 0
    wait_for(answering, 60, what="the upgraded yund to answer")
    st, ver = api("GET", "/v1/version")
    assert ver["version"] == v2, (ver, up.stdout)
    assert qemu_pids_for(STATE) == qemu and pid_alive(qemu[0])
    vm = json.loads(yun("-o", "json", "vm", "show", "pkg1").stdout)
    assert vm["state"] == "running", vm
    assert "YUN-TINY-INIT-OK" in yun("vm", "logs", "pkg1").stdout
    assert len(installed_yund_pids()) == 1

    # Remove: yund stops, the VM's disk stays (and its QEMU still runs).
    run("dpkg", "-r", "yun")
    wait_for(lambda: not installed_yund_pids(), 30, what="yund to stop on dpkg -r")
    assert not os.path.exists("/usr/sbin/yund")
    assert all(os.path.isfile(d) for d in disks), disks
    assert pid_alive(qemu[0])
    assert os.path.isfile(CONF)  # a conffile: kept until purge

    # Purge: says what it deletes, keeps the VMs' directories.
    p = run("dpkg", "--purge", "yun")
    assert "deleting /var/lib/yun/yun.db" in p.stdout, p.stdout
    assert "kept what else is in /var/lib/yun" in p.stdout, p.stdout
    assert not os.path.exists(os.path.join(STATE, "yun.db"))
    assert not os.path.exists(CONF)
    assert all(os.path.isfile(d) for d in disks), disks
